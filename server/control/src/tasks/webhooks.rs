//! Notifications (the `webhooks` task): every webhook of a set's autoscale setting gets a JSON
//! `POST` per scale action — operation, old and new capacity, reason, decision id — and
//! every webhook of a lifecycle hook a `POST` per wait that begins or times out on it (the
//! notice, `X-Flotilla-Event: lifecycle.wait|timed_out`, `X-Flotilla-Instance`), each
//! signed with HMAC-SHA256 of the body under the webhook's secret
//! (`X-Flotilla-Signature: sha256=<hex>`), retried with exponential backoff (1, 2, 4, 8 s;
//! five attempts, 10 s each) until a 2xx answer. Each delivery is an activity entry
//! (`autoscale.webhook`, `lifecycle.webhook`) that ends succeeded or failed with its attempts; deliveries a
//! stopped control plane (or a leader that lost its lease) left in progress are sent again
//! when the task starts, with the same `X-Flotilla-Delivery` id (the entry's) for the
//! receiver to drop repeats: delivery is at least once. Each attempt first checks the
//! leader lease, so a replica that lost it sends nothing more.
//!
//! HTTPS URLs are verified against the system's certificate store (read once). A URL must
//! parse alike by the domain's strict parser and by the `url` crate; its host is resolved
//! once per attempt and connected to only at an address webhooks may reach ([`reachable`]:
//! public unless `--webhook-allow` lists it), so neither a URL nor DNS can turn a webhook
//! into a request to the host's loopback, its network or a cloud's metadata service.
//! Failures are recorded as classes ("could not connect", "answered 503"), never as what
//! the other side said; the activity log shows each webhook's URL in its shown form.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flotilla_domain::autoscale::Decision;
use flotilla_domain::autoscale::decision::DecisionFilter;
use flotilla_domain::autoscale::setting::Webhook;
use flotilla_domain::lifecycle::{Notice, NoticeEvent};
use flotilla_domain::secret::{WebhookUrl, shown_url};
use flotilla_domain::{ActivityFilter, ActivityResult, NewActivity, ScaleSet, ValidationErrors};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::error::chain;
use crate::tasks::{Control, Task};

/// The activity entry of one delivery.
const OPERATION: &str = "autoscale.webhook";
/// The activity entry of one delivery of a lifecycle hook's notice.
const LIFECYCLE_OPERATION: &str = "lifecycle.webhook";
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a webhook URL points: the domain's strict parse, confirmed by a real URL parser
/// (the `url` crate) — both must read the same scheme, host and port, or the URL is refused.
fn parse(url: &str) -> Result<WebhookUrl, String> {
    let ours = WebhookUrl::parse(url)?;
    let theirs = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = match theirs.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("has no host".into()),
    };
    let same = theirs.scheme() == if ours.https { "https" } else { "http" }
        && host
            == ours
                .host
                .parse::<IpAddr>()
                .map_or(ours.host.clone(), |ip| ip.to_string())
        && theirs.port_or_known_default() == Some(ours.port_or_default())
        && theirs.username().is_empty()
        && theirs.password().is_none();
    if !same {
        return Err("is read differently by URL parsers; write it plainly".into());
    }
    Ok(ours)
}

/// Whether webhooks may reach `ip`: public unicast addresses, and those `allow` lists.
/// Loopback, private, shared (CGNAT), link-local (cloud metadata at 169.254.169.254 among
/// them), unique-local, multicast, unspecified, broadcast and documentation addresses are
/// refused unless allowed — a webhook must not become a way into the host or its network.
pub(crate) fn reachable(ip: IpAddr, allow: &[ipnet::IpNet]) -> Result<(), String> {
    if allow.iter().any(|net| net.contains(&ip)) {
        return Ok(());
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let class = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback")
            } else if v4.is_private() {
                Some("a private")
            } else if v4.is_link_local() {
                Some("a link-local (cloud metadata)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT)")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("a multicast or reserved")
            } else if v4.is_documentation() {
                Some("a documentation")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback")
            } else if v6.is_unspecified() {
                Some("an unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a unique-local (private)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else if v6.is_multicast() {
                Some("a multicast")
            } else {
                None
            }
        }
    };
    match class {
        Some(class) => Err(format!(
            "{ip} is {class} address: webhooks go to public addresses only (allow it with --webhook-allow)"
        )),
        None => Ok(()),
    }
}

