//! Locks as this server takes them.

use std::sync::{Mutex, MutexGuard};

/// Takes `m`, poisoned or not. A lock is poisoned when a thread panicked while holding it; every
/// critical section here leaves its data whole at each step (a panic is caught per query and
/// costs that query alone), so the data is still good and the server keeps serving with it
/// rather than panicking in turn.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
