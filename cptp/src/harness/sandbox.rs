//! Untrusted code, confined: how a program under test is run when it may be anything a
//! student wrote, on the machine of the teaching assistant who grades it.
//!
//! The sandbox is bubblewrap (`bwrap`, the sandbox Flatpak uses), a few explicit mounts and
//! namespaces, each visible on its command line ([`Sandbox::confine`]):
//! - the whole system read-only, a private `/tmp`, and the target's own scratch folder the
//!   only place it can write; the folders it must not see (the grader's home, the other
//!   submissions, the reports) replaced by empty read-only folders;
//! - its own process IDs, so that it can signal nothing outside, and dies with its parent;
//! - no capabilities and no new privileges, also when the grader is root;
//! - as root, a network of its own ([`private_network`]): only a loopback interface, which
//!   the checker's fake peers and joins enter too, so the target reaches them and nothing
//!   else (no other machine, no test host, no address of this one).
//!
//! Limits, as isolate names them: processes and threads, memory (both by a control group,
//! where one can be made: see [`super::cgroup`]), CPU time and the size of a file written
//! (both by `setrlimit`). A program stopped by one says which ([`Limits::explain`]).

use super::cgroup::{self, Cgroup, Hits};
use super::programs::run_bounded;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

/// The limits of one program under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads at once (a fork bomb ends here).
    pub processes: u64,
    /// Memory, in MB.
    pub memory_mb: u64,
    /// CPU time, in seconds, of each process.
    pub cpu_secs: u64,
    /// The largest file it may write, in MB.
    pub file_mb: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            processes: 64,
            memory_mb: 512,
            cpu_secs: 60,
            file_mb: 64,
        }
    }
}

impl Limits {
    /// The limit a program ended on, in words, from what its group saw, how it ended
    /// (`status` as the standard library shows it: `signal: 24 (SIGXCPU)`) and the largest
    /// file it left (a program that ignores SIGXFSZ meets EFBIG instead, as Node.js does).
    pub fn explain(&self, hits: Hits, status: Option<&str>, largest_file: u64) -> Option<String> {
        let signalled = |number: i32, name: &str| {
            status.is_some_and(|s| {
                s.contains(name) || s.contains(&format!("exit status: {}", 128 + number))
            })
        };
        if hits.memory > 0 {
            Some(format!(
                "used more than {} MB of memory (the memory limit, --max-memory)",
                self.memory_mb
            ))
        } else if hits.processes > 0 {
            Some(format!(
                "tried to run more than {} processes and threads at once (the limit, --max-processes)",
                self.processes
            ))
        } else if signalled(libc::SIGXCPU, "SIGXCPU") {
            Some(format!(
                "used more than {} s of CPU time (the limit, --max-cpu)",
                self.cpu_secs
            ))
        } else if signalled(libc::SIGXFSZ, "SIGXFSZ") || largest_file >= self.file_mb << 20 {
            Some(format!(
                "wrote a file larger than {} MB (the limit, --max-file-size)",
                self.file_mb
            ))
        } else {
            None
        }
    }

    /// The resource limits set on the program itself: CPU time (the hard limit a second
    /// later, so that SIGXCPU comes first and says which), file size, and no core dumps.
    pub fn rlimits(&self) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
        let file = self.file_mb << 20;
        vec![
            (libc::RLIMIT_CPU, self.cpu_secs, self.cpu_secs + 1),
            (libc::RLIMIT_FSIZE, file, file),
            (libc::RLIMIT_CORE, 0, 0),
        ]
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// bwrap where it works, else none, and the report says so.
    Auto,
    /// bwrap, or a usage error.
    Bwrap,
    /// Run targets as they are.
    None,
}

/// How targets are run: in a sandbox, or not, and what of it could be had here.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The bwrap program, when targets are sandboxed.
    pub bwrap: Option<PathBuf>,
    pub limits: Limits,
    /// Whether control groups (process and memory limits) can be made, or why not.
    pub cgroups: Result<(), String>,
    /// Whether a private network can be made (root), or why not.
    pub network: Result<(), String>,
    /// Folders no target may see.
    pub hidden: Vec<PathBuf>,
    /// Why targets are not sandboxed, when they are not.
    pub why_not: Option<String>,
}

/// The one-line install advice of the report's header.
const GET_ONE: &str = "install bubblewrap (Debian and Ubuntu: apt-get install bubblewrap) for one";

impl Sandbox {
    /// No sandbox, for `reason`.
    pub fn none(reason: &str) -> Sandbox {
        Sandbox {
            bwrap: None,
            limits: Limits::default(),
            cgroups: Err("no sandbox".into()),
            network: Err("no sandbox".into()),
            hidden: Vec::new(),
            why_not: Some(reason.to_string()),
        }
    }