/// The problems of webhooks (`field[i]`) that can be known without sending: URLs that do
/// not parse alike, and addresses given as IPs that webhooks may not reach. (Names are
/// resolved, and checked again, on every delivery.)
pub(crate) fn check_targets(
    hooks: &[Webhook],
    field: &str,
    allow: &[ipnet::IpNet],
) -> ValidationErrors {
    let mut errors = ValidationErrors::default();
    for (i, hook) in hooks.iter().enumerate() {
        let problem = parse(&hook.url).and_then(|target| match target.host.parse::<IpAddr>() {
            Ok(ip) => reachable(ip, allow),
            Err(_) => Ok(()),
        });
        if let Err(message) = problem {
            errors.push(format!("{field}[{i}].url"), message);
        }
    }
    errors
}

/// The signature header's value for `body` under `secret`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The JSON a webhook receives for a scale action.
fn payload(decision: &Decision, activity: Option<i64>) -> Vec<u8> {
    let payload = json!({
        "operation": decision.operation,
        "scale_set": decision.scale_set,
        "old_capacity": decision.current,
        "new_capacity": decision.new_capacity,
        "reason": decision.reason,
        "profile": decision.profile,
        "decision_id": decision.id,
        "activity_id": activity,
        "at": decision.at,
    });
    serde_json::to_vec(&payload).expect("a JSON value serializes")
}

/// What a delivery tells of: an autoscale decision, or a lifecycle hook's notice.
#[derive(Clone)]
enum Subject {
    Decision(i64),
    Lifecycle {
        instance: String,
        hook: String,
        event: NoticeEvent,
    },
}

impl Subject {
    /// The headers that name it (`X-Flotilla-Event` and its reference).
    fn headers(&self) -> String {
        match self {
            Subject::Decision(id) => {
                format!("X-Flotilla-Event: autoscale.scale\r\nX-Flotilla-Decision: {id}\r\n")
            }
            Subject::Lifecycle {
                instance, event, ..
            } => format!(
                "X-Flotilla-Event: lifecycle.{}\r\nX-Flotilla-Instance: {instance}\r\n",
                event.as_str()
            ),
        }
    }

    /// What its activity entries hold about it.
    fn details(&self) -> serde_json::Value {
        match self {
            Subject::Decision(id) => json!({"decision_id": id}),
            Subject::Lifecycle {
                instance,
                hook,
                event,
            } => json!({"instance": instance, "hook": hook, "event": event}),
        }
    }
}

/// One delivery: a webhook, the payload, and its activity entry (recorded in progress
/// before it is queued, so a delivery a stopped control plane did not finish is sent again
/// when the task starts).
struct Delivery {
    entry: Option<i64>,
    subject: Subject,
    hook: Webhook,
    body: Arc<Vec<u8>>,
}

/// The delivery failed: a class of failure, never what the other side said.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

/// The `webhooks` task: sends the deliveries the autoscaler queues, each as an activation.
pub(crate) struct Webhooks {
    ctx: Context,
    queue: mpsc::UnboundedSender<Delivery>,
    inbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>,
}

impl Webhooks {
    pub(crate) fn new(ctx: Context) -> Self {
        let (queue, inbox) = mpsc::unbounded_channel();
        Self {
            ctx,
            queue,
            inbox: tokio::sync::Mutex::new(inbox),
        }
    }

    /// Announces a scale action to each webhook: records each delivery in progress and
    /// queues it.
    pub(crate) async fn announce(
        &self,
        decision: &Decision,
        activity: Option<i64>,
        hooks: Vec<Webhook>,
    ) {
        let body = Arc::new(payload(decision, activity));
        for (index, hook) in hooks.into_iter().enumerate() {
            let entry = self
                .ctx
                .record(NewActivity {
                    operation: OPERATION.into(),
                    actor: "system:autoscale".into(),
                    scale_set: Some(decision.scale_set.clone()),
                    target: shown_url(&hook.url),
                    started_at: self.ctx.now(),
                    ended_at: None,
                    result: ActivityResult::InProgress,
                    error: None,
                    details: json!({"url": hook.url, "webhook": index, "decision_id": decision.id, "activity_id": activity}),
                })
                .await;
            // Sent by the task; should it not run, the entry stays in progress and is
            // resumed when it starts.
            let _ = self.queue.send(Delivery {
                entry: entry.map(|e| e.id),
                subject: Subject::Decision(decision.id),
                hook,
                body: body.clone(),
            });
        }
    }

