//! The cluster's data: the only module that knows Kubernetes object types. Sources (the API's
//! lists and watches, or an objects file) slim objects at the boundary and feed
//! [`index::Index`], which the `kubernetes` handler reads.

pub mod change;
pub mod index;
pub mod records;
pub mod slim;
pub mod source;
