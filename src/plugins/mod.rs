//! Runtime behaviour of each directive: one module per plugin, each built from its typed config.

pub mod cache;
pub mod errors;
pub mod forward;
pub mod kubernetes;
pub mod loadbalance;
pub mod log;
pub mod loops;
pub mod upstream;
