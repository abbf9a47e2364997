//! Requests that stay open waiting for news (change streams and long polls): how many one
//! credential or one client address may hold, and the signal that ends them all when the
//! server shuts down, so a graceful shutdown is not held up by clients that never hang up.

use super::error::{ApiError, ErrorCode};
use super::quota::{Subject, anonymous_subject};
use crate::service::CallerId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What a client is told to wait before opening another stream.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Caller(CallerId),
    Address(IpAddr),
}

/// The open streams and waiting polls, counted per holder.
#[derive(Debug)]
pub struct Live {
    closing: watch::Sender<bool>,
    open: Mutex<HashMap<Holder, usize>>,
    per_credential: usize,
    per_address: usize,
}

impl Live {
    pub fn new(per_credential: usize, per_address: usize) -> Self {
        Self {
            closing: watch::Sender::new(false),
            open: Mutex::default(),
            per_credential,
            per_address,
        }
    }

    /// Counts one more open request for the caller (when it has a credential) and for its
    /// address, or refuses with 429 when either holds its share already.
    pub fn enter(
        self: &Arc<Self>,
        caller: Option<&CallerId>,
        ip: IpAddr,
    ) -> Result<LiveSlot, ApiError> {
        let address = match anonymous_subject(ip) {
            Subject::Ip(key) => key,
            Subject::Caller(_) => ip,
        };
        let mut holders = vec![(Holder::Address(address), self.per_address, "address")];
        if let Some(c) = caller {
            holders.push((Holder::Caller(c.clone()), self.per_credential, "credential"));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for (holder, max, what) in &holders {
            if open.get(holder).copied().unwrap_or(0) >= *max {
                super::metrics::rejected("too_many_streams");
                return Err(ApiError::new(
                    ErrorCode::TooManyStreams,
                    format!(
                        "this {what} already holds {max} open change streams or waiting polls; \
                         close one, or poll without `wait`"
                    ),
                )
                .retry_after(RETRY_AFTER_SECS));
            }
        }
        let holders: Vec<Holder> = holders.into_iter().map(|(h, _, _)| h).collect();
        for h in &holders {
            *open.entry(h.clone()).or_insert(0) += 1;
        }
        Ok(LiveSlot {
            live: self.clone(),
            holders,
        })
    }

    /// Ends every stream and poll (at shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Turns true when the server begins to shut down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Streams and polls open right now.
    pub fn open_now(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.iter()
            .filter(|(h, _)| matches!(h, Holder::Address(_)))
            .map(|(_, n)| *n)
            .sum()
    }
}

/// One open stream or waiting poll, counted until dropped.
#[derive(Debug)]
pub struct LiveSlot {
    live: Arc<Live>,
    holders: Vec<Holder>,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let mut open = self.live.open.lock().unwrap_or_else(|p| p.into_inner());
        for h in &self.holders {
            if let Some(n) = open.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    open.remove(h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_holds_at_most_its_share_and_frees_it_when_done() {
        let live = Arc::new(Live::new(2, 10));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let key = CallerId::Key(7);
        let a = live.enter(Some(&key), ip).unwrap();
        let _b = live
            .enter(Some(&key), "192.0.2.2".parse().unwrap())
            .unwrap();
        let refused = live.enter(Some(&key), "192.0.2.3".parse().unwrap());
        assert_eq!(refused.unwrap_err().code, ErrorCode::TooManyStreams);
        assert!(live.enter(Some(&CallerId::Key(8)), ip).is_ok());
        drop(a);
        assert!(live.enter(Some(&key), ip).is_ok());
    }

    #[test]
    fn an_address_holds_at_most_its_share_whatever_the_credentials() {
        let live = Arc::new(Live::new(10, 1));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _a = live.enter(None, ip).unwrap();
        assert!(live.enter(Some(&CallerId::Key(1)), ip).is_err());
        assert_eq!(live.open_now(), 1);
    }
}
