//! Runs a model under a fixed preemption bound and reports how much loom explored.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Explores every execution of `model` with at most `bound` preemptions per execution, then
/// prints how many executions that took (also when the model fails, before passing the panic on).
pub fn explore<F>(name: &str, bound: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    // A std atomic: it counts executions from outside the model, so loom must not see it.
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);

    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);

    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        });
    }));

    println!(
        "{name}: {} executions at preemption bound {bound} in {:.2?}{}",
        executions.load(Ordering::Relaxed),
        start.elapsed(),
        if outcome.is_err() { " (failed)" } else { "" },
    );
    if let Err(panic) = outcome {
        panic::resume_unwind(panic);
    }
}
