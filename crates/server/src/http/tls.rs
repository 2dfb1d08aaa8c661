//! TLS at the HTTP edge (`gateway.tls`): rustls with the certificate and key from PEM
//! files, picked up again when the files change (certificates are renewed while serving).
//! Handshakes run in tasks of their own, bounded in time, so a slow client cannot hold up
//! the others.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use dashmap::DashMap;
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
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
    /// PEM file with the certificates that sign client certificates. A client presenting
    /// one is the principal `cert:COMMON-NAME`; clients without one may still use other
    /// credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Roles of client certificates, by common name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_roles: BTreeMap<String, Vec<String>>,
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
    /// The certificate chain and key in these PEM files; no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            client_roles: BTreeMap::new(),
        }
    }

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
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("no usable TLS version: {e}")))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| TlsError(format!("cannot read {}: {e}", ca.display())))?
                {
                    let cert = cert.map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
                }
                // Optional: clients without a certificate authenticate otherwise.
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| {
                            TlsError(format!("{} cannot verify clients: {e}", ca.display()))
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            TlsError(format!(
                "{} and {} do not make a usable pair: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The caller a verified client certificate makes: `cert:COMMON-NAME` with the roles
    /// `client_roles` gives it.
    fn caller(&self, certificate: &CertificateDer<'_>) -> Option<crate::Caller> {
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
        let name = parsed
            .subject()
            .iter_common_name()
            .next()?
            .as_str()
            .ok()?
            .to_owned();
        let roles = self.client_roles.get(&name).cloned().unwrap_or_default();
        Some(crate::Caller::new(format!("cert:{name}"), roles))
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((at(&self.cert)?, at(&self.key)?))
    }
}

/// The callers verified client certificates make, by the connection's peer address;
/// an entry lives as long as its connection.
pub(crate) type ClientCallers = Arc<DashMap<SocketAddr, crate::Caller>>;

/// A TLS connection; forgets its client's certificate when it closes.
pub(crate) struct TlsConnection {
    stream: TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    callers: ClientCallers,
}

impl Drop for TlsConnection {
    fn drop(&mut self) {
        self.callers.remove(&self.peer);
    }
}

impl tokio::io::AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A TCP listener whose connections are TLS: what axum serves when `gateway.tls` is set.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsConnection, SocketAddr)>,
    _accepting: tokio_util::sync::DropGuard,
}

impl TlsListener {
    /// Accepts on `tcp`, handshaking with the certificate of `config` (re-read when its
    /// files change).
    pub(crate) fn new(
        tcp: TcpListener,
        config: TlsConfig,
        callers: ClientCallers,
    ) -> Result<Self, TlsError> {
        let local = tcp
            .local_addr()
            .map_err(|e| TlsError(format!("no local address: {e}")))?;
        let acceptor = TlsAcceptor::from(config.server_config()?);
        let (tx, ready) = mpsc::channel(64);
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(
            tcp,
            config,
            acceptor,
            tx,
            callers,
            stop.clone(),
        ));
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
    ready: mpsc::Sender<(TlsConnection, SocketAddr)>,
    callers: ClientCallers,
    stop: CancellationToken,
) {
    let config = Arc::new(config);
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
        let (acceptor, ready, callers, config) = (
            acceptor.clone(),
            ready.clone(),
            callers.clone(),
            config.clone(),
        );
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let client = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|leaf| config.caller(leaf));
                    if let Some(caller) = client {
                        callers.insert(peer, caller);
                    }
                    let connection = TlsConnection {
                        stream: tls,
                        peer,
                        callers,
                    };
                    let _ = ready.send((connection, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConnection;
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
