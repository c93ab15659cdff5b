//! The web face of an index (`n2g-index serve`): HTML pages to browse neurons (search,
//! graph pictures, top examples, a prompt box) and a JSON API that returns the same view
//! types as the CLI's `--json`. Read-only over the index; every asset is embedded.
//!
//! The server is a thin layer: each request is one or two [`Index`] calls run on
//! tokio's blocking pool under a deadline ([`Limits::deadline`]), so readers never
//! block each other and a slow call never holds an async worker. Pages and routes:
//! `docs/SERVE.md`.
//!
//! ```no_run
//! use n2g_index::serve::{App, Limits, Server};
//! use n2g_index::Index;
//!
//! # fn main() -> n2g_index::Result<()> {
//! let app = App::new(Index::open("index".as_ref())?, None, Limits::default())?;
//! let server = Server::start(app, "127.0.0.1:8080".parse().unwrap(), true)?;
//! println!("serving http://{}", server.addr());
//! server.wait()?; // until Ctrl-C or SIGTERM; in-flight requests finish
//! # Ok(()) }
//! ```

mod api;
mod assets;
mod error;
mod neuron_page;
mod pages;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::view::InfoView;
use crate::Index;

pub use error::ApiError;

/// The limits a server puts on requests; each one exceeded is a clear error.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest query, in bytes.
    pub query_bytes: usize,
    /// Most results of one query (`limit`, and the search page's reach).
    pub page_size: usize,
    /// Most tokens of a prompt sent to `/api/predict`.
    pub prompt_tokens: usize,
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Most examples of one neuron view.
    pub examples: usize,
    /// Most similar neurons of one request (`top`).
    pub similar: usize,
    /// How long one request may take before it is answered with an error.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_bytes: 2000,
            page_size: 500,
            prompt_tokens: 512,
            body_bytes: 64 * 1024,
            examples: 1000,
            similar: 200,
            deadline: Duration::from_secs(10),
        }
    }
}

/// What a server serves: an opened index, the model for predictions (if any), its
/// limits, and the index's description (read on first use and kept: the store does not
/// change while it is open for reading).
pub struct App {
    index: Index,
    model: Option<Model>,
    limits: Limits,
    info: OnceLock<InfoView>,
}

impl App {
    /// An app over `index`, with `model` for `/api/predict` (refused unless it is the
    /// model the index was built with).
    pub fn new(index: Index, model: Option<Model>, limits: Limits) -> Result<App> {
        if let Some(model) = &model {
            index.check_model(model)?;
        }
        Ok(App {
            index,
            model,
            limits,
            info: OnceLock::new(),
        })
    }

    /// What the index holds (read from the store on first use; a blocking call).
    pub fn info(&self) -> Result<&InfoView> {
        if let Some(info) = self.info.get() {
            return Ok(info);
        }
        let info = self.index.info()?;
        Ok(self.info.get_or_init(|| info))
    }

    /// The index served.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether predictions are available.
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }
}

/// The routes of the server over `app` (pages, API, assets), for tests and embedding.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.limits.body_bytes;
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/neuron", get(pages::neuron_jump))
        .route("/neuron/{id}", get(neuron_page::neuron))
        .route("/assets/{name}", get(assets::asset))
        .route(
            "/api/info",
            get(api::info).fallback(api::method_not_allowed),
        )
        .route(
            "/api/query",
            get(api::query).fallback(api::method_not_allowed),
        )
        .route(
            "/api/neuron/{id}",
            get(api::neuron).fallback(api::method_not_allowed),
        )
        .route(
            "/api/similar/{id}",
            get(api::similar).fallback(api::method_not_allowed),
        )
        .route(
            "/api/predict",
            post(api::predict).fallback(api::method_not_allowed),
        )
        .route("/api/{*rest}", axum::routing::any(api::not_found))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(app)
}

/// Runs blocking library work on tokio's blocking pool, cut by the app's deadline.
pub(crate) async fn blocking<T, F>(app: &Arc<App>, work: F) -> std::result::Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&App) -> std::result::Result<T, ApiError> + Send + 'static,
{
    let deadline = app.limits.deadline;
    let started = std::time::Instant::now();
    let app = app.clone();
    let task = tokio::task::spawn_blocking(move || work(&app));
    let late = || {
        ApiError::unavailable(format!(
            "the request took longer than the server's limit of {:.1} s and was cut",
            deadline.as_secs_f64()
        ))
    };
    match tokio::time::timeout(deadline, task).await {
        // The timer ticks in milliseconds: an answer that came after the deadline is
        // cut too.
        Ok(Ok(_)) if started.elapsed() > deadline => Err(late()),
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ApiError::internal("the request failed inside the server")),
        Err(_) => Err(late()),
    }
}

/// A running server: its own tokio runtime on a background thread.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `bind` (port 0 picks a free port) and serves `app` on a background thread.
    /// With `signals`, Ctrl-C and SIGTERM stop it gracefully too.
    pub fn start(app: App, bind: SocketAddr, signals: bool) -> Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("n2g-serve")
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(bind))
            .map_err(|e| Error::io(bind.to_string(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(bind.to_string(), e))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(Arc::new(app));
        let thread = std::thread::Builder::new()
            .name("n2g-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown(stopped, signals))
                        .await
                })
            })
            .map_err(|e| Error::io("server thread", e))?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets in-flight requests finish, and returns.
    pub fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Waits until the server stops (Ctrl-C or SIGTERM when started with `signals`).
    pub fn wait(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(e))) => Err(Error::io(self.addr.to_string(), e)),
            Some(Err(_)) => Err(Error::InvalidRequest("the server thread panicked".into())),
            _ => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.join();
    }
}

/// Resolves when `stopped` fires (or its sender is dropped), or on Ctrl-C / SIGTERM when
/// `signals`.
async fn shutdown(stopped: tokio::sync::oneshot::Receiver<()>, signals: bool) {
    if !signals {
        let _ = stopped.await;
        return;
    }
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = stopped => {}
        _ = ctrl_c => {}
        _ = term => {}
    }
}
