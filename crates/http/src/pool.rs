//! A user's idle keep-alive connections, keyed by (scheme, host, port)
//! and the proxy they go through. A user sends one request at a time, so
//! this holds about one connection per host it talks to.

use std::sync::Arc;

use crate::dial::Dialed;
use crate::origin::Origin;
use crate::proxy::Proxy;
use crate::version::HttpVersion;

#[derive(Default)]
pub struct Pool {
    /// Either protocol; each is boxed, as a connection is moved in and out
    /// of the pool on every request.
    idle: Vec<Dialed>,
}

/// More idle connections than this per user means the script talks to many
/// hosts; the oldest are closed.
const MAX_IDLE: usize = 8;

impl Pool {
    /// An idle connection to `origin`, unless there is none. `check`: first
    /// make sure the server has not closed it meanwhile (for requests that
    /// cannot simply be sent again if it has).
    pub fn take(
        &mut self,
        origin: &Origin,
        via: Option<&Arc<Proxy>>,
        version: HttpVersion,
        check: bool,
    ) -> Option<Dialed> {
        let fits = |c: &Dialed| c.fits(origin, via, version);
        while let Some(i) = self.idle.iter().rposition(fits) {
            let mut c = self.idle.swap_remove(i);
            if !check || !c.closed_while_idle() {
                return Some(c);
            }
        }
        None
    }

    /// Keeps a connection for the next request, if it can take one.
    pub fn put(&mut self, mut conn: Dialed) {
        if !conn.reusable() {
            return;
        }
        if self.idle.len() >= MAX_IDLE {
            self.idle.remove(0);
        }
        self.idle.push(conn);
    }
}
