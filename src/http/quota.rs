//! Quotas: a token bucket per caller (API key, learner token, or client IP for requests
//! without a credential), charged by the declared cost of each route, and the IETF
//! `RateLimit-Policy` / `RateLimit` headers that tell clients where they stand.
//!
//! Written here rather than on `governor`: every key may carry a quota of its own, and the
//! headers need the bucket's remaining units and refill time, which a keyed `governor` limiter
//! (one quota per limiter) does not give per key.

use crate::domain::{Net, Rate};
use crate::service::CallerId;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Buckets kept at most; beyond, idle (full) buckets are dropped first. Bounds memory under a
/// flood of distinct addresses or keys.
const MAX_BUCKETS: usize = 100_000;
/// How often idle buckets are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Who a charge is made to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Ip(IpAddr),
    Caller(CallerId),
}

impl Subject {
    /// The policy name in the headers.
    fn policy(&self) -> &'static str {
        match self {
            Subject::Ip(_) => "anonymous",
            Subject::Caller(_) => "key",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    capacity: f64,
    per_sec: f64,
}

impl Bucket {
    fn refilled(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * self.per_sec).min(self.capacity)
    }
}

/// The outcome of a charge, with what the headers say.
#[derive(Debug, Clone)]
pub struct Charge {
    policy: &'static str,
    rate: Rate,
    remaining: u64,
    /// Seconds until the bucket is full again.
    reset_secs: u64,
    /// Set when the charge was refused: seconds until it would succeed (≥ 1).
    pub retry_after: Option<u64>,
}

impl Charge {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let policy = format!(
            "\"{}\";q={};w={}",
            self.policy, self.rate.units, self.rate.window_secs
        );
        let state = format!(
            "\"{}\";r={};t={}",
            self.policy, self.remaining, self.reset_secs
        );
        if let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert(RATELIMIT_POLICY.clone(), p);
            headers.insert(RATELIMIT.clone(), s);
        }
    }
}

/// Every caller's bucket.
#[derive(Debug)]
pub struct Quotas {
    pub enabled: bool,
    /// For requests without a credential, per client IP.
    pub anonymous: Rate,
    /// For keys without a quota of their own, the admin key and learner tokens.
    pub key_default: Rate,
    buckets: Mutex<(HashMap<Subject, Bucket>, Instant)>,
    /// Whether a cost above a whole quota was logged yet (it is logged once).
    cost_capped: AtomicBool,
}

impl Quotas {
    pub fn new(enabled: bool, anonymous: Rate, key_default: Rate) -> Self {
        Self {
            enabled,
            anonymous,
            key_default,
            buckets: Mutex::new((HashMap::new(), Instant::now())),
            cost_capped: AtomicBool::new(false),
        }
    }

    /// Takes `cost` units from `subject`'s bucket (of `rate`) if it holds them.
    pub fn charge(&self, subject: Subject, rate: Rate, cost: u32) -> Charge {
        let now = Instant::now();
        let capacity = f64::from(rate.units);
        let per_sec = capacity / f64::from(rate.window_secs);
        // A cost above the whole quota could never pass: it takes the whole bucket instead
        // (a quota is any rate of at least one unit; a route costs up to 100).
        if f64::from(cost) > capacity && !self.cost_capped.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                cost,
                quota = rate.units,
                "a request costs more than its caller's whole quota, so it takes the whole \
                 bucket instead; raise KB_ANONYMOUS_RATE, KB_KEY_RATE or the key's rate (logged \
                 once)"
            );
        }
        let cost = f64::from(cost).min(capacity);
        let policy = subject.policy();
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (buckets, last_sweep) = &mut *guard;
        if now.duration_since(*last_sweep) > SWEEP_EVERY || buckets.len() >= MAX_BUCKETS {
            sweep(buckets, now);
            *last_sweep = now;
        }
        let bucket = buckets.entry(subject).or_insert(Bucket {
            tokens: capacity,
            at: now,
            capacity,
            per_sec,
        });
        // A key's quota may have changed since its bucket was made.
        bucket.capacity = capacity;
        bucket.per_sec = per_sec;
        let tokens = bucket.refilled(now);
        let (tokens, retry_after) = if tokens >= cost {
            (tokens - cost, None)
        } else {
            let wait = ((cost - tokens) / per_sec).ceil().max(1.0) as u64;
            (tokens, Some(wait))
        };
        bucket.tokens = tokens;
        bucket.at = now;
        Charge {
            policy,
            rate,
            remaining: tokens.floor() as u64,
            reset_secs: ((capacity - tokens) / per_sec).ceil() as u64,
            retry_after,
        }
    }

    /// Buckets held now (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops buckets that have refilled (they hold no information); if that is not enough, drops
