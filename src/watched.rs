//! Noticing that a file changed without reading it: what `hosts` and the objects file poll.

use std::path::PathBuf;
use std::time::SystemTime;

/// One file's name, size, modification time and inode: a kubelet-style symlink swap always
/// changes the inode, even when size and time come out the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub inode: u64,
}

/// A cheap fingerprint of `files` (names, sizes, modification times, inodes), to notice
/// changes without reading them; kubelet's symlink swaps change it too.
pub fn fingerprint(files: &[PathBuf]) -> Vec<Fingerprint> {
    files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            Fingerprint {
                path: p.clone(),
                len: m.as_ref().map(|m| m.len()).unwrap_or(0),
                inode: m.as_ref().map(inode).unwrap_or(0),
                modified: m.and_then(|m| m.modified().ok()),
            }
        })
        .collect()
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}
