//! Requests run to the end even when their client goes away.
//!
//! hyper drops a request's future when its connection closes (a client that times
//! out, a load balancer that gives up, a load generator that stops). Dropped midway,
//! the store work of that request stops wherever it was, and not every point is safe
//! to stop at: on PostgreSQL a future dropped while `BEGIN` is in flight leaves its
//! pooled connection inside a transaction that nothing ends (sqlx 0.8.6, upstream
//! issues transact-rs/sqlx#4385 and #4393), so the next request on that connection
//! writes rows that no other connection sees and that are lost when the connection
//! closes: a login whose session is not there on the next request, a token answered
//! but never stored. Handing what is left of a dropped request to a task of its own
//! removes the whole class: the request finishes (and commits or rolls back)
//! whatever the client does, and only its response is thrown away.
//!
//! The same layer lets responses that are ready together leave together (see
//! [`leave_together`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, Span};

/// Middleware ([`axum::middleware::from_fn`]): the rest of the stack runs on the
/// connection's task, as it would without this layer (a panic in it unwinds as it
/// would), and only if hyper drops it before it is done does what is left of it go on
/// as a task of its own, in the request's tracing span.
///
/// Spawning every request instead costs a task, a join handle and two wake-ups per
/// request, about a microsecond of the server's core; this costs one allocation.
pub async fn detach(request: Request, next: Next) -> Response {
    let (response, waited) = RunToEnd {
        rest: Some(Box::pin(next.run(request))),
        span: Span::current(),
        waited: false,
    }
    .await;
    if !waited {
        leave_together().await;
    }
    response
}

/// Let the requests that are ready on this worker be handled before this response
/// leaves, so that responses leave together rather than one between each two
/// handlers. Only for a response made without waiting: requests that waited (for a
/// commit of the store's writer) are woken together and leave together already, and
/// the yield would only cost them the scheduler's round.
///
/// A client that waits on several connections (a resource server's pool, a load
/// balancer) is then woken once for a batch of responses instead of once per
/// response; waking a sleeping reader is the sender's work on loopback and, on a
/// virtual machine, an interrupt to another core. With the worker saturated by
/// `client_credentials` JWT requests (ES256) this took the server's CPU time per
/// token from 41-42 to 33-37 µs (`bench/RESULTS.md`). On an idle worker the task is
/// polled again at once; the delay is at most the other ready requests' handling.
async fn leave_together() {
    tokio::task::yield_now().await;
}

/// A future that, dropped before it is done, hands what is left of it to a task of
/// its own (when a runtime is there to run it: not while the runtime shuts down).
/// Its output is the response and whether the request had to wait for it.
struct RunToEnd<F: Future<Output = Response> + Send + 'static> {
    rest: Option<Pin<Box<F>>>,
    span: Span,
    waited: bool,
}

impl<F: Future<Output = Response> + Send + 'static> Future for RunToEnd<F> {
    type Output = (Response, bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(Response, bool)> {
        // `RunToEnd` is `Unpin`: the future it runs is pinned in its box.
        let this = self.get_mut();
        let Some(rest) = this.rest.as_mut() else {
            panic!("a request's future polled after it completed");
        };
        let Poll::Ready(response) = rest.as_mut().poll(cx) else {
            this.waited = true;
            return Poll::Pending;
        };
        this.rest = None;
        Poll::Ready((response, this.waited))
    }
}

impl<F: Future<Output = Response> + Send + 'static> Drop for RunToEnd<F> {
    fn drop(&mut self) {
        // A future that panicked is not polled again: it unwinds as it would have.
        if std::thread::panicking() {
            return;
        }
        if let (Some(rest), Ok(runtime)) = (self.rest.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(rest.instrument(self.span.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    /// A handler that is still working when its caller gives up finishes all the same.
    #[tokio::test]
    async fn a_request_dropped_by_its_caller_runs_to_the_end() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let app = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    flag.store(true, Ordering::SeqCst);
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn(detach));
        let request = Request::builder().uri("/slow").body(Body::empty()).unwrap();
        let gave_up = tokio::time::timeout(Duration::from_millis(5), app.oneshot(request)).await;
        assert!(
            gave_up.is_err(),
            "the caller gave up before the handler was done"
        );
        assert!(!done.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            done.load(Ordering::SeqCst),
            "the handler was cancelled with its caller"
        );
    }

    #[tokio::test]
    async fn the_response_passes_through() {
        let app = Router::new()
            .route(
                "/",
                get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
            )
            .layer(axum::middleware::from_fn(detach));
        let request = Request::builder().uri("/").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    }

    /// Two requests ready on one worker: both handlers run before either response
    /// leaves the layer.
    #[tokio::test(flavor = "current_thread")]
    async fn responses_ready_together_leave_together() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handled = log.clone();
        let app = Router::new()
            .route(
                "/{name}",
                get(
                    move |axum::extract::Path(name): axum::extract::Path<String>| async move {
                        handled.lock().unwrap().push(format!("handled {name}"));
                        "ok"
                    },
                ),
            )
            .layer(axum::middleware::from_fn(detach));
        let mut tasks = Vec::new();
        for name in ["a", "b"] {
            let (app, log) = (app.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                let request = Request::builder()
                    .uri(format!("/{name}"))
                    .body(Body::empty())
                    .unwrap();
                let response = app.oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                log.lock().unwrap().push(format!("answered {name}"));
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let log = log.lock().unwrap();
        assert!(
            log[..2].iter().all(|e| e.starts_with("handled"))
                && log[2..].iter().all(|e| e.starts_with("answered")),
            "{log:?}"
        );
    }

    /// A panic in a handler unwinds through the layer as it would without it, and
    /// what panicked is not run again.
    #[tokio::test]
    async fn a_panic_unwinds_through() {
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    if true {
                        panic!("the handler failed");
                    }
                    "unreachable"
                }),
            )
            .layer(axum::middleware::from_fn(detach));
        let request = Request::builder().uri("/").body(Body::empty()).unwrap();
        let outcome = tokio::spawn(app.oneshot(request)).await;
        assert!(outcome.is_err_and(|e| e.is_panic()));
    }
}
