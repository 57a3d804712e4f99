//! Small reusable views.

pub mod env_card;
