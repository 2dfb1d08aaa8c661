//! A call's deadline and cancellation around its future, holding that future once.
//! (As an `async fn` it was held twice — as the argument and inside the timer — which
//! doubled the direct call's share of every routed call's future: 6.5 KB for 3.1.)

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
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
        deadline: Instant,
        started: Instant,
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
        deadline: ctx.deadline,
        started: Instant::now(),
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.timed.poll(cx) {
            return Poll::Ready(out.map_err(|_| CallError::Timeout {
                target: this.target.clone(),
                after: this.deadline.saturating_duration_since(*this.started),
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
