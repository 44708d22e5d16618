//! Peers on several machines: test hosts built from Linux network namespaces.
//!
//! Each test builds a small network of its own: a bridge in a namespace of its own (the
//! switch) and one namespace per host, plugged into it by a veth pair, with the addresses
//! 198.18.0.1, .2, ... (the benchmarking range; nothing leaves these namespaces). Real
//! `peer` processes run inside with `ip netns exec`. The namespaces, and the hosts files in
//! `/etc/netns/`, are removed when the test ends, also when it fails.
//!
//! Building hosts needs root and `ip`. Where they cannot be built the tests say so on
//! stderr and pass, except under CI (env `CI` set), where that is a failure ([`hosts`]).

use cptp::harness::netns::Net;
use cptp::harness::{PATIENCE, Process, Scratch, run_bounded};
use std::time::{Duration, Instant};

/// The peer binary Cargo built for these tests.
const PEER: &str = env!("CARGO_BIN_EXE_peer");

/// A vanished machine must be noticed within this (PROTOCOL 5.4).
const VANISHED_WITHIN: Duration = Duration::from_secs(30);

/// The hosts of one test and the scratch folder for its peers, or `None` (said on stderr)
/// where namespaces cannot be made. Under CI they must be made: CI runs as root, so
/// failing there is a real failure.
fn hosts(count: usize) -> Option<Hosts> {
    match Net::build(count) {
        Ok(net) => Some(Hosts {
            net,
            scratch: Scratch::new(PEER),
        }),
        Err(why) => {
            cptp::harness::skip_or_fail(&format!(
                "cannot build test hosts ({why}); they need root and `ip`"
            ));
            None
        }
    }
}

/// A test's network, and course-style peer folders (`peer1-2`) for it.
struct Hosts {
    net: Net,
    scratch: Scratch,
}

impl Hosts {
    /// Starts a peer on host `i` in the folder `folder` and waits for its address line.
    fn start(&self, i: usize, folder: &str, args: &[&str]) -> Process {
        self.scratch
            .command(folder, args)
            .under(&self.net.exec(i))
            .run()
    }

    /// Runs a peer on host `i` that should exit by itself within [`PATIENCE`]: its exit
    /// status (`None` if it had to be killed, or was killed by a signal) and stderr.
    fn run_to_end(&self, i: usize, folder: &str, args: &[&str]) -> (Option<i32>, String) {
        let [wrapper, wrapper_args @ ..] = self.net.exec(i);
        let mut command = std::process::Command::new(wrapper);
        command
            .args(wrapper_args)
            .arg(PEER)
            .args(args)
            .current_dir(self.scratch.folder(folder))
            .env_remove("RUST_LOG");
        match run_bounded(&mut command, PATIENCE) {
            Ok(out) => (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
            Err(why) => (None, why),
        }
    }
}

/// Reads `peer`'s lines until one starts with `prefix`; returns it.
fn wait_for_prefix(peer: &mut Process, prefix: &str) -> String {
    peer.wait_for(prefix, |l| l.starts_with(prefix))
}

/// The course's chain on hosts 1, 2, 3 with the given binds, then a fourth host joins the
/// full peer1 and is led by the addresses it is handed to the one free slot, peer3's.
fn chain_on_four_hosts(binds: [&str; 4]) {
    let Some(lab) = hosts(4) else { return };
    let mut peer1 = lab.start(0, "peer1-2", &["-b", binds[0]]);
    assert_eq!(
        *peer1.addr.ip(),
        Net::address(0),
        "the first line shows host 1's address"
    );
    let (a1, p1) = (peer1.addr.to_string(), peer1.addr.port());
    let mut peer2 = lab.start(1, "peer2-1", &["-b", binds[1], "-p", &a1]);
    assert_eq!(*peer2.addr.ip(), Net::address(1));
    let (a2, p2) = (peer2.addr.to_string(), peer2.addr.port());
    wait_for_prefix(
        &mut peer2,
        &format!("Connected to peer peer1:{p1} at timestamp: "),
    );
    peer2.expect_lines(&[&format!("Received ack from peer1:{p1}")]);
    peer1.expect_lines(&[&format!("Connected from peer {a2}")]);

    let mut peer3 = lab.start(2, "peer3-2", &["-b", binds[2], "-p", &a2]);
    let (a3, p3) = (peer3.addr.to_string(), peer3.addr.port());
    peer2.expect_lines(&[&format!("Peer table full: {a3} redirected")]);
    peer3.expect_lines(&[
        &format!("Received ack from peer2:{p2}"),
        &format!("  which is peered with: [{a1}]"),
        "",
        "The join has been declined; the auto-join process is performing ...",
        "",
    ]);
    wait_for_prefix(
        &mut peer3,
        &format!("Connected to peer peer1:{p1} at timestamp: "),
    );
    peer3.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{a2}]"),
    ]);
    peer1.expect_lines(&[&format!("Connected from peer {a3}")]);

    // peer1 hands out peer2 and peer3 as it saw them; from host 4 they are joinable.
    let mut peer4 = lab.start(3, "peer4-2", &["-b", binds[3], "-p", &a1]);
    peer4.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{a2}], [{a3}]"),
    ]);
    wait_for_prefix(
        &mut peer4,
        &format!("Connected to peer peer3:{p3} at timestamp: "),
    );
    peer3.expect_lines(&[&format!("Connected from peer {}", peer4.addr)]);
    for peer in [&peer1, &peer2, &peer3] {
        assert!(peer.stderr().is_empty(), "{:?}", peer.stderr());
    }
}

