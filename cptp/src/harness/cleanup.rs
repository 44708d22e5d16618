//! Nothing a program under test started outlives `cptp`.
//!
//! Every program the harness starts runs in a process group of its own (its pid is the
//! group id), so killing the group also ends whatever it started (a shell, `node`, a child
//! it forked). The groups and the scratch folders alive right now are registered here:
//! this is the one mutable static of `cptp`, because a signal can come at any moment and
//! from no particular thread. SIGINT, SIGTERM and SIGHUP
//! are blocked in every thread and taken by one thread with `sigwait`, so the clean-up runs
//! as ordinary code (a lock, a loop), not inside a signal handler where almost nothing is
//! allowed.

use crate::sync::lock;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

/// The stop signal received, or 0: once set, the main thread reports nothing more and
/// exits with 128 + the signal, as a shell would.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

/// The signal that stopped the check, if one did.
pub fn signalled() -> Option<i32> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Process groups of targets that are running.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Scratch folders that exist.
static FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Control groups of targets that exist (their directories).
static CGROUPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Blocks the stop signals and starts the thread that waits for them. Call it before any
/// other thread starts: threads inherit the blocked set. (Children do not: the standard
/// library clears the mask before running a target.)
pub fn install() {
    // SAFETY: the sigset is initialised by sigemptyset before use; the calls only change
    // this process's signal mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let spawned = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is a valid, initialised sigset; `signal` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                SIGNALLED.store(signal, Ordering::SeqCst);
                eprintln!("cptp: stopped by signal {signal}; ending every target");
                end_everything();
                std::process::exit(128 + signal);
            }
        });
    if let Err(e) = spawned {
        eprintln!("cptp: cannot watch for Ctrl-C ({e}); targets may outlive an interrupt");
    }
}

/// Registers a process group.
pub fn add_group(pgid: i32) {
    lock(&GROUPS).push(pgid);
}

/// Kills a process group and forgets it.
pub fn kill_group(pgid: i32) {
    // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH, ignored.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
    lock(&GROUPS).retain(|g| *g != pgid);
}

pub fn add_folder(path: PathBuf) {
    lock(&FOLDERS).push(path);
}

/// Removes a scratch folder and forgets it.
pub fn remove_folder(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
    lock(&FOLDERS).retain(|p| p != path);
}

pub fn add_cgroup(dir: PathBuf) {
    lock(&CGROUPS).push(dir);
}

/// Forgets a control group (its owner removed it).
pub fn forget_cgroup(dir: &Path) {
    lock(&CGROUPS).retain(|d| d != dir);
}

/// Kills every registered group, ends every process of every control group and removes
/// it, and removes every scratch folder.
pub fn end_everything() {
    let groups: HashSet<i32> = lock(&GROUPS).drain(..).collect();
    for pgid in groups {
        // SAFETY: as in kill_group.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    let cgroups: Vec<PathBuf> = lock(&CGROUPS).drain(..).collect();
    for dir in cgroups {
        for _ in 0..20 {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            for pid in &pids {
                // SAFETY: kill only sends a signal, to a process of a target's group.
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
            if std::fs::remove_dir(&dir).is_ok() || pids.is_empty() && !dir.exists() {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let folders: Vec<PathBuf> = lock(&FOLDERS).drain(..).collect();
    for folder in folders {
        let _ = std::fs::remove_dir_all(folder);
    }
}
