//! One module per page.

pub mod approvals;
pub mod login;
pub mod pipeline;
