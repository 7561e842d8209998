//! What a cell's outputs look like on the wire: rich output forms as Jupyter media, failed
//! cells as `error` content.

use jupyter_protocol::{ErrorOutput, Media, MediaType};
use serde_json::{Map, Value};
use sluice_frontend::cell::Failure;

/// Media from (MIME type, content) forms: JSON types parsed, others as text; a plain-text
/// form added when there is none, for clients that show nothing else.
pub fn media(forms: &[(String, String)]) -> Media {
    let mut map = Map::new();
    for (mime, content) in forms {
        let value = if mime.ends_with("json") {
            serde_json::from_str(content).unwrap_or_else(|_| Value::String(content.clone()))
        } else {
            Value::String(content.clone())
        };
        map.insert(mime.clone(), value);
    }
    if !map.contains_key("text/plain") {
        let kinds: Vec<&str> = forms.iter().map(|(m, _)| m.as_str()).collect();
        map.insert(
            "text/plain".into(),
            Value::String(format!("<{}>", kinds.join(", "))),
        );
    }
    serde_json::from_value::<Media>(Value::Object(map)).unwrap_or_else(|_| {
        let plain = forms
            .iter()
            .find(|(m, _)| m == "text/plain")
            .map(|(_, c)| c.clone())
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

/// A failed cell as Jupyter's `error` content.
pub fn error_output(failure: &Failure) -> ErrorOutput {
    ErrorOutput {
        ename: failure.name.clone(),
        evalue: failure.message.clone(),
        traceback: failure.traceback.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_keeps_each_type() {
        let forms = vec![
            ("text/plain".to_string(), "3".to_string()),
            ("text/html".to_string(), "<b>3</b>".to_string()),
        ];
        let media = media(&forms);
        let value = serde_json::to_value(&media).unwrap_or_default();
        assert_eq!(value["text/plain"], "3");
        assert_eq!(value["text/html"], "<b>3</b>");
        assert_eq!(plain_text(&media), "3");
    }

    #[test]
    fn pictures_get_a_plain_form() {
        let media = media(&[("image/png".to_string(), "iVBOR".to_string())]);
        assert_eq!(plain_text(&media), "<image/png>");
    }
}
