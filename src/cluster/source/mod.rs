//! Where the cluster's objects come from: the API server's lists and watches, or an objects
//! file; both slim what they read and feed the index the same changes.

pub mod api;
pub mod file;
pub mod selector;
