//! The backend (zones, images, hosts, VMs, consoles, fault injection), the load
//! balancer's statistics, and the activity log.

use flotilla_domain::{
    Activity, ActivityFilter, BackendInfo, BackendVm, ConsoleOutput, Fault, ValidationErrors,
};
use serde_json::json;

use super::Fleet;
use crate::error::{Error, Result};

impl Fleet {
    pub async fn backend_info(&self) -> Result<BackendInfo> {
        let backend = &self.ctx.backend;
        Ok(BackendInfo {
            kind: backend.kind().into(),
            zones: self.zones().await?,
            images: backend
                .images()
                .await
                .map_err(Error::backend("list images"))?,
            hosts: backend
                .hosts()
                .await
                .map_err(Error::backend("list hosts"))?,
            fault_injection: backend.faults().is_some(),
            maintenance: self.maintenance().await?,
        })
    }

    /// The end of instance `id`'s serial console output (the instance must be set `name`'s).
    pub async fn console(&self, name: &str, id: &str) -> Result<ConsoleOutput> {
        self.get_instance(name, id).await?;
        let output = self
            .ctx
            .backend
            .console(id)
            .await
            .map_err(Error::backend("read the console log"))?;
        Ok(ConsoleOutput {
            instance: id.to_owned(),
            output,
        })
    }

    /// Every VM the backend holds, whether or not a scale set owns it, each saying whether
    /// it is another installation's (or of none): those are never touched.
    pub async fn backend_vms(&self) -> Result<Vec<BackendVm>> {
        let backend = &self.ctx.backend;
        let ours = backend.installation_id();
        Ok(backend
            .list(None)
            .await
            .map_err(Error::backend("list VMs"))?
            .into_iter()
            .map(|vm| BackendVm {
                foreign: vm.installation_id.as_deref() != Some(ours),
                vm,
            })
            .collect())
    }

    /// This installation's id, written into every VM it creates.
    pub fn installation_id(&self) -> &str {
        self.ctx.backend.installation_id()
    }

    fn fault_injection(&self) -> Result<&dyn flotilla_backend::FaultInjection> {
        self.ctx.backend.faults().ok_or(Error::NotSupported {
            what: "fault injection",
        })
    }

    pub async fn faults(&self) -> Result<Vec<Fault>> {
        Ok(self.fault_injection()?.active().await)
    }

    pub async fn inject_fault(&self, fault: Fault, actor: &str) -> Result<()> {
        let started = self.now();
        fault.validate().map_err(Error::Invalid)?;
        let (scale_set, target) = match &fault {
            Fault::Crash { instance }
            | Fault::Unhealthy { instance }
            | Fault::Healthy { instance } => {
                let owner = self
                    .ctx
                    .store
                    .get_instance(instance)
                    .await
                    .map_err(Error::store("get instance"))?
                    .map(|i| i.scale_set);
                (owner, instance.clone())
            }
            Fault::ZoneDown { zone } | Fault::ZoneUp { zone } => (None, format!("zone {zone}")),
            Fault::HostDown { host } | Fault::HostUp { host } => (None, format!("host {host}")),
            Fault::CreateFailureRate { .. } | Fault::SlowBoot { .. } => (None, "backend".into()),
        };
        self.fault_injection()?
            .inject(fault.clone())
            .await
            .map_err(Error::backend("inject fault"))?;
        self.ctx
            .record_success(
                "backend.fault",
                actor,
                scale_set.as_deref(),
                &target,
                started,
                serde_json::to_value(&fault).unwrap_or_default(),
            )
            .await;
        match scale_set {
            Some(name) => self.wake(&name),
            None => self.wake_all(),
        }
        Ok(())
    }

    pub async fn clear_faults(&self, actor: &str) -> Result<()> {
        let started = self.now();
        self.fault_injection()?
            .clear()
            .await
            .map_err(Error::backend("clear faults"))?;
        self.ctx
            .record_success(
                "backend.faults_cleared",
                actor,
                None,
                "backend",
                started,
                json!({}),
            )
            .await;
        self.wake_all();
        Ok(())
    }

    /// Statistics of every frontend and its pools' members.
    pub fn load_balancer_stats(&self) -> Vec<flotilla_lb::FrontendStats> {
        self.ctx.balancer.lb.stats()
    }

    /// Appends the load balancer's Prometheus exposition: every frontend, and every pool
    /// member with `--metrics-per-instance`.
    pub fn render_load_balancer_metrics(&self, out: &mut String) {
        self.ctx
            .balancer
            .lb
            .render_prometheus(out, self.ctx.config.metrics.per_instance);
    }

    /// The activity log, newest first.
    pub async fn activity(&self, filter: &ActivityFilter) -> Result<Vec<Activity>> {
        let mut errors = ValidationErrors::default();
        errors.range("limit", filter.limit, 1, 1000);
        errors.into_result().map_err(Error::Invalid)?;
        self.ctx
            .store
            .list_activity(filter)
            .await
            .map_err(Error::store("list activity"))
    }

    /// The entries of any of `operations` that pass `filter` (its own `operation` aside),
    /// newest first, at most `filter.limit`.
    pub async fn activity_of(
        &self,
        filter: &ActivityFilter,
        operations: &[&str],
    ) -> Result<Vec<Activity>> {
        let mut entries = Vec::new();
        // The log filters by one exact operation: each is asked for, then merged.
        for operation in operations {
            let one = ActivityFilter {
                operation: Some((*operation).to_string()),
                ..filter.clone()
            };
            entries.extend(self.activity(&one).await?);
        }
        entries.sort_by_key(|a| std::cmp::Reverse(a.id));
        entries.truncate(filter.limit as usize);
        Ok(entries)
    }
}
