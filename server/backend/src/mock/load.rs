//! The mock's load model: a scale set's synthetic demand plus the real requests each VM
//! received, turned into CPU, memory, network and disk figures per running VM.
//!
//! - The demand is shared among the set's running, healthy VMs. A VM that booted less than
//!   [`WARMUP`] ago takes a share growing linearly from nothing (a load balancer's slow
//!   start) and burns extra CPU that fades over the same time (boot work).
//! - Each vCPU serves [`RPS_PER_VCPU`] requests per second at 100 % CPU; CPU is
//!   `IDLE_CPU + 100 × rps / (vcpus × RPS_PER_VCPU)`, capped at 100 %.
//! - Noise is deterministic: a hash of the demand's seed, the VM's id and the second, so two
//!   runs with the same seed see the same figures.

use std::time::Duration;

use flotilla_domain::demand::Demand;

use crate::VmUsage;

/// Requests per second one vCPU serves at 100 % CPU.
pub const RPS_PER_VCPU: f64 = 50.0;
/// How long a booted VM warms up.
pub const WARMUP: Duration = Duration::from_secs(10);
const IDLE_CPU: f64 = 2.0;
const BOOT_CPU: f64 = 40.0;
const DEFAULT_NOISE_PERCENT: f64 = 5.0;

/// What the model needs to know about one running VM.
#[derive(Debug, Clone, PartialEq)]
pub struct VmLoadInput {
    pub id: String,
    pub vcpus: u32,
    pub running_for: Duration,
    /// An `unhealthy` fault is on it: it takes no share of the demand.
    pub unhealthy: bool,
    /// Real requests per second it received.
    pub real_rps: f64,
}

/// One VM's figures: the requests it serves and what that costs.
#[derive(Debug, Clone, PartialEq)]
pub struct VmLoad {
    pub requests_per_second: f64,
    pub usage: VmUsage,
}

fn warmth(running_for: Duration) -> f64 {
    (running_for.as_secs_f64() / WARMUP.as_secs_f64()).clamp(0.0, 1.0)
}

/// The figures of a set's running VMs at `second` (Unix seconds, for the noise), given the
/// demand's value now (`rps`) and its settings (noise, seed).
pub fn set_load(
    vms: &[VmLoadInput],
    rps: f64,
    demand: Option<&Demand>,
    second: i64,
) -> Vec<VmLoad> {
    // A VM that just booted takes a sliver, so demand is never lost while all warm up.
    let weights: Vec<f64> = vms
        .iter()
        .map(|vm| {
            if vm.unhealthy {
                0.0
            } else {
                warmth(vm.running_for).max(0.01)
            }
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let (noise_percent, seed) =
        demand.map_or((DEFAULT_NOISE_PERCENT, 1), |d| (d.noise_percent, d.seed));
    vms.iter()
        .zip(weights)
        .map(|(vm, weight)| {
            let share = if total > 0.0 {
                rps * weight / total
            } else {
                0.0
            };
            let served = share + vm.real_rps;
            let noise = 1.0 + noise_percent / 100.0 * unit_noise(seed, &vm.id, second);
            let boot = BOOT_CPU * (1.0 - warmth(vm.running_for));
            let capacity = f64::from(vm.vcpus.max(1)) * RPS_PER_VCPU;
            let cpu = ((IDLE_CPU + 100.0 * served / capacity) * noise + boot).clamp(0.0, 100.0);
            VmLoad {
                requests_per_second: served,
                usage: VmUsage {
                    cpu_percent: cpu,
                    memory_percent: (20.0 + 0.5 * cpu).clamp(0.0, 100.0),
                    network_in_bytes_per_second: (200.0 + served * 800.0) * noise,
                    network_out_bytes_per_second: (300.0 + served * 6_000.0) * noise,
                    disk_read_bytes_per_second: (4_096.0 + served * 100.0) * noise,
                    disk_write_bytes_per_second: (16_384.0 + served * 300.0) * noise,
                },
            }
        })
        .collect()
}

/// A value in [-1, 1] from (seed, id, second): splitmix64 over an FNV-1a hash of the id.
fn unit_noise(seed: u64, id: &str, second: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ seed.rotate_left(17) ^ (second as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(id: &str, secs: u64) -> VmLoadInput {
        VmLoadInput {
            id: id.into(),
            vcpus: 2,
            running_for: Duration::from_secs(secs),
            unhealthy: false,
            real_rps: 0.0,
        }
    }

    fn quiet() -> Demand {
        serde_json::from_str(r#"{"pattern":"constant","rps":0,"noise_percent":0}"#).unwrap()
    }

    #[test]
    fn demand_is_shared_and_turned_into_cpu() {
        let vms = [vm("a", 600), vm("b", 600)];
        let load = set_load(&vms, 100.0, Some(&quiet()), 0);
        // 50 rps each on 2 vCPUs of 50 rps: 2 + 50 %.
        assert_eq!(load[0].requests_per_second, 50.0);
        assert_eq!(load[0].usage.cpu_percent, 52.0);
        assert_eq!(load[1].usage.cpu_percent, 52.0);
        let saturated = set_load(&vms, 1000.0, Some(&quiet()), 0);
        assert_eq!(saturated[0].usage.cpu_percent, 100.0);
    }

    #[test]
    fn warming_and_unhealthy_vms_take_less() {
        let mut sick = vm("c", 600);
        sick.unhealthy = true;
        let vms = [vm("a", 600), vm("b", 5), sick];
        let load = set_load(&vms, 150.0, Some(&quiet()), 0);
        assert_eq!(load[0].requests_per_second, 100.0);
        assert_eq!(load[1].requests_per_second, 50.0);
        assert_eq!(load[2].requests_per_second, 0.0);
        // Half warmed: half the boot CPU on top.
        assert_eq!(load[1].usage.cpu_percent, 2.0 + 50.0 + 20.0);
    }

    #[test]
    fn real_requests_add_load_and_noise_is_seeded() {
        let mut busy = vm("a", 600);
        busy.real_rps = 25.0;
        assert_eq!(
            set_load(&[busy], 0.0, Some(&quiet()), 0)[0]
                .usage
                .cpu_percent,
            27.0
        );
        let noisy: Demand =
            serde_json::from_str(r#"{"pattern":"constant","rps":50,"seed":7}"#).unwrap();
        let vms = [vm("a", 600)];
        let a = set_load(&vms, 50.0, Some(&noisy), 42);
        let b = set_load(&vms, 50.0, Some(&noisy), 42);
        let c = set_load(&vms, 50.0, Some(&noisy), 43);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!((a[0].usage.cpu_percent - 52.0).abs() <= 52.0 * 0.05 + 1e-9);
    }
}
