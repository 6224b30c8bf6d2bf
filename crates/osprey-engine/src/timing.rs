//! Per-request stage timings, for the `Server-Timing` response header.
//!
//! The HTTP layer runs each request inside [`scope`]; code anywhere below it
//! on the same task calls [`record`] with a stage name and a duration, and
//! the scope hands back what was recorded. Outside a scope (benchmarks,
//! background work) `record` does nothing. Stages recorded more than once
//! (a request that embeds twice) add up.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

tokio::task_local! {
    static TIMINGS: RefCell<Vec<(&'static str, Duration)>>;
}

/// Adds `d` to `stage` of the current request, if there is one.
pub fn record(stage: &'static str, d: Duration) {
    let _ = TIMINGS.try_with(|t| {
        let mut t = t.borrow_mut();
        match t.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, total)) => *total += d,
            None => t.push((stage, d)),
        }
    });
}

/// Runs `f`, collecting the stages recorded on its task, in first-seen order.
pub async fn scope<F: Future>(f: F) -> (F::Output, Vec<(&'static str, Duration)>) {
    TIMINGS
        .scope(RefCell::new(Vec::new()), async move {
            let out = f.await;
            let stages = TIMINGS.with(|t| std::mem::take(&mut *t.borrow_mut()));
            (out, stages)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_add_up_inside_a_scope_and_vanish_outside() {
        record("ignored", Duration::from_millis(5));
        let ((), stages) = scope(async {
            record("queue", Duration::from_millis(2));
            record("inference", Duration::from_millis(3));
            tokio::task::yield_now().await;
            record("queue", Duration::from_millis(1));
        })
        .await;
        assert_eq!(stages, vec![("queue", Duration::from_millis(3)), ("inference", Duration::from_millis(3))]);
    }
}
