//! Reusable pieces of the portal, one component per file.

pub mod activity_log;
pub mod breadcrumbs;
pub mod capacity_form;
pub mod chart;
pub mod chart_table;
pub mod confirm_action;
pub mod csrf_field;
pub mod error_panel;
pub mod field;
pub mod header;
pub mod loading;
pub mod permission_note;
pub mod placement_grid;
pub mod power_summary;
pub mod scale_control;
pub mod scale_set_card;
pub mod side_nav;
pub mod state_chip;
pub mod theme_toggle;
pub mod timestamp;
