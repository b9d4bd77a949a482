//! The circuit breaker: while Redis is down, requests stop waiting for it.
//!
//! Closed, every check goes to Redis. The first check that cannot reach it (an I/O error or the
//! time budget spent) opens the breaker for the cool-down; meanwhile checks skip Redis and the
//! failure policy answers at once. After the cool-down one check at a time is let through as a
//! probe; its success closes the breaker, its failure opens it for another cool-down.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Whether a check may call Redis.
pub(crate) enum Pass<'a> {
    /// The breaker is closed: call.
    Call,
    /// The breaker is open and this check is its one probe.
    Probe(Probe<'a>),
    /// The breaker is open: answer without Redis.
    Skip,
}

/// The breaker's state in one word.
///
/// `0`: closed. Otherwise bits 1..64 hold one plus the millisecond (since `base`) at which the
/// breaker lets a probe through, and bit 0 is set while a probe is out. The word publishes no
/// other memory, so `Relaxed` is enough everywhere: a stale read only makes one check take the
/// wrong branch once, which the next read corrects.
pub(crate) struct Breaker {
    state: AtomicU64,
    base: Instant,
    cooldown: Duration,
}

impl Breaker {
    pub(crate) fn new(cooldown: Duration) -> Self {
        Self {
            state: AtomicU64::new(0),
            base: Instant::now(),
            cooldown,
        }
    }

    /// Decides whether the next check calls Redis.
    #[inline]
    pub(crate) fn enter(&self) -> Pass<'_> {
        let state = self.state.load(Relaxed);
        if state == 0 {
            return Pass::Call;
        }
        if state & 1 == 1 || self.now_ms() < (state >> 1) - 1 {
            return Pass::Skip;
        }

        // The cool-down is over: the check that sets the probe bit first probes.
        match self
            .state
            .compare_exchange(state, state | 1, Relaxed, Relaxed)
        {
            Ok(_) => Pass::Probe(Probe {
                breaker: self,
                done: false,
            }),
            Err(_) => Pass::Skip,
        }
    }

    /// Redis answered: close.
    pub(crate) fn success(&self) {
        self.state.store(0, Relaxed);
    }

    /// Redis could not be reached by a check that was not the probe: open, or stay open for a
    /// fresh cool-down, keeping a probe that is out.
    pub(crate) fn failure(&self) {
        let open = self.open_word();
        let _ = self
            .state
            .fetch_update(Relaxed, Relaxed, |old| Some(open | (old & 1)));
    }

    /// Whether checks currently skip Redis.
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Relaxed) != 0
    }

    fn open_word(&self) -> u64 {
        let until = self
            .now_ms()
            .saturating_add(self.cooldown.as_millis() as u64);
        until.saturating_add(1).min(u64::MAX >> 2) << 1
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }
}

/// The one check allowed through an open breaker. Dropped without a result (its future was
/// cancelled), it lets the next check probe instead.
pub(crate) struct Probe<'a> {
    breaker: &'a Breaker,
    done: bool,
}

impl Probe<'_> {
    /// Redis answered the probe: close.
    pub(crate) fn success(mut self) {
        self.done = true;
        self.breaker.success();
    }

    /// The probe failed: open for another cool-down.
    pub(crate) fn failure(mut self) {
        self.done = true;
        let open = self.breaker.open_word();
        self.breaker.state.store(open, Relaxed);
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.state.fetch_and(!1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_on_failure_and_probes_one_at_a_time_after_the_cooldown() {
        let breaker = Breaker::new(Duration::from_millis(30));
        assert!(matches!(breaker.enter(), Pass::Call));
        breaker.failure();
        assert!(matches!(breaker.enter(), Pass::Skip));

        std::thread::sleep(Duration::from_millis(40));
        let Pass::Probe(probe) = breaker.enter() else {
            panic!("expected a probe")
        };
        assert!(matches!(breaker.enter(), Pass::Skip));
        probe.failure();
        assert!(matches!(breaker.enter(), Pass::Skip));

        std::thread::sleep(Duration::from_millis(40));
        let Pass::Probe(probe) = breaker.enter() else {
            panic!("expected a probe")
        };
        probe.success();
        assert!(matches!(breaker.enter(), Pass::Call));
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_cancelled_probe_frees_the_slot() {
        let breaker = Breaker::new(Duration::ZERO);
        breaker.failure();
        std::thread::sleep(Duration::from_millis(2));
        let probe = breaker.enter();
        assert!(matches!(probe, Pass::Probe(_)));
        drop(probe);
        assert!(matches!(breaker.enter(), Pass::Probe(_)));
    }
}
