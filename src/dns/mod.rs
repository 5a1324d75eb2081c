//! DNS in wire form: names and the prepared answers written from them.

pub mod name;
pub mod soa;
pub mod wire;
