//! The routed pages, one per file.

pub mod activity;
pub mod console;
pub mod hosts;
pub mod login;
pub mod new_scale_set;
pub mod not_found;
pub mod overview;
pub mod replicas;
pub mod scale_set;
pub mod scale_sets;
pub mod tokens;
