//! A control group for one program under test: a limit on its processes (and threads) and
//! on its memory, the count of the times it hit them, and a way to end everything in it.
//!
//! Linux has two layouts: cgroup v2, one tree (`/sys/fs/cgroup`, with `pids.max`,
//! `memory.max`, `pids.events`, `memory.events`, `cgroup.kill`), and v1, one tree per
//! controller (`/sys/fs/cgroup/pids`, `/sys/fs/cgroup/memory`, with `pids.max`,
//! `memory.limit_in_bytes`, `pids.events`, `memory.oom_control`). Both are handled: with
//! v1 the groups are made under the ones this process is in, as children; with v2 at the
//! top of the tree, the only group that may hold processes and still hand controllers
//! down. They are removed when the [`Cgroup`] is dropped. Making them needs write access
//! to the tree (root, as a rule; inside a container often not even that):
//! [`Cgroup::new`] says why not when it cannot.

use super::cleanup;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// Where this process's cgroups are, by layout.
#[derive(Debug, Clone)]
enum Layout {
    /// v2: the one directory of this process's group.
    Unified(PathBuf),
    /// v1: the pids and the memory directories of this process's groups.
    Split { pids: PathBuf, memory: PathBuf },
}

/// The two limits a cgroup carries, and what hitting them looks like.
#[derive(Debug)]
pub struct Cgroup {
    /// The group's directories: one (v2), or the pids one and the memory one (v1).
    dirs: Vec<PathBuf>,
    layout: Layout,
}

/// What a program did against its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    /// Times a fork or a new thread was refused at the process limit.
    pub processes: u64,
    /// Times the memory limit made the kernel kill a process.
    pub memory: u64,
}

impl Cgroup {
    /// A new group named `name` under this process's own, limited to `processes` tasks
    /// (processes and threads) and `memory` bytes. `Err` says why none can be made here.
    pub fn new(name: &str, processes: u64, memory: u64) -> Result<Cgroup, String> {
        let layout = layout()?;
        let dirs = match &layout {
            Layout::Unified(base) => vec![base.join(name)],
            Layout::Split { pids, memory } => vec![pids.join(name), memory.join(name)],
        };
        let group = Cgroup { dirs, layout };
        for dir in &group.dirs {
            fs::create_dir(dir)
                .map_err(|e| format!("cannot make the cgroup {}: {e}", dir.display()))?;
            cleanup::add_cgroup(dir.clone());
        }
        let set = |file: PathBuf, value: String| {
            fs::write(&file, value).map_err(|e| format!("cannot write {}: {e}", file.display()))
        };
        match &group.layout {
            Layout::Unified(_) => {
                set(group.dirs[0].join("pids.max"), processes.to_string())?;
                set(group.dirs[0].join("memory.max"), memory.to_string())?;
                // No swap either, where the kernel has it: a limit swapped around is none.
                let _ = fs::write(group.dirs[0].join("memory.swap.max"), "0");
            }
            Layout::Split { .. } => {
                set(group.dirs[0].join("pids.max"), processes.to_string())?;
                set(
                    group.dirs[1].join("memory.limit_in_bytes"),
                    memory.to_string(),
                )?;
                let _ = fs::write(
                    group.dirs[1].join("memory.memsw.limit_in_bytes"),
                    memory.to_string(),
                );
            }
        }
        Ok(group)
    }

    /// The `cgroup.procs` files a process writes `0` to, to put itself in this group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How often the limits were hit so far.
    pub fn hits(&self) -> Hits {
        let read = |path: PathBuf| fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        match &self.layout {
            Layout::Unified(_) => Hits {
                processes: field(&read(self.dirs[0].join("pids.events")), "max "),
                memory: field(&read(self.dirs[0].join("memory.events")), "oom_kill "),
            },
            Layout::Split { .. } => {
                let oom = read(self.dirs[1].join("memory.oom_control"));
                // Older kernels count no kills in oom_control; the limit's failures then.
                let memory = match oom.contains("oom_kill ") {
                    true => field(&oom, "oom_kill "),
                    false => field(&read(self.dirs[1].join("memory.failcnt")), ""),
                };
                Hits {
                    processes: field(&read(self.dirs[0].join("pids.events")), "max "),
                    memory,
                }
            }
        }
    }

    /// The processes in the group now.
    pub fn members(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .procs_files()
            .iter()
            .flat_map(|file| {
                fs::read_to_string(file)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process in the group, also those that left the process group or were
    /// started while the killing went on (a fork bomb), within a bounded number of rounds.
    pub fn kill_all(&self) {
        if let Layout::Unified(_) = self.layout
            && fs::write(self.dirs[0].join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for _ in 0..50 {
            let members = self.members();
            if members.is_empty() {
                return;
            }
            for pid in members {
                // SAFETY: kill only sends a signal; a pid that is gone gives ESRCH.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for dir in &self.dirs {
            // A group can be removed only once its last process is gone: a moment.
            for _ in 0..100 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            cleanup::forget_cgroup(dir);
        }
    }
}

/// Where this process's groups are, or why there are none to make groups under.
fn layout() -> Result<Layout, String> {
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        // v2 lets a group hand controllers to its children only if no process is in it
        // itself, the top of the tree excepted: the targets' groups are made at the top,
        // which is given the pids and memory controllers for its children if it has not.
        let control = root.join("cgroup.subtree_control");
        let given = fs::read_to_string(&control).unwrap_or_default();
        if !(given.contains("pids") && given.contains("memory")) {
            fs::write(&control, "+pids +memory").map_err(|e| {
                format!(
                    "cgroup v2: cannot give the pids and memory controllers to the groups at {} ({e})",
                    root.display()
                )
            })?;
        }
        return Ok(Layout::Unified(root.to_path_buf()));
    }
    let of = |controller: &str| -> Result<PathBuf, String> {
        let path = own
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                names
                    .split(',')
                    .any(|n| n == controller)
                    .then(|| path.to_string())
            })
            .ok_or(format!("no {controller} cgroup (v1) for this process"))?;
        let dir = root.join(controller).join(path.trim_start_matches('/'));
        match dir.is_dir() {
            true => Ok(dir),
            false => Err(format!("{} is not mounted", dir.display())),
        }
    };
    Ok(Layout::Split {
        pids: of("pids")?,
        memory: of("memory")?,
    })
}

/// Whether groups can be made here at all: one is made and removed at once.
pub fn check_writable() -> Result<(), String> {
    let probe = format!("cptp-probe-{}", std::process::id());
    Cgroup::new(&probe, 8, 64 << 20).map(drop)
}
