//! Stand-ins for the third-party web APIs the native tools call, replaying recorded
//! answers over loopback HTTP (tests and examples do not reach the internet).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, http::header, routing::get};
use tokio::task::JoinHandle;

/// A recorded export.arxiv.org answer (two entries for `attention`).
pub const ARXIV_FEED: &str = include_str!("../../tools/tests/data/arxiv.xml");

/// export.arxiv.org's query API answering every query with [`ARXIV_FEED`]; stopped on drop.
#[derive(Debug)]
pub struct ArxivReplay {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ArxivReplay {
    /// Listens on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let queries = Arc::new(AtomicUsize::new(0));
        let seen = queries.clone();
        let router = Router::new().route(
            "/api/query",
            get(move || {
                seen.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
                        ARXIV_FEED,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::warn!(%error, "arXiv replay stopped");
            }
        });
        Ok(Self {
            addr,
            queries,
            task,
        })
    }

    /// The query endpoint, for `native_tools.arxiv.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/query", self.addr)
    }

    /// How many queries it has answered.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for ArxivReplay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
