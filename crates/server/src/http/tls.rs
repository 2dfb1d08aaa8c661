//! TLS at the HTTP edge (`gateway.tls`): rustls with the certificate and key from PEM
//! files, picked up again when the files change (certificates are renewed while serving).
//! Handshakes run in tasks of their own, bounded in time, so a slow client cannot hold up
//! the others.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use serde::{Deserialize, Serialize};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

/// Where the edge's certificate and key are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// Longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, at most, the files are looked at for a change.
const RECHECK: Duration = Duration::from_secs(1);

impl TlsConfig {
    /// Reads and checks the files now.
    ///
    /// # Errors
    ///
    /// [`TlsError`] naming the file and what is wrong with it.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| {
                TlsError(format!(
                    "cannot read certificates from {}: {e}",
                    self.cert.display()
                ))
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("{}: {e}", self.cert.display())))?;
        if certs.is_empty() {
            return Err(TlsError(format!(
                "{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
                self.cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            TlsError(format!(
                "cannot read a private key from {}: {e} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
                self.key.display()
            ))
        })?;
        // The provider named, not the process default: another crate may enable a second.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("no usable TLS version: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                TlsError(format!(
                    "{} and {} do not make a usable pair: {e}",
                    self.cert.display(),
                    self.key.display()
                ))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((at(&self.cert)?, at(&self.key)?))
    }
}

/// A TCP listener whose connections are TLS: what axum serves when `gateway.tls` is set.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    _accepting: tokio_util::sync::DropGuard,
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking with the certificate of `config` (re-read when its
    /// files change).
    pub(crate) fn new(tcp: TcpListener, config: TlsConfig) -> Result<Self, TlsError> {
        let local = tcp
            .local_addr()
            .map_err(|e| TlsError(format!("no local address: {e}")))?;
        let acceptor = TlsAcceptor::from(config.server_config()?);
        let (tx, ready) = mpsc::channel(64);
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(tcp, config, acceptor, tx, stop.clone()));
        Ok(Self {
            local,
            ready,
            _accepting: stop.drop_guard(),
        })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    config: TlsConfig,
    mut acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    let mut seen = config.modified();
    let mut checked = tokio::time::Instant::now();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if checked.elapsed() >= RECHECK {
            checked = tokio::time::Instant::now();
            let now = config.modified();
            if now != seen {
                seen = now;
                match config.server_config() {
                    Ok(fresh) => {
                        acceptor = TlsAcceptor::from(fresh);
                        tracing::info!("TLS certificate reloaded from {}", config.cert.display());
                    }
                    Err(error) => {
                        tracing::warn!("keeping the previous TLS certificate: {error}");
                    }
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
