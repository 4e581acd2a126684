//! How to reach Consul as production runs it: HTTPS with a private CA, a
//! client certificate (`verify_incoming`), a server name to check, an ACL
//! token or token file. Read from Consul's own environment variables (the
//! ones the `consul` CLI reads) so an operator's existing setup works as is;
//! the same fields can come from rebootmgr's config file.
//!
//! Files named here are read through the one safe helper
//! ([`umm_core::fsutil::read_text`], config policy: root-owned, not writable
//! by group or others, the whole chain; under `UMM_ROOT` in tests), and a
//! missing file is an error that names it. Nothing is read until a client
//! is built.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use umm_core::fsutil::{self, Policy};
use umm_core::paths::Root;

/// Everything needed to build a [`crate::consul::Consul`] client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsulSettings {
    /// `http://host:port`, `https://host:port` or `host:port` (plain HTTP).
    pub addr: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub tls: TlsSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) to trust (`CONSUL_CACERT`).
    pub ca_file: Option<PathBuf>,
    /// Directory of PEM CA certificates (`CONSUL_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key (`CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name to check the server's certificate against instead of the
    /// address's host (`CONSUL_TLS_SERVER_NAME`, e.g. `server.dc1.consul`).
    pub server_name: Option<String>,
    /// `false` only with `CONSUL_HTTP_SSL_VERIFY=false`: no certificate check.
    pub verify: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            ca_file: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            server_name: None,
            verify: true,
        }
    }
}

/// Consul's environment variables, in the order the `consul` CLI documents.
pub const ENV_VARS: &[&str] = &[
    "CONSUL_HTTP_ADDR",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "CONSUL_CACERT",
    "CONSUL_CAPATH",
    "CONSUL_CLIENT_CERT",
    "CONSUL_CLIENT_KEY",
    "CONSUL_TLS_SERVER_NAME",
    "CONSUL_HTTP_SSL",
    "CONSUL_HTTP_SSL_VERIFY",
];

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Consul's boolean spelling (Go's `strconv.ParseBool`).
pub fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!(
            "{name}={other:?} is not a boolean (use true or false)"
        )),
    }
}

impl ConsulSettings {
    /// Consul's environment variables. `CONSUL_HTTP_SSL=true` turns a
    /// scheme-less `CONSUL_HTTP_ADDR` into HTTPS, as in the `consul` CLI.
    pub fn from_env() -> Result<ConsulSettings, String> {
        let mut s = ConsulSettings {
            addr: env("CONSUL_HTTP_ADDR"),
            token: env("CONSUL_HTTP_TOKEN"),
            token_file: env("CONSUL_HTTP_TOKEN_FILE").map(PathBuf::from),
            tls: TlsSettings {
                ca_file: env("CONSUL_CACERT").map(PathBuf::from),
                ca_path: env("CONSUL_CAPATH").map(PathBuf::from),
                client_cert: env("CONSUL_CLIENT_CERT").map(PathBuf::from),
                client_key: env("CONSUL_CLIENT_KEY").map(PathBuf::from),
                server_name: env("CONSUL_TLS_SERVER_NAME"),
                verify: true,
            },
        };
        if let Some(v) = env("CONSUL_HTTP_SSL_VERIFY") {
            s.tls.verify = parse_bool("CONSUL_HTTP_SSL_VERIFY", &v)?;
        }
        if let Some(v) = env("CONSUL_HTTP_SSL") {
            if parse_bool("CONSUL_HTTP_SSL", &v)? {
                if let Some(a) = &s.addr {
                    if !a.contains("://") {
                        s.addr = Some(format!("https://{a}"));
                    }
                }
            }
        }
        Ok(s)
    }

