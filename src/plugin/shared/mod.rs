//! Helpers several directives share.

pub mod fallthrough;

/// A uniform random permutation (Fisher–Yates).
pub fn shuffle<T>(list: &mut [T]) {
    for i in (1..list.len()).rev() {
        let j = rand::random_range(0..=i);
        list.swap(i, j);
    }
}

/// This machine's host name (a pod's name in Kubernetes), as `chaos` and `nsid` answer it;
/// `localhost` where it cannot be read, as CoreDNS falls back.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `text` cut to at most `max` bytes, at a character boundary (a TXT string holds 255).
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