    /// Tells each webhook of the notice's hook (in `set`) that an instance waits on it or
    /// that its wait timed out: records each delivery in progress and queues it. The
    /// payload is kept in the entry (it holds no secret), so a restart sends it again.
    pub(crate) async fn announce_lifecycle(&self, set: &ScaleSet, notice: &Notice) {
        let Some(hook) = set
            .spec
            .lifecycle_hooks
            .iter()
            .find(|h| h.name == notice.hook)
        else {
            return;
        };
        let payload =
            json!({"operation": format!("lifecycle.{}", notice.event.as_str()), "notice": notice});
        let body = Arc::new(serde_json::to_vec(&payload).expect("a JSON value serializes"));
        let subject = Subject::Lifecycle {
            instance: notice.instance.clone(),
            hook: notice.hook.clone(),
            event: notice.event,
        };
        for (index, webhook) in hook.notification_webhooks.iter().enumerate() {
            let mut details = subject.details();
            details["url"] = json!(shown_url(&webhook.url));
            details["webhook"] = json!(index);
            details["payload"] = payload.clone();
            let entry = self
                .ctx
                .record(NewActivity {
                    operation: LIFECYCLE_OPERATION.into(),
                    actor: "system:lifecycle".into(),
                    scale_set: Some(notice.scale_set.clone()),
                    target: shown_url(&webhook.url),
                    started_at: self.ctx.now(),
                    ended_at: None,
                    result: ActivityResult::InProgress,
                    error: None,
                    details,
                })
                .await;
            let _ = self.queue.send(Delivery {
                entry: entry.map(|e| e.id),
                subject: subject.clone(),
                hook: webhook.clone(),
                body: body.clone(),
            });
        }
    }

    /// The deliveries a stopped control plane left in progress: each is sent again with
    /// the same payload (a decision's rebuilt from the stored decision, a lifecycle
    /// notice's kept in its entry) under the same activity entry.
    async fn resume(&self) -> crate::Result<Vec<Delivery>> {
        let ctx = &self.ctx;
        let mut resumed = Vec::new();
        for operation in [OPERATION, LIFECYCLE_OPERATION] {
            let pending = ctx
                .store
                .list_activity(&ActivityFilter {
                    operation: Some(operation.into()),
                    result: Some(ActivityResult::InProgress),
                    limit: 1000,
                    ..ActivityFilter::default()
                })
                .await
                .map_err(crate::Error::store("list webhook deliveries"))?;
            for entry in pending {
                // The entry holds the webhook's position and shown URL, never the URL.
                let (Some(set), Some(shown)) = (
                    entry.scale_set.clone(),
                    entry.details["url"].as_str().map(str::to_string),
                ) else {
                    continue;
                };
                match self.rebuild(&set, &entry.details, &shown).await? {
                    Ok(delivery) => resumed.push(Delivery {
                        entry: Some(entry.id),
                        ..delivery
                    }),
                    Err(subject) => {
                        let why = "not resumed after a restart: its subject or the webhook is gone";
                        self.finish(entry.id, Err(why.into()), 0, &shown, &subject)
                            .await
                    }
                }
            }
        }
        Ok(resumed)
    }

    /// The delivery an entry of `set` describes, or (when what it tells of or its webhook
    /// is gone) its subject.
    async fn rebuild(
        &self,
        set: &str,
        details: &serde_json::Value,
        shown: &str,
    ) -> crate::Result<Result<Delivery, Subject>> {
        let ctx = &self.ctx;
        let index = details["webhook"].as_u64().unwrap_or(0) as usize;
        // Entries written before URLs were redacted hold the URL itself.
        let pick = |hooks: Vec<Webhook>| {
            let shows = |h: &Webhook| shown_url(&h.url) == shown || h.url == shown;
            let at = hooks.get(index).filter(|h| shows(h)).cloned();
            at.or_else(|| hooks.into_iter().find(|h| shows(h)))
        };
        let spec = ctx
            .store
            .get_scale_set(set)
            .await
            .map_err(crate::Error::store("read a scale set"))?
            .map(|s| s.spec);
        if let Some(decision_id) = details["decision_id"].as_i64() {
            let subject = Subject::Decision(decision_id);
            let decision = ctx
                .store
                .list_decisions(&DecisionFilter {
                    scale_set: set.into(),
                    operation: None,
                    since: None,
                    until: None,
                    before_id: Some(decision_id + 1),
                    limit: 1,
                    shadow: false,
                })
                .await
                .map_err(crate::Error::store("read a decision"))?
                .into_iter()
                .find(|d| d.id == decision_id);
            let hook = spec
                .and_then(|s| s.autoscale)
                .and_then(|a| pick(a.notifications.webhooks));
            return Ok(match (decision, hook) {
                (Some(decision), Some(hook)) => Ok(Delivery {
                    entry: None,
                    subject,
                    hook,
                    body: Arc::new(payload(&decision, details["activity_id"].as_i64())),
                }),
                _ => Err(subject),
            });
        }
        let subject = Subject::Lifecycle {
            instance: details["instance"].as_str().unwrap_or_default().into(),
            hook: details["hook"].as_str().unwrap_or_default().into(),
            event: serde_json::from_value(details["event"].clone()).unwrap_or(NoticeEvent::Wait),
        };
        let Subject::Lifecycle { hook: name, .. } = &subject else {
            unreachable!("built above");
        };
        let hook = spec
            .and_then(|s| s.lifecycle_hooks.into_iter().find(|h| &h.name == name))
            .and_then(|h| pick(h.notification_webhooks));
        Ok(match (hook, details.get("payload")) {
            (Some(hook), Some(payload)) => Ok(Delivery {
                entry: None,
                subject,
                hook,
                body: Arc::new(serde_json::to_vec(payload).expect("a JSON value serializes")),
            }),
            _ => Err(subject),
        })
    }

