//! One lock helper for the whole toolbox.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a thread panicked while holding it. Every structure `cptp` keeps
/// behind a mutex (evidence lines, visits, registries) is changed whole under the lock, so
/// what a panicking thread left is still usable, and a report is better than a second panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
