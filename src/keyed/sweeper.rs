//! An optional background thread that sweeps a keyed limiter.

use core::hash::{BuildHasher, Hash};
use core::time::Duration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};

use super::KeyedRateLimiter;
use crate::clock::Clock;

/// A thread that sweeps a [`KeyedRateLimiter`] a slice at a time; stops when dropped.
///
/// From [`KeyedRateLimiter::spawn_sweeper`]. The thread holds only a weak reference, so it also
/// stops once the limiter itself is gone.
#[derive(Debug)]
pub struct Sweeper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<K, C, S> KeyedRateLimiter<K, C, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    C: Clock + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Starts a thread that sweeps all keys, a slice at a time, every `every`, so that idle keys
    /// leave even when no new key arrives. The limiter's own sweeping on inserts goes on as
    /// well. `every` is the pause between rounds: a zero pause keeps a core busy sweeping.
    ///
    /// # Errors
    ///
    /// The operating system refused to start a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use hotlimit::{KeyedRateLimiter, Quota};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let limiter = Arc::new(KeyedRateLimiter::<String>::new(Quota::per_second(10)?));
    /// let sweeper = limiter.spawn_sweeper(Duration::from_millis(100)).expect("a thread");
    /// assert!(limiter.check_key("alice").is_ok());
    /// drop(sweeper); // stops and joins the thread
    /// # Ok::<(), hotlimit::QuotaError>(())
    /// ```
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) -> std::io::Result<Sweeper> {
        let limiter = Arc::downgrade(self);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("hotlimit-sweeper".into())
            .spawn(move || sweep_until_stopped(&limiter, &flag, every))?;
        Ok(Sweeper {
            stop,
            thread: Some(thread),
        })
    }
}

fn sweep_until_stopped<K, C, S>(
    limiter: &Weak<KeyedRateLimiter<K, C, S>>,
    stop: &AtomicBool,
    every: Duration,
) where
    K: Hash + Eq,
    C: Clock,
    S: BuildHasher + Clone,
{
    // Acquire pairs with the Release store in `drop`: nothing else is published through the
    // flag, but the pairing makes the stop visible without relying on timing.
    while !stop.load(Ordering::Acquire) {
        match limiter.upgrade() {
            Some(limiter) => limiter.sweep_round(),
            None => return,
        }
        thread::park_timeout(every);
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