    /// Sends one delivery with retries and closes its activity entry.
    async fn deliver(&self, delivery: Delivery) -> Result<String, Failed> {
        let Delivery {
            entry,
            subject,
            hook,
            body,
        } = delivery;
        let mut backoff = FIRST_BACKOFF;
        let mut outcome = Err(String::new());
        let mut attempts = 0;
        for attempt in 1..=ATTEMPTS {
            // A replica that lost the lease (paused past it, say) sends nothing more: the
            // entry stays in progress and the new leader sends it.
            if let Err(e) = self.ctx.store.check_fence().await {
                return Err(Failed(format!(
                    "{}: not sent by this replica ({e}); the leader sends it",
                    shown_url(&hook.url)
                )));
            }
            attempts = attempt;
            let attempt_once = post(
                &hook,
                (&subject, entry),
                &body,
                &self.ctx.config.webhook_allow,
            );
            outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt_once).await {
                Ok(Ok(code)) if (200..300).contains(&code) => Ok(code),
                Ok(Ok(code)) => Err(format!("answered {code}")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            // A refusal (the URL, or an address webhooks may not reach) will not change.
            let refused = outcome.as_ref().is_err_and(|e| e.starts_with("refused:"));
            if outcome.is_ok() || refused || attempt == ATTEMPTS {
                break;
            }
            tracing::info!(url = %shown_url(&hook.url), attempt, error = ?outcome, "webhook delivery failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        let shown = shown_url(&hook.url);
        if let Some(entry) = entry {
            self.finish(entry, outcome.clone(), attempts, &shown, &subject)
                .await;
        }
        match outcome {
            Ok(code) => Ok(format!("delivered to {shown} ({code})")),
            Err(e) => Err(Failed(format!("{shown}: {e}"))),
        }
    }

    /// Closes a delivery's activity entry (`shown`: the webhook's shown URL).
    async fn finish(
        &self,
        entry: i64,
        outcome: Result<u16, String>,
        attempts: u32,
        shown: &str,
        subject: &Subject,
    ) {
        let (result, error, status) = match &outcome {
            Ok(code) => (ActivityResult::Succeeded, None, Some(*code)),
            Err(e) => (ActivityResult::Failed, Some(e.as_str()), None),
        };
        let mut details = subject.details();
        details["url"] = json!(shown);
        details["attempts"] = json!(attempts);
        details["status"] = json!(status);
        match self
            .ctx
            .store
            .finish_activity(entry, self.ctx.now(), result, error, &details)
            .await
        {
            Ok(activity) => self.ctx.events.publish(flotilla_domain::Event::Activity {
                activity: Box::new(activity),
            }),
            Err(e) => tracing::warn!(error = %chain(&e), "could not record a webhook delivery"),
        }
    }
}

impl Task for Webhooks {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    /// Resumes what a stopped control plane left in progress, then sends what is queued;
    /// deliveries in flight when the task stops stay in progress (resumed at the next
    /// start).
    fn run(self: Arc<Self>, control: Control) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let control = Arc::new(control);
            let mut inbox = self.inbox.lock().await;
            let mut sending = JoinSet::new();
            let resumed = match self.resume().await {
                Ok(resumed) => resumed,
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "could not resume webhook deliveries");
                    Vec::new()
                }
            };
            // Queued before the task started: those are resumed already.
            let resumed_ids: BTreeSet<i64> = resumed.iter().filter_map(|d| d.entry).collect();
            let send = |sending: &mut JoinSet<()>, delivery: Delivery| {
                let (task, control) = (self.clone(), control.clone());
                sending.spawn(async move { control.activation(task.deliver(delivery)).await });
            };
            for delivery in resumed {
                send(&mut sending, delivery);
            }
            loop {
                tokio::select! {
                    () = control.stop().cancelled() => break,
                    delivery = inbox.recv() => match delivery {
                        Some(d) if d.entry.is_some_and(|id| resumed_ids.contains(&id)) => {}
                        Some(d) => send(&mut sending, d),
                        None => break,
                    },
                    Some(_) = sending.join_next(), if !sending.is_empty() => {}
                }
                control.doing(format!("{} deliveries in flight", sending.len()));
            }
            sending.abort_all();
        })
    }
}