#[test]
fn chain_across_hosts_each_bound_to_its_own_address() {
    chain_on_four_hosts(["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]);
}

#[test]
fn chain_across_hosts_bound_to_every_interface() {
    chain_on_four_hosts(["0.0.0.0"; 4]);
}

#[test]
fn a_host_name_is_resolved_through_the_hosts_file() {
    let Some(lab) = hosts(2) else { return };
    lab.net
        .hosts_file(1, "127.0.0.1 localhost\n198.18.0.1 lab-01\n")
        .expect("hosts file");
    let mut peer1 = lab.start(0, "peer1-2", &["-b", "0.0.0.0"]);
    let p1 = peer1.addr.port();
    let by_name = format!("lab-01:{p1}");
    let mut peer2 = lab.start(1, "peer2-2", &["-b", "0.0.0.0", "-p", &by_name]);
    wait_for_prefix(
        &mut peer2,
        &format!("Connected to peer peer1:{p1} at timestamp: "),
    );
    peer1.expect_lines(&[&format!("Connected from peer {}", peer2.addr)]);

    let (status, stderr) = lab.run_to_end(1, "peer3-2", &["-b", "0.0.0.0", "-p", "lab-99:4000"]);
    assert_eq!(status, Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("'lab-99' does not resolve"), "{stderr}");
}

#[test]
fn a_peer_joined_over_loopback_is_handed_to_other_hosts_at_this_hosts_address() {
    let Some(lab) = hosts(2) else { return };
    let mut peer1 = lab.start(0, "peer1-1", &["-b", "0.0.0.0"]);
    let p1 = peer1.addr.port();
    // A second peer on host 1 joins over loopback: peer1 records it as 127.0.0.1.
    let local = format!("127.0.0.1:{p1}");
    let mut peer2 = lab.start(0, "peer2-2", &["-b", "0.0.0.0", "-p", &local]);
    let p2 = peer2.addr.port();
    wait_for_prefix(&mut peer2, &format!("Connected to peer peer1:{p1}"));
    peer1.expect_lines(&[&format!("Connected from peer 127.0.0.1:{p2}")]);

    // Host 2 is handed host 1's address with peer2's port, and joins peer2 there.
    let mut peer3 = lab.start(
        1,
        "peer3-2",
        &["-b", "0.0.0.0", "-p", &peer1.addr.to_string()],
    );
    wait_for_prefix(&mut peer1, "Peer table full: ");
    peer3.expect_lines(&[
        &format!("Received ack from peer1:{p1}"),
        &format!("  which is peered with: [{}:{p2}]", Net::address(0)),
    ]);
    wait_for_prefix(
        &mut peer3,
        &format!("Connected to peer peer2:{p2} at timestamp: "),
    );
    wait_for_prefix(&mut peer2, &format!("Connected from peer {}", peer3.addr));
}

/// Host `gone` vanishes (its cable cut, then its peer killed, so not even a reset gets
/// out); the peer linked to it on host `stays` must say it left within 30 s, and the slot
/// must take a join from host 3.
fn a_vanished_host_is_dropped(gone_accepts: bool) {
    let Some(lab) = hosts(3) else { return };
    let mut accepting = lab.start(0, "peer1-1", &["-b", "198.18.0.1"]);
    let mut joining = lab.start(
        1,
        "peer2-1",
        &["-b", "198.18.0.2", "-p", &accepting.addr.to_string()],
    );
    wait_for_prefix(&mut joining, "Connected to peer peer1:");
    wait_for_prefix(&mut accepting, "Connected from peer ");
    let (gone, stays, gone_host) = match gone_accepts {
        true => (&mut accepting, &mut joining, 0),
        false => (&mut joining, &mut accepting, 1),
    };
    lab.net.unplug(gone_host).expect("unplug");
    gone.kill();
    let cut = Instant::now();
    let left = format!("Peer {} left", gone.addr);
    let noticed = stays.try_wait_for(VANISHED_WITHIN, |l| l.starts_with(&left));
    assert!(noticed.is_ok(), "{noticed:?}; stdout: {:#?}", stays.seen);
    eprintln!(
        "noticed a vanished host after {:.1} s",
        cut.elapsed().as_secs_f64()
    );
    let mut newcomer = lab.start(
        2,
        "peer3-1",
        &["-b", "198.18.0.3", "-p", &stays.addr.to_string()],
    );
    wait_for_prefix(&mut newcomer, "Connected to peer ");
}

#[test]
fn a_vanished_joining_host_is_dropped_by_the_accepting_peer() {
    a_vanished_host_is_dropped(false);
}

#[test]
fn a_vanished_accepting_host_is_dropped_by_the_joining_peer() {
    a_vanished_host_is_dropped(true);
}

#[test]
fn a_loopback_peer_is_told_which_bind_reaches_another_host() {
    let Some(lab) = hosts(2) else { return };
    // Told to join another machine: exit 2 at once, naming the -b that routes there.
    let far = format!("{}:4000", Net::address(1));
    let (status, stderr) = lab.run_to_end(0, "peer1-2", &["-p", &far]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("another machine (198.18.0.2)"), "{stderr}");
    assert!(stderr.contains("-b 198.18.0.1"), "{stderr}");

    // This machine's own address is no other machine: the join is tried. A peer there on
    // loopback only refuses it, and the advice names the loopback address to use.
    let mut peer1 = lab.start(0, "peer1-2", &[]);
    let p1 = peer1.addr.port();
    let own = format!("{}:{p1}", Net::address(0));
    let mut peer2 = lab.start(0, "peer2-2", &["-p", &own]);
    wait_for_prefix(&mut peer2, "No peer accepted the join");
    let advice = peer2.wait_for_stderr(&["Connection refused", "is this machine"]);
    assert!(advice.contains(&format!("-p 127.0.0.1:{p1}")), "{advice}");
    assert!(!advice.contains("another machine"), "{advice}");

    // From another machine, the refusal says what is likely wrong.
    let mut peer3 = lab.start(1, "peer3-2", &["-b", "198.18.0.2", "-p", &own]);
    wait_for_prefix(&mut peer3, "No peer accepted the join");
    peer3.wait_for_stderr(&["Connection refused", "127.0.0.1 only", "-b 198.18.0.1"]);

    // And a loopback peer joining a peer on all interfaces at this machine's address works.
    let mut open = lab.start(0, "peer4-2", &["-b", "0.0.0.0"]);
    let mut peer5 = lab.start(0, "peer5-2", &["-p", &open.addr.to_string()]);
    wait_for_prefix(&mut peer5, "Connected to peer peer4:");
    open.expect_lines(&[&format!("Connected from peer {}", peer5.addr)]);
    peer1.kill();
}
