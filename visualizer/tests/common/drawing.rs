//! Reading drawings back in tests: SVGs parsed as XML, PNGs decoded to pixels, and the
//! checks that every drawing must pass.

use roxmltree::{Document, Node};
use sluice_visualizer::layout::Rect;

pub fn parse(svg: &str) -> Document<'_> {
    Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not XML: {e}\n{svg}"))
}

pub fn has_class(node: &Node, class: &str) -> bool {
    node.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|c| c == class))
}

pub fn with_class<'a>(doc: &'a Document, class: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants().filter(|n| has_class(n, class)).collect()
}

/// All the text inside `node`, tspans joined, trimmed.
pub fn text_of(node: &Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<String>()
        .trim()
        .to_string()
}

pub fn child_with_class<'a>(node: &Node<'a, 'a>, class: &str) -> Option<Node<'a, 'a>> {
    node.descendants().find(|n| has_class(n, class))
}

/// A numeric attribute.
pub fn number(node: &Node, name: &str) -> f64 {
    node.attribute(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("<{}> without {name}", node.tag_name().name()))
}

pub fn rect_of(node: &Node) -> Rect {
    Rect {
        x: number(node, "x"),
        y: number(node, "y"),
        width: number(node, "width"),
        height: number(node, "height"),
    }
}

pub fn tooltip(node: &Node) -> String {
    node.children()
        .find(|c| c.has_tag_name("title"))
        .map(|t| text_of(&t))
        .unwrap_or_default()
}

/// The drawn lines of a text element: its tspans, or the element itself when it has none.
pub fn text_lines<'a>(text: &Node<'a, 'a>) -> Vec<Node<'a, 'a>> {
    let spans: Vec<Node> = text
        .children()
        .filter(|c| c.has_tag_name("tspan"))
        .collect();
    if spans.is_empty() {
        vec![*text]
    } else {
        spans
    }
}

pub fn assert_no_overlaps(rects: &[Rect]) {
    // Sort by x so that only boxes whose x ranges meet are compared.
    let mut sorted: Vec<&Rect> = rects.iter().collect();
    sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
    for (i, a) in sorted.iter().enumerate() {
        for b in &sorted[i + 1..] {
            if b.x >= a.right() {
                break;
            }
            assert!(!a.intersects(b), "node boxes overlap: {a:?} and {b:?}");
        }
    }
}

/// A decoded PNG: width, height and RGB bytes, row by row.
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Pixels {
    pub fn decode(bytes: &[u8]) -> Pixels {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size().expect("a PNG size")];
        let info = reader.next_frame(&mut rgb).expect("PNG pixels");
        assert_eq!(info.color_type, png::ColorType::Rgb, "graph PNGs are RGB");
        rgb.truncate(info.buffer_size());
        Pixels {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    /// Pixels dark enough to be text (labels are near black; edges and borders are grey).
    pub fn dark_pixels_in(&self, area: Rect) -> usize {
        let clamp = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
        let (x0, x1) = (clamp(area.x, self.width), clamp(area.right(), self.width));
        let (y0, y1) = (
            clamp(area.y, self.height),
            clamp(area.bottom(), self.height),
        );
        let mut dark = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let at = (y as usize * self.width as usize + x as usize) * 3;
                if self.rgb[at..at + 3].iter().all(|&c| c < 90) {
                    dark += 1;
                }
            }
        }
        dark
    }
}
