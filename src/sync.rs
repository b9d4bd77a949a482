//! The one place where the crate takes its atomics from.
//!
//! Under `--cfg hotlimit_loom` every atomic (and the few other primitives the model checks need)
//! comes from `loom`, so the model checker sees each access; otherwise from `core`/`std`. The cfg
//! carries the crate's prefix so that no dependency ever sees it.

#[cfg(not(hotlimit_loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

#[cfg(hotlimit_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

/// Exponential spinning after a failed compare-and-swap.
///
/// Under loom a spin is only noise in the explored schedules (every failed CAS already means
/// another thread made progress), so it compiles to nothing there.
pub(crate) struct Backoff {
    #[cfg(not(hotlimit_loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    #[inline]
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(hotlimit_loom))]
            inner: crossbeam_utils::Backoff::new(),
        }
    }

    #[inline]
    pub(crate) fn spin(&self) {
        #[cfg(not(hotlimit_loom))]
        self.inner.spin();
    }
}
