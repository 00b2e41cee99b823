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
//! but never stored. Running each request as a task of its own removes the whole
//! class: the task finishes (and commits or rolls back) whatever the client does,
//! and only its response is thrown away.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

/// Middleware ([`axum::middleware::from_fn`]): the rest of the stack runs on a task
/// of its own, in the request's tracing span. A panic in it is raised again here, so
/// it is handled as it would be without this layer.
pub async fn detach(request: Request, next: Next) -> Response {
    let task = tokio::spawn(next.run(request).in_current_span());
    match task.await {
        Ok(response) => response,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only when the runtime shuts down under it.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
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
}
