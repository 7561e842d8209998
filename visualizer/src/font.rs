//! The embedded font: registered with plotters for curve text, and measured for graph
//! node boxes, so that sizes are the same on every machine (no system font lookup).

use crate::error::{Result, VisualizerError};
use ab_glyph::{Font, FontRef};
use std::sync::OnceLock;

/// A 30 KB Latin-1 subset of DejaVu Sans; licence in `fonts/LICENSE-DejaVu.txt`.
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// The family name our SVG asks for; browsers without DejaVu fall back to sans-serif.
pub(crate) const SVG_FONT_FAMILY: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

/// The family under which plotters finds the embedded font.
pub(crate) const PLOTTERS_FAMILY: &str = "sans-serif";

fn parsed_font() -> Result<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or_else(|| VisualizerError::Font("embedded font does not parse".into()))
}

/// Registers the embedded font with plotters once; every curve renderer calls this first.
pub(crate) fn ensure_registered() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            PLOTTERS_FAMILY,
            plotters::style::FontStyle::Normal,
            FONT_BYTES,
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(VisualizerError::Font(
            "plotters rejected the embedded font".into(),
        ))
    }
}

/// Measures text in the embedded font, with an advance table for ASCII so that laying out
/// a thousand labels costs next to nothing.
pub(crate) struct TextMeasure {
    ascii_advance: [f32; 128],
    other_advance: f32,
}

impl TextMeasure {
    /// Advances in em units (multiply by the font size in pixels).
    pub(crate) fn new() -> Result<TextMeasure> {
        let font = parsed_font()?;
        // Browsers size text by the em, so measure in ems (ab_glyph's own scale is by
        // ascent - descent, which would come out 14% narrow).
        let units_per_em = font.units_per_em().unwrap_or(2048.0);
        let em_advance = |c: char| font.h_advance_unscaled(font.glyph_id(c)) / units_per_em;
        let mut ascii_advance = [0.0; 128];
        for (code, advance) in ascii_advance.iter_mut().enumerate() {
            *advance = em_advance(char::from(code as u8));
        }
        // Non-ASCII glyphs (or ones the subset lacks) are guessed as a wide letter.
        let other_advance = em_advance('M');
        Ok(TextMeasure {
            ascii_advance,
            other_advance,
        })
    }

    /// Width of `text` in pixels at `size` pixels per em.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let ems: f32 = text
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    self.ascii_advance[c as usize]
                } else {
                    self.other_advance
                }
            })
            .sum();
        ems * size
    }
}
