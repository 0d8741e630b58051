//! A TCP relay that can cut the network without closing anything: while
//! paused it accepts and holds connections but passes no byte either way,
//! as a partition does (no FIN, no RST; only silence). Resumed, it passes
//! whatever was held and carries on.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// How often blocked threads look at the pause and stop flags.
const POLL: Duration = Duration::from_millis(20);

struct Flags {
    paused: AtomicBool,
    stopped: AtomicBool,
}

impl Flags {
    /// Blocks while paused; false once the relay is stopped.
    fn wait_open(&self) -> bool {
        while self.paused.load(Ordering::SeqCst) {
            if self.stopped.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(POLL);
        }
        !self.stopped.load(Ordering::SeqCst)
    }
}

/// Listens on a free loopback port and forwards every connection to `upstream`.
pub struct Relay {
    addr: SocketAddr,
    flags: Arc<Flags>,
}

impl Relay {
    pub fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("relay addr");
        let flags = Arc::new(Flags {
            paused: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        let accept_flags = flags.clone();
        thread::spawn(move || accept_loop(listener, upstream, accept_flags));
        Relay { addr, flags }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Cut: from now on no byte passes, in either direction.
    pub fn pause(&self) {
        self.flags.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.flags.paused.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.flags.stopped.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, flags: Arc<Flags>) {
    while !flags.stopped.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let flags = flags.clone();
                thread::spawn(move || connect(client, upstream, flags));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, flags: Arc<Flags>) {
    // A connection made during a cut waits, as a SYN would be retried.
    if !flags.wait_open() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let f = flags.clone();
    thread::spawn(move || pump(client, server, f));
    pump(server2, client2, flags);
}

/// Copies `from` to `to` until either closes or the relay stops; holds
/// every byte while paused.
fn pump(mut from: TcpStream, mut to: TcpStream, flags: Arc<Flags>) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if !flags.wait_open() {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        // Read just before a cut: hold it until the cut ends.
        if !flags.wait_open() || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