/// One attempt: the status code answered, or what went wrong as a class of failure (never
/// what the other side said).
async fn post(
    hook: &Webhook,
    (subject, delivery): (&Subject, Option<i64>),
    body: &[u8],
    allow: &[ipnet::IpNet],
) -> Result<u16, String> {
    let target = parse(&hook.url).map_err(|e| format!("refused: the URL {e}"))?;
    let port = target.port_or_default();
    // Resolved once, checked, and connected to as resolved: a name cannot be made to point
    // somewhere else between the check and the connection (DNS rebinding).
    let addresses: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((target.host.as_str(), port))
            .await
            .map_err(|_| format!("could not resolve {}", target.host))?
            .collect(),
    };
    let mut refused = None;
    let mut allowed = addresses.iter().filter(|a| match reachable(a.ip(), allow) {
        Ok(()) => true,
        Err(why) => {
            refused.get_or_insert(why);
            false
        }
    });
    let Some(first) = allowed.next() else {
        return Err(format!(
            "refused: {}",
            refused.unwrap_or_else(|| format!("{} has no address", target.host))
        ));
    };
    let mut stream = TcpStream::connect(first).await;
    for next in allowed {
        if stream.is_ok() {
            break;
        }
        stream = TcpStream::connect(next).await;
    }
    let stream = stream.map_err(|e| format!("could not connect ({})", e.kind()))?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: flotilla-webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Connection: close\r\n",
        target.path,
        target.authority(),
        body.len(),
        subject.headers(),
    );
    if let Some(delivery) = delivery {
        head.push_str(&format!("X-Flotilla-Delivery: {delivery}\r\n"));
    }
    if let Some(secret) = &hook.secret {
        head.push_str(&format!(
            "X-Flotilla-Signature: {}\r\n",
            signature(secret, body)
        ));
    }
    head.push_str("\r\n");
    let answer = if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| "refused: not a valid TLS server name".to_string())?;
        let tls = verified_tls()?.connect(name, stream).await.map_err(|_| {
            "the TLS handshake failed (certificate not trusted, or no TLS)".to_string()
        })?;
        crate::tasks::prober::send(tls, &head, body).await
    } else {
        crate::tasks::prober::send(stream, &head, body).await
    };
    match answer.map_err(|e| format!("the connection failed ({})", e.kind()))? {
        Some((code, _)) => Ok(code),
        None => Err("the answer is not HTTP".into()),
    }
}

/// The TLS client trusting the system's certificate store, built once.
fn verified_tls() -> Result<tokio_rustls::TlsConnector, String> {
    static TLS: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    TLS.get_or_init(build_tls).clone()
}

fn build_tls() -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    const BUNDLES: [&str; 3] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    let mut roots = rustls::RootCertStore::empty();
    for path in BUNDLES {
        if let Ok(certs) = CertificateDer::pem_file_iter(path) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("no system certificate store found for https webhooks".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_alike_or_not_at_all() {
        let t = parse("http://127.0.0.1:8080/hooks/a?x=1").unwrap();
        assert_eq!(
            (
                t.https,
                t.host.as_str(),
                t.port_or_default(),
                t.path.as_str()
            ),
            (false, "127.0.0.1", 8080, "/hooks/a?x=1")
        );
        let t = parse("HTTPS://Hooks.Example").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port_or_default(), t.path.as_str()),
            ("hooks.example", 443, "/")
        );
        assert_eq!(parse("http://[::1]:9000/x").unwrap().host, "::1");
        for bad in [
            "ftp://x",
            "http://a@b/",
            "http://b/\r\nHost: evil",
            "http://0x7f.1/",
            "http://127.1/",
            "http://evil%2ecom/",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn only_public_addresses_are_reachable_unless_allowed() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(
                reachable(ip(refused), &[]).is_err(),
                "{refused} must be refused"
            );
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(reachable(ip(public), &[]).is_ok(), "{public} is public");
        }
        let allow: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(reachable(ip("127.0.0.1"), &allow).is_ok());
        assert!(reachable(ip("10.0.0.1"), &allow).is_err());
        let message = reachable(ip("169.254.169.254"), &[]).unwrap_err();
        assert!(
            message.contains("link-local") && message.contains("--webhook-allow"),
            "{message}"
        );
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
