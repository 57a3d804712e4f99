//! One module per page.

pub mod account;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod environment;
pub mod incident;
pub mod line;
pub mod login;
pub mod pipeline;