    /// Fields set in `over` replace those in `self` (flags over the config
    /// file over the environment, or whichever order the caller wants).
    pub fn overlay(mut self, over: &ConsulSettings) -> ConsulSettings {
        if over.addr.is_some() {
            self.addr = over.addr.clone();
        }
        if over.token.is_some() || over.token_file.is_some() {
            self.token = over.token.clone();
            self.token_file = over.token_file.clone();
        }
        let (t, o) = (&mut self.tls, &over.tls);
        for (mine, theirs) in [
            (&mut t.ca_file, &o.ca_file),
            (&mut t.ca_path, &o.ca_path),
            (&mut t.client_cert, &o.client_cert),
            (&mut t.client_key, &o.client_key),
        ] {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        if o.server_name.is_some() {
            t.server_name.clone_from(&o.server_name);
        }
        if !o.verify {
            t.verify = false;
        }
        self
    }

    /// The token: `token` itself, else the first line of `token_file`.
    pub fn resolve_token(&self) -> Result<Option<String>, String> {
        if let Some(t) = &self.token {
            return Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = read(path, "ACL token file (CONSUL_HTTP_TOKEN_FILE / token_file)")?;
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() {
            return Err(format!(
                "ACL token file {} is empty; write the token's SecretID into it",
                path.display()
            ));
        }
        Ok(Some(token))
    }
}

/// `path` made absolute against the working directory (Consul's variables
/// may be relative, like the CLI's).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Read through the one safe helper with the config policy: root-owned and
/// not writable by group or others, the file and every directory above it
/// (a CA, key or token anyone else could swap is not one to trust).
fn read(path: &Path, what: &str) -> Result<String, String> {
    let abs = absolute(path);
    match fsutil::read_text(&Root::from_env(), &abs, &Policy::CONFIG) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(format!("{what} {} does not exist", path.display())),
        Err(e) => Err(format!("cannot use {what}: {e}")),
    }
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = read(path, what)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// Debian/Ubuntu, RHEL/Fedora, SUSE.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for these settings.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    if let Some(f) = &tls.ca_file {
        for c in certs(f, "CA file (CONSUL_CACERT / ca_file)")? {
            roots
                .add(c)
                .map_err(|e| format!("CA file {}: {e}", f.display()))?;
        }
    }
    if let Some(dir) = &tls.ca_path {
        let dir = absolute(dir);
        let names = fsutil::list_dir(&Root::from_env(), &dir, &Policy::CONFIG)
            .map_err(|e| format!("cannot use CA directory (CONSUL_CAPATH / ca_path): {e}"))?
            .ok_or_else(|| {
                format!(
                    "CA directory (CONSUL_CAPATH / ca_path) {} does not exist",
                    dir.display()
                )
            })?;
        for name in names {
            let p = dir.join(name);
            // Like Consul: every file that parses as PEM certificates counts.
            if let Ok(cs) = certs(&p, "CA") {
                for c in cs {
                    let _ = roots.add(c);
                }
            }
        }
        if roots.is_empty() {
            return Err(format!(
                "CA directory (CONSUL_CAPATH / ca_path) {}: no PEM certificate in it",
                dir.display()
            ));
        }
    }
    if tls.ca_file.is_none() && tls.ca_path.is_none() {
        // Like the `consul` CLI: the system's CA bundle.
        let bundle = SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "HTTPS Consul without a CA: set CONSUL_CACERT (ca_file) or CONSUL_CAPATH (ca_path); no system CA bundle found ({})",
                    SYSTEM_BUNDLES.join(", ")
                )
            })?;
        for c in certs(bundle, "system CA bundle")? {
            let _ = roots.add(c);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier = Arc::new(Verifier {
        inner: webpki,
        server_name: match &tls.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| format!("CONSUL_TLS_SERVER_NAME / tls_server_name {n:?}: {e}"))?,
            ),
            None => None,
        },
        verify: tls.verify,
    });
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cfg = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert, "client certificate (CONSUL_CLIENT_CERT / client_cert)")?;
            let key_text = read(key, "client key (CONSUL_CLIENT_KEY / client_key)")?;
            let key_der = PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| {
                format!("client key {}: not a PEM private key: {e}", key.display())
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| {
                    format!(
                        "client certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(
                "a client certificate (CONSUL_CLIENT_CERT / client_cert) needs its key (CONSUL_CLIENT_KEY / client_key)"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "a client key (CONSUL_CLIENT_KEY / client_key) needs its certificate (CONSUL_CLIENT_CERT / client_cert)"
                    .into(),
            )
        }
    };
    Ok(Arc::new(cfg))
}

/// WebPKI verification against the configured CA, checking
/// `server_name` instead of the URL's host when one is set; with
/// `verify = false` any certificate is accepted (the handshake signatures
/// are still checked).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    server_name: Option<ServerName<'static>>,
    verify: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verify {
            return Ok(ServerCertVerified::assertion());
        }
        let name = self.server_name.as_ref().unwrap_or(server_name);
        self.inner
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_consuls() {
        assert_eq!(parse_bool("X", "false"), Ok(false));
        assert_eq!(parse_bool("X", "1"), Ok(true));
        assert!(parse_bool("X", "no").unwrap_err().contains("X=\"no\""));
    }

    #[test]
    fn later_layers_win() {
        let env = ConsulSettings {
            addr: Some("https://a:8501".into()),
            token: Some("env".into()),
            ..Default::default()
        };
        let file = ConsulSettings {
            token_file: Some("/etc/rebootmgr/token".into()),
            tls: TlsSettings {
                ca_file: Some("/ca.pem".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let s = env.overlay(&file);
        assert_eq!(s.addr.as_deref(), Some("https://a:8501"));
        assert_eq!(s.token, None, "a token file replaces a token from below");
        assert_eq!(s.token_file, Some(PathBuf::from("/etc/rebootmgr/token")));
        assert_eq!(s.tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert!(s.tls.verify);
    }

    #[test]
    fn token_file_first_line_and_errors() {
        // Below a world-writable /tmp: refused by the trust rule.
        let tmp = tempfile::tempdir_in("/tmp").unwrap();
        std::fs::write(tmp.path().join("token"), "abc\n").unwrap();
        let s = ConsulSettings {
            token_file: Some(tmp.path().join("token")),
            ..Default::default()
        };
        let e = s.resolve_token().unwrap_err();
        assert!(e.contains("writable by group or others"), "{e}");

        // In a directory chain only root can write (the crate's own dir
        // while the tests run as root, as the project's tests do).
        let d = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let f = d.path().join("token");
        let mut s = ConsulSettings {
            token_file: Some(f.clone()),
            ..Default::default()
        };
        let e = s.resolve_token().unwrap_err();
        assert!(e.contains("does not exist") && e.contains("token"), "{e}");
        std::fs::write(&f, "\n").unwrap();
        assert!(s.resolve_token().unwrap_err().contains("is empty"));
        std::fs::write(&f, "  abc-123 \nignored\n").unwrap();
        assert_eq!(s.resolve_token().unwrap().as_deref(), Some("abc-123"));
        s.token = Some("direct".into());
        assert_eq!(s.resolve_token().unwrap().as_deref(), Some("direct"));
    }

    #[test]
    fn half_a_client_identity_is_an_error() {
        let tls = TlsSettings {
            client_cert: Some("/nonexistent.pem".into()),
            ..Default::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert!(e.contains("needs its key"), "{e}");
        let tls = TlsSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = client_config(&tls).unwrap_err();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("does not exist"),
            "{e}"
        );
    }
}
