//! Polling the objects file: a cheap fingerprint every second, a re-read when it changes, and
//! the last good objects kept when the new ones do not load.

use super::*;

/// How often the objects file is checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// Re-reads the objects behind `path` whenever their fingerprint changes from `seen` (taken
/// before the first load, so a change during it is not missed). A broken file is
/// logged with its position and the last good data keeps serving.
pub fn watch(
    path: PathBuf,
    filters: Filters,
    index: Arc<Index>,
    every: Duration,
    mut seen: Vec<Fingerprint>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut broken = false;
        loop {
            tokio::time::sleep(every).await;
            let now = fingerprint(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let (p, f) = (path.clone(), filters.clone());
            let loaded = tokio::task::spawn_blocking(move || load(&p, &f)).await;
            match loaded {
                Ok(Ok(snap)) => {
                    let applied = index.replace_all(snap);
                    crate::memory::release_freed();
                    if broken || applied.changed {
                        tracing::info!(
                            "plugin/kubernetes: reloaded {} ({} names)",
                            path.display(),
                            index.len()
                        );
                    }
                    broken = false;
                }
                Ok(Err(e)) => {
                    broken = true;
                    tracing::error!("plugin/kubernetes: {e}; still serving the last good objects");
                }
                Err(e) => tracing::error!("plugin/kubernetes: reading {}: {e}", path.display()),
            }
        }
    })
}
