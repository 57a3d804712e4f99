//! One module per page.

pub mod pipeline;
