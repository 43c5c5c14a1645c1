//! The routed pages, one per file.

pub mod activity;
pub mod not_found;
pub mod overview;
pub mod scale_set;
pub mod scale_sets;
