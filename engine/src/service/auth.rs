//! The engine's token: an engine that listens beyond loopback requires one, and checks it on
//! every call; clients send it from `SLUICE_ENGINE_TOKEN` or the file named by
//! `SLUICE_ENGINE_TOKEN_FILE`.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The token itself, for clients and for `sluice-engine serve`.
pub const TOKEN_ENV: &str = "SLUICE_ENGINE_TOKEN";
/// A file holding the token (its first line), when the token is not in [`TOKEN_ENV`].
pub const TOKEN_FILE_ENV: &str = "SLUICE_ENGINE_TOKEN_FILE";

const HEADER: &str = "authorization";

/// Why a token could not be had.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TokenError {
    #[error("cannot read the token file {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("the token from {source_name} is empty")]
    Empty { source_name: String },
    #[error("the token from {source_name} holds characters other than printable ASCII")]
    NotAscii { source_name: String },
}

/// Reads a token file: its first line, trimmed.
pub fn read_token_file(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    check_token(
        text.lines().next().unwrap_or("").trim(),
        &path.display().to_string(),
    )
}

fn check_token(token: &str, source_name: &str) -> Result<String, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty {
            source_name: source_name.to_string(),
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::NotAscii {
            source_name: source_name.to_string(),
        });
    }
    Ok(token.to_string())
}

/// The token from the environment: [`TOKEN_ENV`], else the file [`TOKEN_FILE_ENV`] names;
/// `None` when neither is set.
pub fn token_from_env() -> Result<Option<String>, TokenError> {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        return check_token(token.trim(), TOKEN_ENV).map(Some);
    }
    match std::env::var_os(TOKEN_FILE_ENV) {
        Some(path) => read_token_file(std::path::Path::new(&path)).map(Some),
        None => Ok(None),
    }
}

/// What an engine's own calls to other engines carry: its token, and the certificate
/// authority it checks them against. Each left `None` is taken from the environment
/// ([`TOKEN_ENV`], `SLUICE_TLS_CA`), as a client's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    pub token: Option<String>,
    pub ca: Option<crate::service::tls::TrustedCa>,
}

impl PeerCredentials {
    /// Nothing of its own: the environment's token and authority.
    pub const FROM_ENV: PeerCredentials = PeerCredentials {
        token: None,
        ca: None,
    };

    /// The token and authority calls carry: these, else the environment's.
    pub fn resolve(
        &self,
    ) -> Result<(Option<String>, Option<crate::service::tls::TrustedCa>), String> {
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => token_from_env().map_err(|e| e.to_string())?,
        };
        let ca = match &self.ca {
            Some(ca) => Some(ca.clone()),
            None => crate::service::tls::TrustedCa::from_env().map_err(|e| e.to_string())?,
        };
        Ok((token, ca))
    }
}

/// Adds the token (if any) to each call a client makes.
#[derive(Clone, Default)]
pub struct SendToken(Option<MetadataValue<Ascii>>);

impl SendToken {
    pub fn new(token: Option<&str>) -> Result<SendToken, TokenError> {
        token
            .map(|t| {
                let t = check_token(t, "the client")?;
                MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| TokenError::NotAscii {
                    source_name: "the client".into(),
                })
            })
            .transpose()
            .map(SendToken)
    }
}

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(HEADER, value.clone());
        }
        Ok(request)
    }
}

/// Who made a call: the index of the token it carried among the engine's (each token is one
/// user); absent when the engine takes calls without a token.
#[cfg(feature = "engine")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller(pub u32);

/// The caller of `request`, as [`CheckToken`] found it.
#[cfg(feature = "engine")]
pub fn caller_of<T>(request: &Request<T>) -> Option<Caller> {
    request.extensions().get::<Caller>().copied()
}

/// Reads an engine's tokens: one per line (blank lines and `#` comments skipped), each a user
/// of its own whose sessions the others cannot see.
pub fn read_token_list(path: &std::path::Path) -> Result<Vec<String>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|e| TokenError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let name = path.display().to_string();
    let tokens = (text.lines().map(str::trim))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| check_token(l, &name))
        .collect::<Result<Vec<_>, _>>()?;
    if tokens.is_empty() {
        return Err(TokenError::Empty { source_name: name });
    }
    Ok(tokens)
}

/// Checks each call's token on the engine's side and marks the call with its [`Caller`];
/// with no tokens, lets every call through unmarked.
#[cfg(feature = "engine")]
#[derive(Clone, Default)]
pub struct CheckToken(std::sync::Arc<[std::sync::Arc<str>]>);

#[cfg(feature = "engine")]
impl CheckToken {
    pub fn new(tokens: &[String]) -> CheckToken {
        CheckToken(
            tokens
                .iter()
                .map(|t| std::sync::Arc::from(t.as_str()))
                .collect(),
        )
    }
}

#[cfg(feature = "engine")]
impl Interceptor for CheckToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if self.0.is_empty() {
            return Ok(request);
        }
        let sent = request
            .metadata()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let Some(sent) = sent else {
            return Err(Status::unauthenticated(format!(
                "this engine requires a token: set {TOKEN_ENV} (or {TOKEN_FILE_ENV}) to the token \
                 it was started with"
            )));
        };
        // Every token is compared, so the time taken does not say which one matched.
        let mut found = None;
        for (i, expected) in self.0.iter().enumerate() {
            if same(sent.as_bytes(), expected.as_bytes()) && found.is_none() {
                found = u32::try_from(i).ok();
            }
        }
        match found {
            Some(i) => {
                request.extensions_mut().insert(Caller(i));
                Ok(request)
            }
            None => Err(Status::unauthenticated(
                "the engine's token does not match the one sent",
            )),
        }
    }
}

/// Compares in time that depends on the longer length only, not on where the bytes differ
/// nor on whether the lengths do.
#[cfg(feature = "engine")]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = a.len() ^ b.len();
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// 128 bits nobody can guess (tickets, session handles): from the system's CSPRNG, or, where
/// that fails, from the standard library's randomly keyed SipHash.
pub fn random_u128() -> u128 {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_ok() {
        return u128::from_le_bytes(bytes);
    }
    use std::hash::{BuildHasher, Hasher};
    let half = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    (u128::from(half()) << 64) | u128::from(half())
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal_in_length_and_bytes() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret-and-more"));
        assert!(!same(b"", b"x"));
        assert_ne!(random_u128(), random_u128());
    }
}
