//! Reading requests off a socket, tolerant where clients are: jupyter-protocol's types make
//! some fields required that the messaging spec (and jupyter_client) leave out — a search
//! `history_request` without `unique` or `n`, a range without `start`. The signature is still
//! checked by jupyter-zmq-client before anything is parsed.

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent};
use jupyter_zmq_client::{RawMessage, RuntimeError};
use serde_json::{json, Map, Value};
use zeromq::SocketRecv;

/// Receives one message from `socket`, verifies its signature and parses it.
pub async fn read<S: SocketRecv>(
    socket: &mut jupyter_zmq_client::Connection<S>,
) -> Result<JupyterMessage, RuntimeError> {
    let multipart = socket.socket.recv().await?;
    let raw = RawMessage::from_multipart(multipart, &socket.mac)?;
    decode(raw)
}

/// Parses the parts of a verified message, filling fields clients may omit.
pub fn decode(raw: RawMessage) -> Result<JupyterMessage, RuntimeError> {
    let RawMessage {
        zmq_identities,
        jparts: parts,
    } = raw;
    if parts.len() < 4 {
        return Err(RuntimeError::InsufficientMessageParts(parts.len()));
    }
    let header: Header = serde_json::from_slice(&parts[0])?;
    let mut content: Value = serde_json::from_slice(&parts[3])?;
    fill_defaults(&header.msg_type, &mut content);
    let content = JupyterMessageContent::from_type_and_content(&header.msg_type, content).map_err(
        |source| RuntimeError::ParseError {
            msg_type: header.msg_type.clone(),
            source,
        },
    )?;
    // An empty parent header arrives as `{}`, which is no header.
    let parent_header = serde_json::from_slice(&parts[1]).ok();
    let metadata = serde_json::from_slice(&parts[2])?;
    let mut message = JupyterMessage::new(content, None);
    message.zmq_identities = zmq_identities;
    message.header = header;
    message.parent_header = parent_header;
    message.metadata = metadata;
    message.buffers = parts[4..].to_vec();
    Ok(message)
}

/// Sets the fields the messaging spec lets a client leave out (or send as null) to the values
/// ipykernel assumes for them.
fn fill_defaults(msg_type: &str, content: &mut Value) {
    if msg_type != "history_request" {
        return;
    }
    let Value::Object(fields) = content else {
        return;
    };
    let defaults = match fields.get("hist_access_type").and_then(Value::as_str) {
        // n = 0 means every match.
        Some("search") => {
            json!({"pattern": "*", "unique": false, "n": 0, "output": false, "raw": true})
        }
        Some("tail") => json!({"n": 10, "output": false, "raw": true}),
        // stop = 0 means to the end.
        Some("range") | None => {
            fields.insert("hist_access_type".into(), json!("range"));
            json!({"start": 0, "stop": 0, "session": 0, "output": false, "raw": true})
        }
        Some(_) => return,
    };
    if let Value::Object(defaults) = defaults {
        fill_missing(fields, defaults);
    }
}

fn fill_missing(fields: &mut Map<String, Value>, defaults: Map<String, Value>) {
    for (key, value) in defaults {
        let slot = fields.entry(key).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupyter_protocol::HistoryRequest;

    fn parse(content: Value) -> HistoryRequest {
        let mut content = content;
        fill_defaults("history_request", &mut content);
        match JupyterMessageContent::from_type_and_content("history_request", content) {
            Ok(JupyterMessageContent::HistoryRequest(r)) => r,
            other => panic!("not a history request: {other:?}"),
        }
    }

    #[test]
    fn search_without_unique_or_n() {
        let r = parse(
            json!({"hist_access_type": "search", "pattern": "let*", "output": false, "raw": true}),
        );
        assert!(matches!(
            r,
            HistoryRequest::Search { ref pattern, unique: false, n: 0, .. } if pattern == "let*"
        ));
    }

    #[test]
    fn tail_with_null_n_and_bare_range() {
        let r = parse(json!({"hist_access_type": "tail", "n": null}));
        assert!(matches!(r, HistoryRequest::Tail { n: 10, .. }));
        let r = parse(json!({"output": true}));
        assert!(matches!(
            r,
            HistoryRequest::Range {
                start: 0,
                stop: 0,
                output: true,
                ..
            }
        ));
    }

    #[test]
    fn other_messages_are_untouched() {
        let mut content = json!({"code": "1"});
        fill_defaults("execute_request", &mut content);
        assert_eq!(content, json!({"code": "1"}));
    }
}
