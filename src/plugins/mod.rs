//! Runtime behaviour of each directive: one module per plugin, each built from its typed config.

pub mod errors;
pub mod kubernetes;
pub mod log;
