//! Engine errors as gRPC statuses, and back.
//!
//! A refused graph change or a bad feed is INVALID_ARGUMENT with the engine's own error text;
//! what a client must do something about first (a stale graph version, an uninitialised
//! variable) is FAILED_PRECONDITION; a missing session is NOT_FOUND. Statuses a client acts on
//! carry their kind and node in metadata, so the remote session rebuilds the same
//! [`SessionError`] the in-process session returns.

#[cfg(feature = "engine")]
use super::wire::WireError;
use super::{ERROR_KIND, ERROR_NODE};
#[cfg(feature = "engine")]
use crate::error::GraphError;
use crate::error::{RemoteError, SessionError};
#[cfg(feature = "engine")]
use tonic::metadata::{BinaryMetadataValue, MetadataValue};
use tonic::{Code, Status};

const STALE: &str = "stale-version";
const UNINITIALIZED: &str = "uninitialized";
const MISSING_FEED: &str = "missing-feed";

#[cfg(feature = "engine")]
fn tagged(code: Code, message: String, kind: &'static str, node: &str) -> Status {
    let mut status = Status::new(code, message);
    let meta = status.metadata_mut();
    meta.insert(ERROR_KIND, MetadataValue::from_static(kind));
    meta.insert_bin(ERROR_NODE, BinaryMetadataValue::from_bytes(node.as_bytes()));
    status
}

#[cfg(feature = "engine")]
pub(crate) fn graph_status(e: &GraphError) -> Status {
    Status::invalid_argument(e.to_string())
}

#[cfg(feature = "engine")]
pub(crate) fn wire_status(e: &WireError) -> Status {
    if e.too_large {
        Status::resource_exhausted(e.to_string())
    } else {
        Status::invalid_argument(e.to_string())
    }
}

#[cfg(feature = "engine")]
pub(crate) fn session_status(e: &SessionError) -> Status {
    let text = e.to_string();
    match e {
        SessionError::Uninitialized(node) => {
            tagged(Code::FailedPrecondition, text, UNINITIALIZED, node)
        }
        SessionError::MissingFeed(node) => tagged(Code::InvalidArgument, text, MISSING_FEED, node),
        SessionError::Cancelled => Status::cancelled(text),
        SessionError::OverBudget { .. } => Status::resource_exhausted(text),
        SessionError::Internal { .. } => Status::internal(text),
        SessionError::DeadlineExceeded => Status::deadline_exceeded(text),
        SessionError::Remote(RemoteError::Status { code, message }) => {
            Status::new(*code, message.clone())
        }
        SessionError::Remote(_) => Status::internal(text),
        _ => Status::invalid_argument(text),
    }
}

#[cfg(feature = "engine")]
pub(crate) fn stale_version(client: u64, engine: u64) -> Status {
    tagged(
        Code::FailedPrecondition,
        format!(
            "stale graph version: the delta was built on version {client}, but the session's \
             graph is at version {engine}; fetch the nodes added since (GetGraph from version \
             {client}) and send the delta again"
        ),
        STALE,
        "",
    )
}

#[cfg(feature = "engine")]
pub(crate) fn unknown_session(handle: &str) -> Status {
    Status::not_found(format!(
        "no session '{handle}' on this engine (it was closed, or the engine restarted)"
    ))
}

/// Whether the engine refused a graph delta because another client extended the graph first.
pub(crate) fn is_stale(status: &Status) -> bool {
    kind(status) == Some(STALE)
}

fn kind(status: &Status) -> Option<&str> {
    status.metadata().get(ERROR_KIND)?.to_str().ok()
}

/// The session error a status stands for: the in-process error where the kind says which.
pub(crate) fn session_error(status: Status) -> SessionError {
    let node = || {
        status
            .metadata()
            .get_bin(ERROR_NODE)
            .and_then(|v| v.to_bytes().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    match (status.code(), kind(&status)) {
        (_, Some(UNINITIALIZED)) => SessionError::Uninitialized(node()),
        (_, Some(MISSING_FEED)) => SessionError::MissingFeed(node()),
        (Code::Cancelled, _) => SessionError::Cancelled,
        (code, _) => RemoteError::Status {
            code,
            message: status.message().to_string(),
        }
        .into(),
    }
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_survive_the_round_trip() {
        for e in [
            SessionError::Uninitialized("layer/W".into()),
            SessionError::MissingFeed("x".into()),
            SessionError::Cancelled,
        ] {
            assert_eq!(session_error(session_status(&e)), e);
        }
        let stale = stale_version(3, 5);
        assert!(is_stale(&stale));
        assert!(stale.message().contains("version 3") && stale.message().contains("version 5"));
        let other = session_error(graph_status(&GraphError::UnknownNode("q".into())));
        assert!(matches!(
            other,
            SessionError::Remote(RemoteError::Status {
                code: Code::InvalidArgument,
                ..
            })
        ));
    }
}
