//! Flotilla's black-box tests, one binary: each module starts real `flotilla serve`
//! processes (or an in-process server) on 127.0.0.1 and talks to them over HTTP and the CLI.
//! One binary instead of one per file keeps a clean build's link time and disk use down
//! (every test binary links the whole server).
mod access;
mod autoscale;
mod backtest;
mod bad_input;
mod cli;
mod control;
mod crash;
mod guard;
mod health;
mod installations;
#[cfg(feature = "libvirt")]
mod libvirt;
mod lifecycle;
mod maintenance;
mod mock_hypervisor;
mod oidc;
mod postgres;
mod predictive;
#[cfg(feature = "libvirt")]
mod real_vm;
mod replicas;
mod rollouts;
mod scale_sets;
mod secrets;
mod warm_pool;
