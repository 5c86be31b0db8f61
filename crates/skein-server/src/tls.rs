//! TLS for SSL listeners (rustls with the ring provider): the server configuration built from a listener's
//! `ssl.*` settings (and, for the inter-broker listener, the client configuration a broker connects with), read at start-up so a missing or broken file stops the broker with a message naming it, and
//! read again when the key store or trust store file changes, so a renewed certificate is served without a restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use skein_broker::peer::{PeerStream, PeerTls, PeerTlsFuture};
use skein_cluster::transport::{QuorumStream, QuorumTls, SecuredStream};
use skein_core::principal::PrincipalMapper;
use skein_core::security::{ClientAuth, KeyStore, PemSource, SslSettings, TlsVersion};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How often an accept looks at whether the key store or trust store file changed.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A file's modification time and length: a rewritten file differs in one of them.
type FileStamp = Option<(SystemTime, u64)>;

/// The TLS acceptor of an SSL listener, rebuilt from its settings when one of its PEM files changes. Connections
/// already open keep the configuration they were accepted with; a file that no longer makes a valid configuration
/// (half written, a key that does not match) is logged and the previous configuration kept until it does.
pub struct ListenerTls {
    listener: String,
    settings: SslSettings,
    files: Vec<PathBuf>,
    state: Mutex<TlsState>,
}

struct TlsState {
    acceptor: TlsAcceptor,
    stamps: Vec<FileStamp>,
    checked: Instant,
}

impl ListenerTls {
    pub fn new(listener: &str, settings: &SslSettings) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        if let KeyStore::File(path) = &settings.key_store {
            files.push(PathBuf::from(path));
        }
        if let Some(PemSource::File(path)) = &settings.trust_store {
            files.push(PathBuf::from(path));
        }
        let stamps = stamps(&files);
        let config = server_config(settings).with_context(|| format!("listener {listener}: TLS setup"))?;
        let state = TlsState { acceptor: TlsAcceptor::from(Arc::new(config)), stamps, checked: Instant::now() };
        Ok(ListenerTls { listener: listener.to_owned(), settings: settings.clone(), files, state: Mutex::new(state) })
    }

    /// The acceptor for a new connection: the current configuration, rebuilt first if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            state.checked = Instant::now();
            let stamps = stamps(&self.files);
            if stamps != state.stamps {
                match server_config(&self.settings) {
                    Ok(config) => {
                        state.acceptor = TlsAcceptor::from(Arc::new(config));
                        state.stamps = stamps;
                        tracing::info!(listener = %self.listener, "TLS key store or trust store changed: reloaded");
                    }
                    Err(err) => tracing::warn!(
                        listener = %self.listener,
                        error = format!("{err:#}"),
                        "TLS key store or trust store changed but is not usable: keeping the previous one"
                    ),
                }
            }
        }
        state.acceptor.clone()
    }
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls").field("listener", &self.listener).finish_non_exhaustive()
    }
}

fn stamps(files: &[PathBuf]) -> Vec<FileStamp> {
    files
        .iter()
        .map(|path| std::fs::metadata(path).ok().and_then(|meta| Some((meta.modified().ok()?, meta.len()))))
        .collect()
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    // ring builds with a C compiler alone (aws-lc needs cmake); rustls marks it deprecated because it has no
    // post-quantum key exchange, which Kafka's JVM TLS does not offer either.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn protocol_versions(settings: &SslSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .versions
        .iter()
        .map(|version| match version {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

fn server_config(settings: &SslSettings) -> anyhow::Result<rustls::ServerConfig> {
    let provider = crypto_provider();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&protocol_versions(settings))
        .context("ssl.enabled.protocols")?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let Some(trust_store) = &settings.trust_store else {
                bail!("ssl.client.auth needs a trust store");
            };
            let roots = Arc::new(root_store(trust_store)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
            let verifier =
                if settings.client_auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().context("client certificate verifier")?)
        }
    };
    let (chain, key) = key_store(&settings.key_store)?;
    builder.with_single_cert(chain, key).context("the key store's private key does not match its certificate")
}

