//! Runtime behaviour of each directive: one module per plugin, each built from its typed config.

pub mod any;
pub mod autopath;
pub mod cache;
pub mod errors;
pub mod forward;
pub mod hosts;
pub mod k8s_external;
pub mod kubernetes;
pub mod loadbalance;
pub mod log;
pub mod loops;
pub mod rewrite;
pub mod template;
pub mod upstream;

/// A uniform random permutation (Fisher–Yates).
pub fn shuffle<T>(list: &mut [T]) {
    for i in (1..list.len()).rev() {
        let j = rand::random_range(0..=i);
        list.swap(i, j);
    }
}
