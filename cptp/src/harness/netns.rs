//! Test hosts on one switch, made of Linux network namespaces (needs root and `ip`).
//!
//! [`Net::build`] makes a bridge `br0` in a namespace of its own (the switch) and one
//! namespace per host, plugged into it by a veth pair (`eth0` in the host, `vN` at the
//! switch), with the addresses 198.18.0.1, .2, ... (the benchmarking range; nothing leaves
//! these namespaces). A program runs on a host under `ip netns exec`, e.g. a peer through
//! `Start::under(&net.exec(i))`. Everything is removed when the `Net` is dropped, also when
//! a test panics; a run that was killed outright is swept by the next [`Net::build`].
//!
//! Names are `peer-test-PID-N-switch` and `peer-test-PID-N-hK`, N the nanoseconds of the
//! clock when the `Net` was built: unique per process and per `Net`, so tests running in
//! parallel never share a host.

use super::programs::{PATIENCE, run_bounded};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every namespace made here is named with, followed by the maker's pid.
const PREFIX: &str = "peer-test-";

/// Where `ip netns` keeps its namespaces, and the files it mounts into them.
const RUN_NETNS: &str = "/run/netns";
const ETC_NETNS: &str = "/etc/netns";

/// Runs `ip` with `args`, for up to [`PATIENCE`]; its stderr is the error.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = run_bounded(Command::new("ip").args(args), PATIENCE)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A switch and its hosts; host `i` (from 0) is `198.18.0.{i + 1}`.
pub struct Net {
    /// The namespace holding the bridge `br0`; host `i` plugs in as `v{i + 1}`.
    switch: String,
    /// One namespace per host, each with `lo` and `eth0` up.
    hosts: Vec<String>,
    /// This machine's own cable to the switch, once plugged: its interface's name.
    plugged: Option<String>,
}

impl Net {
    /// Builds `count` hosts (at most 254) on a switch, after sweeping what killed runs
    /// left behind. `Err` says which `ip` command failed (without root: the first).
    pub fn build(count: usize) -> Result<Net, String> {
        if count > 254 {
            return Err(format!("{count} hosts do not fit in 198.18.0.0/24"));
        }
        sweep_stale();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tag = format!("{PREFIX}{}-{nanos}", std::process::id());
        let mut net = Net {
            switch: format!("{tag}-switch"),
            hosts: Vec::new(),
            plugged: None,
        };
        // From here on, whatever was made is removed by Drop, also on an early return.
        ip(&["netns", "add", &net.switch])?;
        ip(&["-n", &net.switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &net.switch, "link", "set", "br0", "up"])?;
        for i in 0..count {
            let host = format!("{tag}-h{}", i + 1);
            ip(&["netns", "add", &host])?;
            net.hosts.push(host.clone());
            let port = format!("v{}", i + 1);
            let veth = ["link", "add", "eth0", "type", "veth", "peer", "name", &port];
            ip(&[&["-n", &host][..], &veth, &["netns", &net.switch]].concat())?;
            let plug = ["link", "set", &port, "master", "br0", "up"];
            ip(&[&["-n", &net.switch][..], &plug].concat())?;
            let cidr = format!("{}/24", Net::address(i));
            ip(&["-n", &host, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// The address of host `i`.
    pub fn address(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, i as u8 + 1)
    }

    /// The namespace of host `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// The wrapper that runs a program on host `i`: `ip netns exec NAME`.
    pub fn exec(&self, i: usize) -> [&str; 4] {
        ["ip", "netns", "exec", &self.hosts[i]]
    }

    /// Plugs this machine itself into the switch as 198.18.0.254, so that a program run
    /// here, in no namespace of the test's, can reach the hosts (as a grader's machine on
    /// a lab network could). The cable is removed with the `Net`.
    pub fn plug_this_machine(&mut self) -> Result<Ipv4Addr, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Interface names have at most 15 characters.
        let name = format!("cptp{:08x}", nanos ^ std::process::id());
        let cable = [
            "link", "add", &name, "type", "veth", "peer", "name", "vhere",
        ];
        ip(&[&cable[..], &["netns", &self.switch]].concat())?;
        self.plugged = Some(name.clone());
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            "vhere",
            "master",
            "br0",
            "up",
        ])?;
        let here = Ipv4Addr::new(198, 18, 0, 254);
        ip(&["addr", "add", &format!("{here}/24"), "dev", &name])?;
        ip(&["link", "set", &name, "up"])?;
        Ok(here)
    }

    /// Unplugs host `i`: its cable is cut at the switch, so nothing it sends arrives.
    pub fn unplug(&self, i: usize) -> Result<(), String> {
        let port = format!("v{}", i + 1);
        ip(&["-n", &self.switch, "link", "set", &port, "down"])
    }

    /// Gives host `i` the hosts file `text` (`ip netns exec` mounts it over /etc/hosts),
    /// and a resolver that asks only host 1, where no DNS server runs: a name missing from
    /// the file fails at once without leaving the test network.
    pub fn hosts_file(&self, i: usize, text: &str) -> Result<(), String> {
        let dir = Path::new(ETC_NETNS).join(&self.hosts[i]);
        let resolver = format!(
            "nameserver {}\noptions timeout:1 attempts:1\n",
            Net::address(0)
        );
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("hosts"), text))
            .and_then(|()| std::fs::write(dir.join("resolv.conf"), resolver))
            .map_err(|e| format!("{}: {e}", dir.display()))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces. Processes still inside keep it alive
        // unseen, so a test drops its peers (declared after the net) before the net.
        if let Some(cable) = &self.plugged {
            let _ = ip(&["link", "del", cable]);
        }
        for name in self.hosts.iter().chain([&self.switch]) {
            remove(name);
        }
    }
}

/// Deletes the namespace `name` and its folder in /etc/netns.
fn remove(name: &str) {
    let _ = ip(&["netns", "del", name]);
    let _ = std::fs::remove_dir_all(Path::new(ETC_NETNS).join(name));
}

/// Removes the namespaces (and /etc/netns folders) of runs that were killed before their
/// `Net` was dropped: those named with a pid that is no longer alive. What still runs in
/// such a namespace (a peer orphaned by the kill) is killed first.
pub fn sweep_stale() {
    let mut names: Vec<String> = [RUN_NETNS, ETC_NETNS]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| stale(name))
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        if let Ok(out) = run_bounded(Command::new("ip").args(["netns", "pids", &name]), PATIENCE) {
            let pids = String::from_utf8_lossy(&out.stdout).into_owned();
            let pids: Vec<&str> = pids.split_whitespace().collect();
            if !pids.is_empty() {
                let _ = run_bounded(Command::new("kill").arg("-KILL").args(&pids), PATIENCE);
            }
        }
        remove(&name);
    }
}

/// True for a name made by [`Net::build`] in a process that is gone.
fn stale(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let pid = rest.split('-').next().unwrap_or_default();
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_dead_processes_are_stale() {
        let me = std::process::id();
        assert!(!stale(&format!("{PREFIX}{me}-0-switch")));
        assert!(stale(&format!("{PREFIX}4294967295-0-h1")));
        assert!(!stale("peer-test-x-0-h1"));
        assert!(!stale("other-4294967295-0-h1"));
    }
}