/// the ones touched longest ago until a tenth of the room is free.
fn sweep(buckets: &mut HashMap<Subject, Bucket>, now: Instant) {
    buckets.retain(|_, b| b.refilled(now) < b.capacity);
    if buckets.len() >= MAX_BUCKETS {
        let mut ages: Vec<(Instant, Subject)> =
            buckets.iter().map(|(s, b)| (b.at, s.clone())).collect();
        ages.sort_by_key(|(at, _)| *at);
        let excess = buckets.len() - MAX_BUCKETS * 9 / 10;
        for (_, s) in ages.into_iter().take(excess) {
            buckets.remove(&s);
        }
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy. Walking from the right, an
/// entry that does not parse ends the walk: what stands left of it was written by whoever
/// talked to the proxy and proves nothing. IPv4 addresses seen through an IPv6 socket count as
/// IPv4.
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Net]) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let parsed = entry
            .parse::<IpAddr>()
            .ok()
            .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()));
        let Some(ip) = parsed.map(|ip| ip.to_canonical()) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The bucket an anonymous client is charged to: its address, or for IPv6 its /64 (one
/// subscriber's network: rotating addresses inside it buys nothing).
pub fn anonymous_subject(ip: IpAddr) -> Subject {
    match ip {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            Subject::Ip(IpAddr::V6(prefix.into()))
        }
        v4 => Subject::Ip(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(units: u32, window_secs: u32) -> Rate {
        Rate { units, window_secs }
    }

    #[test]
    fn a_bucket_allows_its_quota_then_refuses_with_a_whole_second_wait() {
        let q = Quotas::new(true, rate(10, 60), rate(100, 60));
        let me = Subject::Ip("192.0.2.1".parse().unwrap());
        for left in (0..10).rev() {
            let c = q.charge(me.clone(), q.anonymous, 1);
            assert!(c.retry_after.is_none());
            assert_eq!(c.remaining, left);
        }
        let refused = q.charge(me.clone(), q.anonymous, 1);
        assert!(refused.retry_after.unwrap() >= 1);
        let mut h = HeaderMap::new();
        refused.write_headers(&mut h);
        assert_eq!(h["ratelimit-policy"], "\"anonymous\";q=10;w=60");
        assert!(
            h["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with("\"anonymous\";r=0;t=")
        );
        let other = Subject::Ip("192.0.2.2".parse().unwrap());
        assert!(q.charge(other, q.anonymous, 5).retry_after.is_none());
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_callers() {
        let q = Quotas::new(true, rate(10, 60), rate(100, 60));
        for i in 0..(MAX_BUCKETS as u32 + 5_000) {
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            q.charge(Subject::Ip(ip), q.anonymous, 1);
        }
        assert!(q.len() <= MAX_BUCKETS, "{} buckets", q.len());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted = [Net::parse("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            client_ip(Some(stranger), &h, &trusted).to_string(),
            "198.51.100.7"
        );
        assert_eq!(
            client_ip(Some(proxy), &HeaderMap::new(), &trusted).to_string(),
            "10.0.0.1"
        );
        assert!(Net::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(
            !Net::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(Net::parse("10.0.0.0/33").is_err());
        // IPv4 through a dual-stack socket is still IPv4.
        let mapped: SocketAddr = "[::ffff:10.0.0.5]:5000".parse().unwrap();
        assert_eq!(
            client_ip(Some(mapped), &h, &trusted).to_string(),
            "203.0.113.9"
        );
        // An entry that does not parse ends the walk; an ip:port entry is an address.
        let mut odd = HeaderMap::new();
        odd.insert(
            "x-forwarded-for",
            "6.6.6.6, unknown, 203.0.113.9:4321".parse().unwrap(),
        );
        assert_eq!(
            client_ip(Some(proxy), &odd, &trusted).to_string(),
            "203.0.113.9"
        );
        let mut forged = HeaderMap::new();
        forged.insert("x-forwarded-for", "6.6.6.6, garbage".parse().unwrap());
        assert_eq!(
            client_ip(Some(proxy), &forged, &trusted).to_string(),
            "10.0.0.1"
        );
        // An IPv6 client is charged by its /64.
        let a = anonymous_subject("2001:db8::1".parse().unwrap());
        let b = anonymous_subject("2001:db8::ffff:2".parse().unwrap());
        assert_eq!(a, b);
    }
}
