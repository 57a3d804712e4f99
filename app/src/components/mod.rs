//! Small reusable views.

pub mod badge;
pub mod commit_row;
pub mod diff_view;
pub mod env_card;
pub mod error_note;
pub mod gate_list;
pub mod live;
pub mod modal;
pub mod pipeline_dialogs;
pub mod table;
