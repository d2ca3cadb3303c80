//! Brute-force protection for client authentication (token, introspection and revocation
//! endpoints): failures are counted per source address; past the limit the address is refused
//! for a while, before any secret is compared. Kept in memory per instance: client secrets are
//! 256-bit random values, so the limit is against noise and scanning rather than guessing, and
//! a database round trip on every token request would cost more than the protection is worth.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tongban_platform::clock::now_millis;

/// Failures from one address within the window before it is blocked.
pub const MAX_FAILURES: u32 = 20;
/// The counting window and the block, in milliseconds.
pub const WINDOW_MILLIS: i64 = 15 * 60_000;
/// Addresses tracked at most (the oldest windows are dropped beyond this).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: i64,
    blocked_until: Option<i64>,
}

/// Counts failed client authentications per source address.
#[derive(Clone, Default)]
pub struct ClientThrottle {
    counts: Arc<Mutex<HashMap<String, Count>>>,
}

impl ClientThrottle {
    /// Whether `ip` is blocked now.
    pub fn blocked(&self, ip: &str) -> bool {
        let now = now_millis();
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(ip).and_then(|c| c.blocked_until).is_some_and(|t| t > now)
    }

    /// Counts a failure from `ip`; answers whether the address is now blocked.
    pub fn failed(&self, ip: &str) -> bool {
        let now = now_millis();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_TRACKED {
            counts.retain(|_, c| c.since + WINDOW_MILLIS > now || c.blocked_until.is_some_and(|t| t > now));
        }
        let c = counts.entry(ip.to_string()).or_insert(Count { failures: 0, since: now, blocked_until: None });
        if c.since + WINDOW_MILLIS <= now {
            *c = Count { failures: 0, since: now, blocked_until: None };
        }
        c.failures += 1;
        if c.failures >= MAX_FAILURES {
            c.blocked_until = Some(now + WINDOW_MILLIS);
        }
        c.blocked_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_the_limit_and_others_are_not() {
        let t = ClientThrottle::default();
        for _ in 1..MAX_FAILURES {
            assert!(!t.failed("203.0.113.9"));
        }
        assert!(!t.blocked("203.0.113.9"));
        assert!(t.failed("203.0.113.9"));
        assert!(t.blocked("203.0.113.9"));
        assert!(!t.blocked("203.0.113.10"));
    }
}
