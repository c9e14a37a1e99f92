//! `--web.config.file`: TLS and basic auth for every endpoint, in the exporter-toolkit format.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt       # relative paths are relative to this file
//!   key_file: server.key
//! basic_auth_users:
//!   prometheus: $2y$10$...      # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! The certificate and key are re-read when their files change (checked at each handshake), so
//! a renewed certificate needs no restart. Passwords are checked with bcrypt off the async
//! threads; an unknown user is checked against a dummy hash so that the answer takes as long as
//! for a known one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: HashMap<String, String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    min_version: Option<String>,
}

/// The parsed web configuration.
pub struct WebSecurity {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    users: HashMap<String, String>,
    /// A hash of the users' cost, checked for unknown users so they take as long.
    dummy: String,
}

impl std::fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebSecurity {
    pub fn none() -> Self {
        WebSecurity {
            tls: None,
            users: HashMap::new(),
            dummy: String::new(),
        }
    }

    pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
        let err = |message: String| WebConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| err(e.to_string()))?
        };
        let mut cost = 10;
        for (user, hash) in &raw.basic_auth_users {
            match hash.parse::<bcrypt::HashParts>() {
                Ok(parts) => cost = parts.get_cost(),
                Err(_) => {
                    return Err(err(format!(
                        "basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                    )))
                }
            }
        }
        let dummy = if raw.basic_auth_users.is_empty() {
            String::new()
        } else {
            bcrypt::hash("td-pz-exporter: no such user", cost).map_err(|e| err(e.to_string()))?
        };
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                let resolver = ReloadingCert::new(dir.join(&t.cert_file), dir.join(&t.key_file))
                    .map_err(|e| err(format!("tls_server_config: {e}")))?;
                let versions: &[&rustls::SupportedProtocolVersion] = match t.min_version.as_deref()
                {
                    None | Some("TLS12") => &[&rustls::version::TLS13, &rustls::version::TLS12],
                    Some("TLS13") => &[&rustls::version::TLS13],
                    Some(v) => {
                        return Err(err(format!(
                            "tls_server_config.min_version: {v} (use TLS12 or TLS13)"
                        )))
                    }
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(versions)
                    .map_err(|e| err(e.to_string()))?
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(resolver));
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(Arc::new(cfg))
            }
        };
        Ok(WebSecurity {
            tls,
            users: raw.basic_auth_users,
            dummy,
        })
    }

    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an `Authorization` header value. Runs bcrypt on the blocking pool.
    pub async fn authorized(self: &Arc<Self>, header: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, pass)) = header.and_then(parse_basic) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        ok && known
    }
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    let b64 = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Serves the certificate in `cert`/`key`, reloading it when either file changes.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn load_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ReloadingCert {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Self, String> {
        let ck = load_key(&cert, &key)?;
        Ok(ReloadingCert {
            current: Mutex::new((mtime(&cert), mtime(&key), ck)),
            cert,
            key,
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut cur = self.current.lock().ok()?;
        let (c, k) = (mtime(&self.cert), mtime(&self.key));
        if (c, k) != (cur.0, cur.1) {
            match load_key(&self.cert, &self.key) {
                Ok(ck) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    *cur = (c, k, ck);
                }
                // A half-written pair: keep serving the old one, try again next handshake.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; keeping the old one")
                }
            }
        }
        Some(cur.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers() {
        assert_eq!(
            parse_basic("Basic dXNlcjpwYTpzcw=="),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!"), None);
    }

    /// What the YAML parser accepts and how it refuses, as the exporter-toolkit format wants.
    #[test]
    fn yaml_is_read_strictly() {
        let dir = std::env::temp_dir().join(format!("td-pz-web-yaml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |text: &str| {
            let path = dir.join("web.yml");
            std::fs::write(&path, text).unwrap();
            WebSecurity::load(&path)
        };
        assert!(
            !load("").unwrap().requires_auth(),
            "an empty file is no auth"
        );
        assert!(!load("# only a comment\n").unwrap().requires_auth());
        assert!(!load("basic_auth_users: {}\n").unwrap().requires_auth());
        let hash = "$2y$04$ZVW3ZzOW1IX0g1g0yIuvcOCbvXwu0Ge0CXAP8QIRYEtqlQCHUgfWO";
        let ok = load(&format!("basic_auth_users:\n  prometheus: {hash}\n")).unwrap();
        assert!(ok.requires_auth());
        let msg = |text: &str| load(text).unwrap_err().to_string();
        let unknown = msg("basic_auth_users: {}\nbasic_auth: x\n");
        assert!(
            unknown.contains("web.yml: unknown field `basic_auth`") && unknown.contains("line 2"),
            "{unknown}"
        );
        let typed = msg("basic_auth_users: [a, b]\n");
        assert!(
            typed.contains("basic_auth_users: invalid type: sequence"),
            "{typed}"
        );
        let broken = msg("basic_auth_users: {a: b\n");
        assert!(
            broken.contains("web.yml: ") && broken.contains("line"),
            "{broken}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