    /// The sandbox for `choice` with `limits`, hiding `hidden` from every target; `Err`
    /// when bwrap was asked for and cannot run here.
    pub fn choose(choice: Choice, limits: Limits, hidden: Vec<PathBuf>) -> Result<Sandbox, String> {
        if choice == Choice::None {
            return Ok(Sandbox::none("--sandbox none"));
        }
        let bwrap = match probe_bwrap() {
            Ok(bwrap) => bwrap,
            Err(e) if choice == Choice::Bwrap => return Err(format!("--sandbox bwrap: {e}")),
            Err(e) => return Ok(Sandbox::none(&e)),
        };
        Ok(Sandbox {
            bwrap: Some(bwrap),
            limits,
            cgroups: cgroup::check_writable(),
            network: private_network()
                .map(drop)
                .map_err(|e| format!("no network of its own for a target ({e}; it needs root)")),
            hidden,
            why_not: None,
        })
    }

    /// True when targets run in bwrap.
    pub fn on(&self) -> bool {
        self.bwrap.is_some()
    }

    /// The report's header line about the sandbox: what it is, or that there is none and
    /// how to get one.
    pub fn header(&self) -> String {
        if let Some(why) = &self.why_not {
            return format!(
                "sandbox: none ({why}): targets run with your permissions, your files and your network; {GET_ONE}"
            );
        }
        let l = &self.limits;
        let limits = match &self.cgroups {
            Ok(()) => format!(
                "{} processes, {} MB of memory, {} s of CPU, files of {} MB",
                l.processes, l.memory_mb, l.cpu_secs, l.file_mb
            ),
            Err(e) => format!(
                "{} s of CPU, files of {} MB; processes and memory not limited ({e})",
                l.cpu_secs, l.file_mb
            ),
        };
        let network = match &self.network {
            Ok(()) => "a network of its own (loopback, the checker's peers only)".to_string(),
            Err(e) => format!("this machine's network ({e})"),
        };
        format!(
            "sandbox: bwrap (read-only system, a private /tmp, its folder the only one it writes; {network}; limits: {limits})"
        )
    }