/// The client side of TLS on an SSL or SASL_SSL inter-broker listener: this broker presents the listener's key
/// store and checks the other broker's certificate against the listener's trust store, and its host name unless
/// `ssl.endpoint.identification.algorithm` is empty. The files are read for every connection, so a renewed
/// certificate is used from the next one on.
#[derive(Clone)]
pub struct PeerTlsConnector {
    listener: String,
    settings: SslSettings,
    verify_host: bool,
}

impl PeerTlsConnector {
    /// Fails when the listener's files do not make a client configuration now.
    pub fn new(listener: &str, settings: SslSettings, verify_host: bool) -> anyhow::Result<Self> {
        client_config(&settings, verify_host).with_context(|| format!("listener {listener}: inter-broker TLS"))?;
        Ok(PeerTlsConnector { listener: listener.to_owned(), settings, verify_host })
    }
}

impl PeerTlsConnector {
    /// A TLS client connection to `host` over `stream`, with the listener's files as they are now.
    async fn secure(
        &self,
        stream: tokio::net::TcpStream,
        host: String,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let config = client_config(&self.settings, self.verify_host)
            .with_context(|| format!("listener {}: TLS to another node", self.listener))
            .map_err(|err| std::io::Error::other(format!("{err:#}")))?;
        let name = ServerName::try_from(host).map_err(std::io::Error::other)?;
        TlsConnector::from(Arc::new(config)).connect(name, stream).await
    }
}

impl std::fmt::Debug for PeerTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTlsConnector").field("listener", &self.listener).finish_non_exhaustive()
    }
}

impl PeerTls for PeerTlsConnector {
    fn connect(&self, stream: tokio::net::TcpStream, host: String) -> PeerTlsFuture {
        let connector = self.clone();
        Box::pin(async move { Ok(Box::new(connector.secure(stream, host).await?) as Box<dyn PeerStream>) })
    }
}

/// TLS on the metadata quorum's connections (an SSL controller listener): the listener's acceptor when another
/// node connects (its client certificate checked per `ssl.client.auth`), and the listener's key and trust stores
/// when this node connects to another, as between brokers.
#[derive(Debug)]
pub struct QuorumListenerTls {
    pub acceptor: Arc<ListenerTls>,
    pub connector: PeerTlsConnector,
}

impl QuorumTls for QuorumListenerTls {
    fn connect(&self, stream: tokio::net::TcpStream, host: String) -> SecuredStream {
        let connector = self.connector.clone();
        Box::pin(async move { Ok(Box::new(connector.secure(stream, host).await?) as Box<dyn QuorumStream>) })
    }

    fn accept(&self, stream: tokio::net::TcpStream) -> SecuredStream {
        let acceptor = self.acceptor.acceptor();
        Box::pin(async move { Ok(Box::new(acceptor.accept(stream).await?) as Box<dyn QuorumStream>) })
    }
}

fn client_config(settings: &SslSettings, verify_host: bool) -> anyhow::Result<rustls::ClientConfig> {
    let provider = crypto_provider();
    let Some(trust_store) = &settings.trust_store else {
        bail!("brokers check each other's certificates against a trust store: set ssl.truststore.location");
    };
    let roots = Arc::new(root_store(trust_store)?);
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .context("server certificate verifier")?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&protocol_versions(settings))
        .context("ssl.enabled.protocols")?;
    let builder = if verify_host {
        builder.with_webpki_verifier(verifier)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
    };
    let (chain, key) = key_store(&settings.key_store)?;
    builder.with_client_auth_cert(chain, key).context("the key store's private key does not match its certificate")
}

