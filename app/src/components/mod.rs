//! Reusable pieces of the portal, one component per file.

pub mod capacity_form;
pub mod confirm_action;
pub mod error_panel;
pub mod header;
pub mod instance_row;
pub mod instances_table;
pub mod loading;
pub mod power_summary;
pub mod scale_set_card;
pub mod side_nav;
pub mod state_chip;
pub mod timestamp;