    /// How to run `program` for a target whose scratch folder is `scratch` and which runs
    /// in `folder` (inside it), under the name `name` (for its control group).
    pub fn confine(
        &self,
        name: &str,
        scratch: &Path,
        folder: &Path,
        program: &Path,
    ) -> Result<Confinement, String> {
        let Some(bwrap) = &self.bwrap else {
            return Ok(Confinement::default());
        };
        let mut args: Vec<String> = vec![bwrap.display().to_string()];
        let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
        // A session of its own: it cannot type into the grader's terminal (TIOCSTI).
        push(&[
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]);
        // SAFETY: geteuid only reads this process's effective user ID.
        if unsafe { libc::geteuid() } == 0 {
            push(&["--cap-drop", "ALL"]);
        }
        push(&["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]);
        // A read-only file system still lets a program connect to the Unix sockets on it:
        // the places where running services keep theirs (D-Bus, systemd, docker, ssh
        // agents: /run, /var/run) and other programs their files (/tmp, /var/tmp) are
        // replaced, like the hidden folders, by empty ones; /tmp is the target's own.
        let base = scratch.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut concealed: Vec<PathBuf> = ["/tmp", "/var/tmp", "/run"]
            .iter()
            .map(PathBuf::from)
            .collect();
        concealed.push(base);
        concealed.extend(self.hidden.iter().cloned());
        let mut seen = Vec::new();
        for dir in &concealed {
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            if !dir.is_dir() || dir == Path::new("/") || seen.contains(&dir) {
                continue;
            }
            push(&["--tmpfs", &dir.display().to_string()]);
            seen.push(dir);
        }
        let scratch_text = scratch.display().to_string();
        push(&["--bind", &scratch_text, &scratch_text]);
        // A program kept in a concealed folder (./target/release/peer in the grader's home
        // or under /tmp, a node of nvm's) is shown again, read-only, with the folder it is
        // installed in.
        if let Some(found) = locate(program)
            && let Some(home) = found.parent().and_then(Path::parent)
            && seen
                .iter()
                .any(|dir| found.starts_with(dir) && home != dir.as_path())
        {
            let home = home.display().to_string();
            push(&["--ro-bind", &home, &home]);
        }
        // Read-only, but for /tmp and the folders holding the scratch folder (a remount
        // could take the scratch folder with it).
        for dir in seen.iter().filter(|dir| !scratch.starts_with(dir)) {
            push(&["--remount-ro", &dir.display().to_string()]);
        }
        push(&["--chdir", &folder.display().to_string(), "--"]);
        let cgroup = match &self.cgroups {
            Ok(()) => Some(Cgroup::new(
                name,
                self.limits.processes,
                self.limits.memory_mb << 20,
            )?),
            Err(_) => None,
        };
        Ok(Confinement {
            wrapper: args,
            rlimits: self.limits.rlimits(),
            cgroup,
            limits: Some(self.limits),
        })
    }
}

/// How one program is confined: the command it runs under, the resource limits set on
/// it, and the control group it joins.
#[derive(Debug, Default)]
pub struct Confinement {
    /// `bwrap ... --`, to put before the program and its arguments; empty for none.
    pub wrapper: Vec<String>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub cgroup: Option<Cgroup>,
    /// The limits, for [`Limits::explain`].
    pub limits: Option<Limits>,
}

impl Confinement {
    /// What the child does between fork and exec: set its limits and join its group.
    /// Returns a closure that only makes system calls (no allocation), as a child of a
    /// threaded process must.
    pub fn before_exec(&self) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
        let rlimits = self.rlimits.clone();
        let procs: Vec<CString> = self
            .cgroup
            .iter()
            .flat_map(|c| c.procs_files())
            .filter_map(|p| CString::new(p.display().to_string()).ok())
            .collect();
        move || {
            for (resource, soft, hard) in &rlimits {
                let limit = libc::rlimit {
                    rlim_cur: *soft,
                    rlim_max: *hard,
                };
                // SAFETY: setrlimit reads the struct given; it changes this process only.
                if unsafe { libc::setrlimit(*resource, &limit) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for path in &procs {
                // SAFETY: open, write and close on a path made before the fork; "0" puts
                // the calling process into the group.
                unsafe {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                    libc::close(fd);
                    if written != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            Ok(())
        }
    }
}

/// Where `program` is: itself with a slash, else the first match on PATH.
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return std::fs::canonicalize(program).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|found| std::fs::canonicalize(found).ok())
}

/// The bwrap program, if it is installed and can make a sandbox here.
fn probe_bwrap() -> Result<PathBuf, String> {
    let bwrap = PathBuf::from("bwrap");
    let mut command = Command::new(&bwrap);
    command.args([
        "--die-with-parent",
        "--unshare-pid",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--",
        "true",
    ]);
    match run_bounded(&mut command, Duration::from_secs(10)) {
        Ok(out) if out.status.success() => Ok(bwrap),
        Ok(out) => Err(format!(
            "bwrap cannot make a sandbox here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(_) => Err("bwrap is not installed".to_string()),
    }
}

/// A new network namespace with only a loopback interface, up: a thread unshares its
/// network, brings `lo` up, and hands over a handle to the namespace. Needs root.
pub fn private_network() -> io::Result<OwnedFd> {
    let made = thread::Builder::new()
        .name("private-network".into())
        .spawn(|| -> io::Result<OwnedFd> {
            // SAFETY: unshare changes only this thread's network namespace, and the thread
            // ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            loopback_up()?;
            let file = File::open("/proc/thread-self/ns/net")?;
            Ok(OwnedFd::from(file))
        })?;
    made.join()
        .map_err(|_| io::Error::other("the thread making a network panicked"))?
}

/// Brings up `lo` in the calling thread's network namespace (SIOCSIFFLAGS).
fn loopback_up() -> io::Result<()> {
    // SAFETY: a datagram socket, used for two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(raw);
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Moves the calling thread into the network namespace `net`: every socket it makes from
/// now on, and every thread and process it starts, lives there.
pub fn enter_network(net: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns with a namespace handle changes only the calling thread.
    match unsafe { libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_named_from_what_was_seen() {
        let limits = Limits::default();
        let said = |hits, status, file| limits.explain(hits, status, file).unwrap_or_default();
        let none = Hits::default();
        let memory = Hits {
            processes: 0,
            memory: 1,
        };
        let forks = Hits {
            processes: 3,
            memory: 0,
        };
        assert!(said(memory, None, 0).contains("more than 512 MB of memory"));
        assert!(said(forks, None, 0).contains("more than 64 processes"));
        assert!(said(none, Some("signal: 24 (SIGXCPU)"), 0).contains("60 s of CPU"));
        assert!(said(none, Some("exit status: 153"), 0).contains("larger than 64 MB"));
        assert!(said(none, Some("exit status: 1"), 64 << 20).contains("larger than 64 MB"));
        assert_eq!(limits.explain(none, Some("exit status: 1"), 1 << 20), None);
    }

    #[test]
    fn no_sandbox_says_so_and_how_to_get_one() {
        let header = Sandbox::none("bwrap is not installed").header();
        assert!(
            header.starts_with("sandbox: none (bwrap is not installed)"),
            "{header}"
        );
        assert!(header.contains("apt-get install bubblewrap"), "{header}");
    }
}
