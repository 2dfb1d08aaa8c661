//! A call's deadline and cancellation around its future, holding that future once.
//! (As an `async fn` it was held twice — as the argument and inside the timer — which
//! doubled the direct call's share of every routed call's future: 6.5 KB for 3.1.)

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::{Instant, Timeout};
use tokio_util::sync::WaitForCancellationFuture;
use toolmesh_core::{CallContext, CallError, Phase};

pin_project_lite::pin_project! {
    /// `fut` until the context's deadline or cancellation, the deadline checked first.
    pub(super) struct Bounded<'a, F> {
        #[pin]
        timed: Timeout<F>,
        #[pin]
        cancelled: Option<WaitForCancellationFuture<'a>>,
        target: &'a Arc<str>,
        // What a timeout reports: the time the call was given.
        budget: Duration,
    }
}

/// Runs `fut` until the context's deadline or cancellation.
pub(super) fn bounded<'a, F: Future>(
    target: &'a Arc<str>,
    ctx: &'a CallContext,
    fut: F,
) -> Bounded<'a, F> {
    Bounded {
        timed: tokio::time::timeout_at(ctx.deadline, fut),
        cancelled: ctx.cancel.as_ref().map(|cancel| cancel.cancelled()),
        target,
        budget: ctx.deadline.saturating_duration_since(Instant::now()),
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.timed.poll(cx) {
            return Poll::Ready(out.map_err(|_| CallError::Timeout {
                target: this.target.clone(),
                after: *this.budget,
                phase: Phase::AfterSend,
            }));
        }
        if let Some(cancelled) = this.cancelled.as_pin_mut()
            && cancelled.poll(cx).is_ready()
        {
            return Poll::Ready(Err(CallError::Cancelled {
                target: this.target.clone(),
                phase: Phase::AfterSend,
            }));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;
    use toolmesh_core::ErrorKind;

    use super::*;

    fn ctx(timeout: Duration, cancel: Option<CancellationToken>) -> CallContext {
        let mut ctx = CallContext::with_timeout(timeout);
        ctx.cancel = cancel;
        ctx
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_wins_over_a_cancellation_that_came_with_it() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let ctx = ctx(Duration::from_secs(5), Some(cancel));
        let target: Arc<str> = "fx".into();
        let out = bounded(&target, &ctx, std::future::ready(7)).await;
        assert!(matches!(out, Ok(7)), "{out:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancellation_ends_a_pending_call() {
        let cancel = CancellationToken::new();
        let ctx = ctx(Duration::from_secs(5), Some(cancel.clone()));
        let target: Arc<str> = "fx".into();
        let call = bounded(&target, &ctx, std::future::pending::<()>());
        let (out, ()) = tokio::join!(call, async { cancel.cancel() });
        let err = out.expect_err("cancelled");
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_a_pending_call_and_says_after_how_long() {
        let ctx = ctx(Duration::from_secs(2), Some(CancellationToken::new()));
        let target: Arc<str> = "fx".into();
        let err = bounded(&target, &ctx, std::future::pending::<()>())
            .await
            .expect_err("timed out");
        match err {
            CallError::Timeout { after, phase, .. } => {
                assert_eq!(after, Duration::from_secs(2));
                assert_eq!(phase, Phase::AfterSend);
            }
            other => panic!("not a timeout: {other}"),
        }
    }
}
