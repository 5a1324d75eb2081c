//! Helpers several directives share.

pub mod fallthrough;

/// A uniform random permutation (Fisher–Yates).
pub fn shuffle<T>(list: &mut [T]) {
    for i in (1..list.len()).rev() {
        let j = rand::random_range(0..=i);
        list.swap(i, j);
    }
}
