//! Fake peers: listeners on loopback whose every connection is handled by a closure, so a
//! test (or the soak run) can be answered with exactly the bytes it wants, or with none.

use crate::PATIENCE;
use peer::sockets::ipv4;
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A stand-in peer: a listener whose connections are each handled on a thread of their own.
pub struct FakePeer {
    pub addr: SocketAddrV4,
}

impl FakePeer {
    /// Accepts up to `connections` connections, each handled by `behave`; stops accepting
    /// after that many or after [`PATIENCE`] * 3.
    pub fn start<F>(connections: usize, behave: F) -> FakePeer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        FakePeer::until(connections, Instant::now() + PATIENCE * 3, behave)
    }

    /// Accepts up to `connections` connections, each handled by `behave`, until `until`.
    pub fn until<F>(connections: usize, until: Instant, behave: F) -> FakePeer
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let addr = listener.local_addr().ok().and_then(ipv4).expect("IPv4");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let behave = Arc::new(behave);
        thread::spawn(move || {
            let mut served = 0;
            while served < connections && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        served += 1;
                        let _ = stream.set_nonblocking(false);
                        let behave = Arc::clone(&behave);
                        thread::spawn(move || behave(stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakePeer { addr }
    }

    /// A fake peer that sends `bytes` to each connection and then keeps it open a while.
    pub fn replying(bytes: Vec<u8>) -> FakePeer {
        FakePeer::start(4, move |mut stream| {
            use std::io::Write;
            let _ = stream.write_all(&bytes);
            crate::hold_open(stream);
        })
    }
}
