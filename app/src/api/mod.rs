//! Server functions the pages call: thin, they read the engine and map errors.

pub mod pipeline;
