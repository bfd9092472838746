//! The HTTP server (feature `server`): a JSON API and a search page over one shared [`Retriever`].
//!
//! ```text
//! GET  /                    the search page (HTML, CSS and JS compiled in; nothing from a CDN)
//! POST /query               a composed query: JSON {"text", "key", "k", "fusion", "alpha", "category",
//!                           "exclude_reference"} or a multipart form with the same fields and an
//!                           "image" file; answers {"hits": [{"rank", "key", "score", "category",
//!                           "image_url"}], "mode", "took_ms"}
//! GET  /items               catalog items, a page at a time (?category=&offset=&limit=)
//! GET  /items/{key}         one item: key, category, image URL
//! GET  /items/{key}/image   its image file
//! GET  /info                the index: size, model, categories, fusions, limits
//! GET  /healthz             {"status": "ok"}
//! GET  /metrics             request counts and latencies (Prometheus text)
//! ```
//!
//! Every query goes through one [`Retriever`], shared by all requests; a worker thread gathers the
//! queries of concurrent requests into one [`Retriever::query_batch`] (see `batcher.rs`). A bad request
//! gets a 4xx and `{"error": "..."}` ([`ApiError`]); bodies are capped at
//! [`ServerOptions::max_body_bytes`]; [`Server::run_until_signal`] stops on SIGTERM or Ctrl-C after
//! answering the requests in flight.
//!
//! Embedders mount [`router`] in their own axum application; `fiq-index serve` uses [`Server`].

mod api;
mod batcher;
mod error;
mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;

use crate::retriever::Retriever;
use batcher::Batcher;
use metrics::Metrics;

/// How the server answers.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The largest request body accepted (uploads included); larger ones get a 413.
    pub max_body_bytes: usize,
    /// The largest `k` a query may ask for.
    pub max_k: usize,
    /// How long the batch worker waits for more queries after the first of a batch (queries already
    /// queued join without waiting).
    pub batch_window: Duration,
    /// The most queries in one batch.
    pub max_batch: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body_bytes: 8 << 20,
            max_k: 1000,
            batch_window: Duration::from_millis(2),
            max_batch: 64,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime or the batch worker could not be started.
    #[error("cannot start the server's threads")]
    Start(#[source] std::io::Error),
    /// Listening or accepting failed.
    #[error("the server stopped with an error")]
    Serve(#[source] std::io::Error),
    /// The categories of the index could not be read.
    #[error("reading the index's categories")]
    Index(#[source] Box<crate::Error>),
}

/// What every handler shares.
pub(crate) struct App {
    pub(crate) retriever: Arc<Retriever>,
    pub(crate) batcher: Batcher,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: ServerOptions,
    /// Each category and its live item count, sorted by name.
    pub(crate) categories: Vec<(String, usize)>,
}

/// The application's routes over `retriever`, to serve or to mount in a larger axum application.
/// Starts the batch worker thread, which ends when the router (every clone of it) is dropped.
pub fn router(retriever: Arc<Retriever>, options: ServerOptions) -> Result<Router, ServerError> {
    Ok(router_and_worker(retriever, options)?.0)
}

fn router_and_worker(
    retriever: Arc<Retriever>,
    options: ServerOptions,
) -> Result<(Router, JoinHandle<()>), ServerError> {
    let metrics = Arc::new(Metrics::default());
    let mut categories: Vec<(String, usize)> = retriever
        .index()
        .categories()
        .map_err(|e| ServerError::Index(Box::new(e)))?
        .into_iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, ids)| (name, ids.len() as usize))
        .collect();
    categories.sort();
    let (batcher, worker) = Batcher::start(
        Arc::clone(&retriever),
        options.batch_window,
        options.max_batch,
        Arc::clone(&metrics),
    )
    .map_err(ServerError::Start)?;
    let limit = options.max_body_bytes;
    let app = Arc::new(App {
        retriever,
        batcher,
        metrics,
        options,
        categories,
    });
    let router = Router::new()
        .route("/", get(api::page))
        .route("/app.js", get(api::script))
        .route("/style.css", get(api::style))
        .route("/query", post(api::query))
        .route("/items", get(api::items))
        .route("/items/{key}", get(api::item))
        .route("/items/{key}/image", get(api::item_image))
        .route("/info", get(api::info))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            track,
        ))
        // The handlers read bodies themselves, up to the limit; this caps the extractors too.
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app);
    Ok((router, worker))
}

/// Counts every request and its latency under its route pattern.
async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    app.metrics.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A bound server: [`Server::bind`], print [`Server::local_addr`], then [`Server::run_until_signal`].
pub struct Server {
    listener: std::net::TcpListener,
    retriever: Arc<Retriever>,
    options: ServerOptions,
}

impl Server {
    /// Binds `addr` (port 0: any free port) for a server over `retriever`.
    pub fn bind(
        retriever: Arc<Retriever>,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<Server, ServerError> {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Server {
            listener,
            retriever,
            options,
        })
    }

    /// The address bound (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        self.listener.local_addr().map_err(ServerError::Serve)
    }

    /// Serves until SIGTERM or Ctrl-C (SIGINT), then finishes the requests in flight and returns.
    pub fn run_until_signal(self) -> Result<(), ServerError> {
        self.run_until(shutdown_signal())
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight and returns.
    pub fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("fiq-http")
            .build()
            .map_err(ServerError::Start)?;
        let (router, worker) = router_and_worker(self.retriever, self.options)?;
        let served = runtime.block_on(async move {
            let listener =
                tokio::net::TcpListener::from_std(self.listener).map_err(ServerError::Serve)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(ServerError::Serve)
        });
        // The router is gone with the serve future: the worker drains its queue and ends.
        drop(runtime);
        let _ = worker.join();
        served
    }
}

/// SIGTERM or Ctrl-C, whichever comes first.
async fn shutdown_signal() {
    let interrupt = async {
        // Without a handler there is nothing to wait for; SIGTERM still stops the server.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
