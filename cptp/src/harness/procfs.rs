//! What /proc says about processes (Linux): the processes of a group, the TCP sockets they
//! hold (and so the ports they listen on), their live threads, memory and CPU time.
//!
//! The checker finds where a target listens here rather than in what it prints: a peer may
//! print its address before it listens, print another server's address first, or word the
//! line its own way. The line is the peer's claim; the kernel's socket table is the fact.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The number of live threads of process `pid`. A thread that has ended and been joined
/// stays listed for a moment while the kernel tears it down; the kernel marks it
/// PF_EXITING in the flags of its stat line, and it is not counted.
pub fn live_threads(pid: u32) -> Option<usize> {
    const PF_EXITING: u64 = 0x4;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let live = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter(|stat| {
            let flags = stat_fields(stat).get(6).and_then(|f| f.parse::<u64>().ok());
            flags.is_some_and(|flags| flags & PF_EXITING == 0)
        })
        .count();
    Some(live)
}

/// A number field of /proc/PID/status, such as `VmRSS:` (in KiB).
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// The CPU time `pid` has used (utime + stime), in clock ticks (usually 1/100 s).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat);
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The fields of a stat line after the parenthesised name (which may hold spaces):
/// state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt,
/// utime, stime, ...
fn stat_fields(stat: &str) -> Vec<&str> {
    match stat.rsplit_once(')') {
        Some((_, rest)) => rest.split_whitespace().collect(),
        None => Vec::new(),
    }
}

/// The CPU time all live threads of `pid` have used, in nanoseconds, from each thread's
/// schedstat: far finer than the clock ticks of `cpu_ticks`, but blind to threads that
/// have already ended.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let total = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Some(total)
}

/// The processes that belong to the program started as `root`: those in its process group
/// and those descended from it (a child that made a group of its own is still found).
pub fn family(root: u32) -> Vec<u32> {
    let mut parent = HashMap::new();
    let mut members = HashSet::from([root]);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![root];
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields = stat_fields(&stat);
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u32>().ok());
        if let (Some(ppid), Some(pgrp)) = (number(1), number(2)) {
            parent.insert(pid, ppid);
            if pgrp == root {
                members.insert(pid);
            }
        }
    }
    // Descendants: walk each process's parents up to the root (bounded by the table's size).
    for &pid in parent.keys() {
        let mut at = pid;
        for _ in 0..parent.len() {
            match parent.get(&at) {
                Some(&up) if up == root => {
                    members.insert(pid);
                    break;
                }
                Some(&up) if up > 1 => at = up,
                _ => break,
            }
        }
    }
    let mut members: Vec<u32> = members.into_iter().collect();
    members.sort_unstable();
    members
}

/// The state of a TCP socket, as /proc/net/tcp numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Established,
    Listen,
    CloseWait,
    Other(u8),
}

/// A TCP socket some process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub state: TcpState,
    /// For a listening socket: connections waiting to be accepted.
    pub queued: u32,
    /// Listening on every address (0.0.0.0 or ::): `local` then says 127.0.0.1.
    pub any: bool,
}

/// The IPv4 TCP sockets (and IPv6 ones that take IPv4: `::` and `::ffff:a.b.c.d`) that the
/// processes `pids` hold open. A process whose /proc cannot be read adds nothing.
pub fn sockets(pids: &[u32]) -> Vec<Socket> {
    let mut inodes = HashSet::new();
    let mut tables = HashMap::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let before = inodes.len();
        for fd in fds.filter_map(Result::ok) {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
        // Each network namespace's table once: a sandboxed target has a table of its own.
        if inodes.len() > before {
            let netns = std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            tables.entry(netns).or_insert(pid);
        }
    }
    let mut found = Vec::new();
    for pid in tables.into_values() {
        for (file, v6) in [("tcp", false), ("tcp6", true)] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
            found.extend(
                text.lines()
                    .skip(1)
                    .filter_map(|line| parse_tcp_line(line, v6))
                    .filter(|(_, inode)| inodes.contains(inode))
                    .map(|(socket, _)| socket),
            );
        }
    }
    found
}

/// The sockets of `pids` in LISTEN state.
pub fn listening(pids: &[u32]) -> Vec<Socket> {
    sockets(pids)
        .into_iter()
        .filter(|s| s.state == TcpState::Listen)
        .collect()
}

/// One line of /proc/PID/net/tcp or tcp6: the socket and its inode. IPv6 sockets are kept
/// only when IPv4 can reach them.
fn parse_tcp_line(line: &str, v6: bool) -> Option<(Socket, String)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, local_any) = hex_address(fields.get(1)?, v6)?;
    let (remote, _) = hex_address(fields.get(2)?, v6)?;
    let state = match u8::from_str_radix(fields.get(3)?, 16).ok()? {
        0x01 => TcpState::Established,
        0x0A => TcpState::Listen,
        0x08 => TcpState::CloseWait,
        other => TcpState::Other(other),
    };
    let queued = fields
        .get(4)?
        .split_once(':')
        .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok())
        .unwrap_or(0);
    let inode = fields.get(9)?.to_string();
    let socket = Socket {
        local,
        remote,
        state,
        queued,
        any: local_any,
    };
    Some((socket, inode))
}

/// `0100007F:9A4E` (IPv4: the four bytes as a little-endian word) or 32 hex digits (IPv6:
/// four such words) and a port. Returns the IPv4 address and whether it was "any" (an
/// unspecified address, shown as 127.0.0.1, where a local join reaches it).
fn hex_address(text: &str, v6: bool) -> Option<(SocketAddrV4, bool)> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::swap_bytes);
    let ip = if v6 {
        if ip.len() != 32 {
            return None;
        }
        let words = [
            word(&ip[..8])?,
            word(&ip[8..16])?,
            word(&ip[16..24])?,
            word(&ip[24..])?,
        ];
        match words {
            [0, 0, 0, 0] => Ipv4Addr::UNSPECIFIED,
            [0, 0, 0x0000_FFFF, v4] => Ipv4Addr::from(v4),
            _ => return None,
        }
    } else {
        Ipv4Addr::from(word(ip)?)
    };
    let any = ip.is_unspecified();
    let shown = if any { Ipv4Addr::LOCALHOST } else { ip };
    Some((SocketAddrV4::new(shown, port), any))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn tcp_lines_give_addresses_states_and_queues() {
        let v4 = "   0: 0100007F:9A4E 00000000:0000 0A 00000000:00000003 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0";
        let (socket, inode) = parse_tcp_line(v4, false).unwrap();
        assert_eq!(socket.local, "127.0.0.1:39502".parse().unwrap());
        assert_eq!(
            (socket.state, socket.queued, socket.any),
            (TcpState::Listen, 3, false)
        );
        assert_eq!(inode, "4242");
        let any6 = "   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1";
        let (socket, _) = parse_tcp_line(any6, true).unwrap();
        assert_eq!(
            (socket.local, socket.any),
            ("127.0.0.1:8080".parse().unwrap(), true)
        );
        let mapped = "   2: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 78 1";
        let (socket, _) = parse_tcp_line(mapped, true).unwrap();
        assert_eq!(socket.remote, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(socket.state, TcpState::Established);
        let loopback6 = "   3: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 79 1";
        assert_eq!(parse_tcp_line(loopback6, true), None, "::1 takes no IPv4");
    }

    #[test]
    fn this_process_is_seen_listening() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(v4) => v4,
            other => panic!("{other}"),
        };
        let me = std::process::id();
        assert!(family(me).contains(&me));
        let found = listening(&[me]);
        assert!(found.iter().any(|s| s.local == addr), "{addr} in {found:?}");
    }
}