/// Checks a server certificate's chain but not the name it was reached by (`ssl.endpoint.identification.algorithm`
/// empty, as brokers reached through addresses their certificates do not name need).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked after the chain: a name mismatch means the chain was valid.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The principal of a TLS connection: `User:` and the client certificate's subject (RFC 2253, as Java prints
/// it) mapped by `ssl.principal.mapping.rules`; `None` without a client certificate. An error (a subject no rule
/// applies to, a certificate that does not parse) fails the connection, as in Kafka.
pub fn client_principal(
    certificates: Option<&[CertificateDer<'_>]>,
    mapper: &PrincipalMapper,
) -> Result<Option<String>, String> {
    use x509_cert::der::Decode;
    let Some(leaf) = certificates.and_then(|chain| chain.first()) else { return Ok(None) };
    let certificate = x509_cert::Certificate::from_der(leaf.as_ref())
        .map_err(|err| format!("the client certificate does not parse: {err}"))?;
    let subject = certificate.tbs_certificate.subject.to_string();
    mapper.name(&subject).map(|name| Some(format!("User:{name}")))
}

/// The certificate chain (leaf first) and private key of a key store.
fn key_store(store: &KeyStore) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (chain_pem, key_pem, origin) = match store {
        KeyStore::File(path) => {
            let text = read_pem_file(path, "ssl.keystore.location")?;
            (text.clone(), text, format!("ssl.keystore.location {path}"))
        }
        KeyStore::Inline { key, certificate_chain } => (
            certificate_chain.clone().into_bytes(),
            key.clone().into_bytes(),
            "ssl.keystore.key / ssl.keystore.certificate.chain".to_string(),
        ),
    };
    if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED PRIVATE KEY") {
        bail!("{origin}: the private key is encrypted; Skein reads unencrypted PEM keys only");
    }
    let chain = certificates(&chain_pem).with_context(|| origin.clone())?;
    if chain.is_empty() {
        bail!("{origin}: no CERTIFICATE in it");
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| anyhow::anyhow!("{origin}: no usable private key in it ({err})"))?;
    Ok((chain, key))
}

fn root_store(source: &PemSource) -> anyhow::Result<RootCertStore> {
    let (pem, origin) = match source {
        PemSource::File(path) => {
            (read_pem_file(path, "ssl.truststore.location")?, format!("ssl.truststore.location {path}"))
        }
        PemSource::Inline(text) => (text.clone().into_bytes(), "ssl.truststore.certificates".to_string()),
    };
    let mut roots = RootCertStore::empty();
    let certificates = certificates(&pem).with_context(|| origin.clone())?;
    if certificates.is_empty() {
        bail!("{origin}: no CERTIFICATE in it");
    }
    for certificate in certificates {
        roots.add(certificate).with_context(|| format!("{origin}: a certificate is not a usable CA certificate"))?;
    }
    Ok(roots)
}

fn certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("unreadable PEM certificate ({err})"))
}

fn read_pem_file(path: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{key}: cannot read {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_store_file_is_named() {
        let settings = SslSettings {
            key_store: KeyStore::File("/nonexistent/server.pem".into()),
            trust_store: None,
            client_auth: ClientAuth::None,
            versions: vec![TlsVersion::Tls13],
            principal_mapper: Default::default(),
        };
        let err = format!("{:#}", ListenerTls::new("SSL", &settings).expect_err("fails"));
        assert!(err.contains("listener SSL") && err.contains("/nonexistent/server.pem"), "{err}");
    }

    #[test]
    fn inline_text_without_pem_blocks_is_refused() {
        let settings = SslSettings {
            key_store: KeyStore::Inline { key: "not a key".into(), certificate_chain: "not a chain".into() },
            trust_store: None,
            client_auth: ClientAuth::None,
            versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
            principal_mapper: Default::default(),
        };
        let err = format!("{:#}", ListenerTls::new("SSL", &settings).expect_err("fails"));
        assert!(err.contains("no CERTIFICATE"), "{err}");
    }
}
