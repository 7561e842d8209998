//! What a cell's results look like on the wire: evcxr's outputs by MIME type as Jupyter
//! media, evcxr's and the cell's errors as `error` content.

use jupyter_protocol::{ErrorOutput, Media, MediaType};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Media from evcxr's `content_by_mime_type` (JSON types parsed, others as text).
pub fn media(content_by_mime_type: &HashMap<String, String>) -> Media {
    let mut map = Map::new();
    for (mime, content) in content_by_mime_type {
        let value = if mime.ends_with("json") {
            serde_json::from_str(content).unwrap_or_else(|_| Value::String(content.clone()))
        } else {
            Value::String(content.clone())
        };
        map.insert(mime.clone(), value);
    }
    if !map.contains_key("text/plain") {
        // Every bundle should carry a plain-text form for clients that show nothing else.
        let plain = content_by_mime_type
            .get("text/html")
            .map(|_| "<HTML output>".to_string())
            .unwrap_or_default();
        map.insert("text/plain".into(), Value::String(plain));
    }
    serde_json::from_value::<Media>(Value::Object(map)).unwrap_or_else(|_| {
        let plain = content_by_mime_type
            .get("text/plain")
            .cloned()
            .unwrap_or_default();
        Media::new(vec![MediaType::Plain(plain)])
    })
}

/// The plain text of a media bundle, for history.
pub fn plain_text(media: &Media) -> String {
    media
        .content
        .iter()
        .find_map(|m| match m {
            MediaType::Plain(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// One `error` message for what evcxr reported.
pub fn evcxr_error(error: &evcxr::Error) -> ErrorOutput {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            let mut traceback = Vec::new();
            for e in errors {
                traceback.extend(compilation_error_lines(e));
            }
            let evalue = errors
                .iter()
                .map(|e| e.message())
                .collect::<Vec<_>>()
                .join("\n");
            ErrorOutput {
                ename: "CompilationError".into(),
                evalue,
                traceback,
            }
        }
        evcxr::Error::SubprocessTerminated(message) => ErrorOutput {
            ename: "ChildRestarted".into(),
            evalue: message.clone(),
            traceback: vec![message.clone()],
        },
        other => {
            let text = other.to_string();
            ErrorOutput {
                ename: "Error".into(),
                evalue: text.clone(),
                traceback: text.lines().map(str::to_string).collect(),
            }
        }
    }
}

fn compilation_error_lines(error: &evcxr::CompilationError) -> Vec<String> {
    let mut lines = Vec::new();
    let code = error.code().map(|c| format!("[{c}]")).unwrap_or_default();
    lines.push(format!(
        "\x1b[31m{}{}\x1b[0m: {}",
        error.level(),
        code,
        error.message()
    ));
    for spanned in error.spanned_messages() {
        lines.extend(spanned.lines.iter().cloned());
        if let Some(span) = &spanned.span {
            let pad = " ".repeat(span.start_column.saturating_sub(1));
            let carets = "^".repeat(span.end_column.saturating_sub(span.start_column).max(1));
            lines.push(format!("{pad}\x1b[31m{carets}\x1b[0m {}", spanned.label));
        } else if !spanned.label.is_empty() {
            lines.push(spanned.label.clone());
        }
    }
    for help in error.help() {
        lines.push(format!("help: {help}"));
    }
    lines
}

/// The `error` message of a cell that panicked.
pub fn panic_error(message: &str) -> ErrorOutput {
    ErrorOutput {
        ename: "Panic".into(),
        evalue: message.to_string(),
        traceback: vec![format!("\x1b[31mpanicked\x1b[0m: {message}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_keeps_each_type() {
        let mut by_mime = HashMap::new();
        by_mime.insert("text/plain".to_string(), "3".to_string());
        by_mime.insert("text/html".to_string(), "<b>3</b>".to_string());
        let media = media(&by_mime);
        let value = serde_json::to_value(&media).unwrap_or_default();
        assert_eq!(value["text/plain"], "3");
        assert_eq!(value["text/html"], "<b>3</b>");
        assert_eq!(plain_text(&media), "3");
    }
}
