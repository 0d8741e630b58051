//! Request timeouts without a timer per request. `tokio::time::timeout`
//! registers a timer entry when a request starts and removes it when it
//! ends: a lock on the timer wheel and an allocation-sized entry each way,
//! on every request, for a deadline (60 s by default) that is almost never
//! reached. Instead each user keeps one `Sleep`, armed at most as late as
//! the current request's deadline: when it fires before that deadline (it
//! was armed for an earlier request) it is simply moved to it. With the
//! default timeout that is one re-arm per user per minute, and a request
//! costs a clock read and a poll of an already registered timer.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// A user's timer: none until its first request.
pub type Timer = RefCell<Option<Pin<Box<Sleep>>>>;

/// Runs `fut` until it completes (`Some`) or `deadline` passes (`None`).
///
/// `fut` comes pinned by the caller, who keeps it in its own frame: a
/// future taken by value would be moved twice more (into this future's
/// arguments, then into its pinned local), and a request's is over 1 KB.
pub async fn within<F: Future>(
    timer: &Timer,
    deadline: Instant,
    mut fut: Pin<&mut F>,
) -> Option<F::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let mut slot = timer.borrow_mut();
        let sleep = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        loop {
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Armed for an earlier request's deadline: move it on.
                Poll::Ready(()) if Instant::now() < deadline => sleep.as_mut().reset(deadline),
                Poll::Ready(()) => return Poll::Ready(None),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_each_deadline_whatever_the_earlier_ones() {
        let timer = Timer::default();
        let start = Instant::now();
        // Completes: the timer stays armed for 60 s from now.
        let r = within(&timer, start + Duration::from_secs(60), pin!(async { 1 })).await;
        assert_eq!(r, Some(1));
        // Never completes: times out at its own, earlier deadline.
        let r = within(
            &timer,
            start + Duration::from_millis(200),
            pin!(std::future::pending::<()>()),
        )
        .await;
        assert_eq!(r, None);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        // The timer now fires too early for this one, and is moved on.
        let t1 = Instant::now();
        let slow = tokio::time::sleep(Duration::from_millis(500));
        let r = within(&timer, t1 + Duration::from_secs(1), pin!(slow)).await;
        assert_eq!(r, Some(()));
        let r = within(
            &timer,
            t1 + Duration::from_secs(2),
            pin!(std::future::pending::<()>()),
        )
        .await;
        assert_eq!(r, None);
        assert_eq!(t1.elapsed(), Duration::from_secs(2));
    }
}
