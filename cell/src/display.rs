//! Rich output: evcxr's blocks (`EVCXR_BEGIN_CONTENT mime` ... `EVCXR_END_CONTENT`), which
//! Sluice's frontends show as outputs of their own where a cell prints them, and as the
//! cell's result where they display its final value. Other evcxr integrations (plotters'
//! `evcxr_figure`, ...) print the same blocks.

use sluice::prelude::*;
use sluice::GraphSummary;
use std::io::Write;

/// How a value shows as a cell's result: evcxr calls `evcxr_display` on a cell's final
/// value when its type has one.
pub trait SluiceDisplay {
    fn evcxr_display(&self);
}

/// Shows `content` as the MIME type `mime` (text types as they are; binary ones such as
/// `image/png` base64-encoded, as Jupyter carries them).
pub fn display(mime: &str, content: &str) {
    display_all(&[(mime, content)]);
}

/// One output with several forms (a notebook picks the richest, a terminal the text). A
/// bundle line first tells the frontend that the blocks after it are one output.
fn display_all(forms: &[(&str, &str)]) {
    let mut block = String::new();
    if forms.len() > 1 {
        block.push_str(&crate::protocol::bundle_line(forms.len()));
        block.push('\n');
    }
    for (mime, content) in forms {
        block.push_str("EVCXR_BEGIN_CONTENT ");
        block.push_str(mime);
        block.push('\n');
        block.push_str(content.trim_end_matches('\n'));
        block.push_str("\nEVCXR_END_CONTENT\n");
    }
    // One write: another thread's line cannot land inside the block.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(block.as_bytes());
    let _ = out.flush();
}

/// Shows HTML under the cell.
pub fn display_html(html: &str) {
    display("text/html", html);
}

/// Shows an SVG picture under the cell.
pub fn display_svg(svg: &str) {
    display("image/svg+xml", svg);
}

/// Shows a PNG picture (the file's bytes) under the cell.
pub fn display_png(png: &[u8]) {
    use base64::Engine;
    display(
        "image/png",
        &base64::engine::general_purpose::STANDARD.encode(png),
    );
}

/// Shows a 2-D tensor (`[height, width]`) as a grayscale picture: floats in [0, 1] (as the
/// data sets hold images) or integers in 0..=255; small images are drawn larger. A tensor of
/// another rank is shown as text, with a note.
pub fn display_image(image: &Tensor) {
    match image_png(image) {
        Ok(png) => {
            use base64::Engine;
            let text = format!("<image {:?}>", image.shape());
            let png = base64::engine::general_purpose::STANDARD.encode(png);
            display_all(&[("text/plain", &text), ("image/png", &png)]);
        }
        Err(why) => display("text/plain", &format!("{image}\n({why})")),
    }
}

/// The tensor as PNG bytes (see [`display_image`]).
pub fn image_png(image: &Tensor) -> Result<Vec<u8>, String> {
    let &[height, width] = image.shape() else {
        return Err(format!(
            "an image is a [height, width] tensor; this one is {:?}",
            image.shape()
        ));
    };
    if height == 0 || width == 0 {
        return Err("an image needs at least one pixel".into());
    }
    // Small images (28 x 28 digits) at four times their size.
    let scale = (112 / height.max(width)).clamp(1, 8);
    let float = image.dtype().is_float();
    let level = |v: f64| {
        let v = if float { v * 255.0 } else { v };
        v.round().clamp(0.0, 255.0) as u8
    };
    let (w, h) = (width * scale, height * scale);
    let mut pixels = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            pixels.push(level(image.get_f64((y / scale) * width + x / scale)));
        }
    }
    let mut out = Vec::new();
    {
        let size = |n: usize| u32::try_from(n).map_err(|_| "the image is too large".to_string());
        let mut encoder = png::Encoder::new(&mut out, size(w)?, size(h)?);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Shows Markdown under the cell (notebooks render it; the terminal shows it as text).
pub fn display_markdown(markdown: &str) {
    display_all(&[("text/markdown", markdown), ("text/plain", markdown)]);
}

/// HTML as a value: a cell ending in `Html(...)` shows it.
#[derive(Debug, Clone)]
pub struct Html(pub String);
/// An SVG picture as a value.
#[derive(Debug, Clone)]
pub struct Svg(pub String);
/// A PNG picture (the file's bytes) as a value.
#[derive(Debug, Clone)]
pub struct Png(pub Vec<u8>);
/// Markdown as a value.
#[derive(Debug, Clone)]
pub struct Markdown(pub String);

impl SluiceDisplay for Html {
    fn evcxr_display(&self) {
        display_html(&self.0);
    }
}

impl SluiceDisplay for Svg {
    fn evcxr_display(&self) {
        display_svg(&self.0);
    }
}

impl SluiceDisplay for Png {
    fn evcxr_display(&self) {
        display_png(&self.0);
    }
}

impl SluiceDisplay for Markdown {
    fn evcxr_display(&self) {
        display_markdown(&self.0);
    }
}

impl SluiceDisplay for Tensor {
    fn evcxr_display(&self) {
        let text = self.to_string();
        let html = crate::tables::tensor_html(self);
        display_all(&[("text/plain", &text), ("text/html", &html)]);
    }
}

impl SluiceDisplay for GraphSummary {
    fn evcxr_display(&self) {
        let text = self.to_string();
        let html = crate::tables::summary_html(self);
        display_all(&[("text/plain", &text), ("text/html", &html)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_become_larger_grayscale_pngs() {
        let digit =
            Tensor::new(&[28, 28], vec![0.5f32; 784]).unwrap_or_else(|_| Tensor::scalar(0.0f32));
        let png = image_png(&digit).unwrap_or_default();
        assert_eq!(&png[1..4], b"PNG");
        let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        assert_eq!(width, 112);
        assert!(image_png(&Tensor::scalar(1.0f32)).is_err());
    }
}
