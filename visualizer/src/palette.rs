//! Colours: one per series (curves) and one per device (graphs).

use crate::graph_view::GraphView;
use crate::layout::BoxKind;
use plotters::style::RGBColor;

/// Tableau's ten: distinct for most colour-blind readers, dark enough on white.
const SERIES: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn series_color(index: usize) -> RGBColor {
    SERIES[index % SERIES.len()]
}

/// A node's fill and border for one device: light fills keep black labels readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceColor {
    pub fill: RGBColor,
    pub stroke: RGBColor,
}

const DEVICE_FILLS: [(u8, u8, u8); 10] = [
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (219, 219, 141),
    (158, 218, 229),
    (253, 208, 162),
];

/// Nodes with no device constraint: plain white with a grey border.
pub(crate) const UNPLACED: DeviceColor = DeviceColor {
    fill: RGBColor(255, 255, 255),
    stroke: RGBColor(120, 120, 120),
};

/// Collapsed scopes whose nodes sit on several devices.
pub(crate) const MIXED: DeviceColor = DeviceColor {
    fill: RGBColor(224, 224, 224),
    stroke: RGBColor(100, 100, 100),
};

/// The colour of the `index`-th distinct device; past ten, hues go round the wheel by the
/// golden angle so neighbours still differ.
pub(crate) fn device_color(index: usize) -> DeviceColor {
    let fill = match DEVICE_FILLS.get(index) {
        Some(&(r, g, b)) => RGBColor(r, g, b),
        None => {
            let hue = (index as f64 * 137.508) % 360.0;
            hsl_to_rgb(hue, 0.55, 0.80)
        }
    };
    DeviceColor {
        fill,
        stroke: darker(fill),
    }
}

fn darker(c: RGBColor) -> RGBColor {
    let scale = |v: u8| (f64::from(v) * 0.55) as u8;
    RGBColor(scale(c.0), scale(c.1), scale(c.2))
}

fn hsl_to_rgb(hue: f64, saturation: f64, lightness: f64) -> RGBColor {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue / 60.0;
    let x = chroma * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = lightness - chroma / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// `#rrggbb`, as SVG attributes want it.
pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The devices of a graph, each with its colour, in sorted order so that colours do not
/// depend on which scopes are collapsed.
pub(crate) struct DeviceColors {
    devices: Vec<String>,
    has_unplaced: bool,
}

/// Legend label for nodes without a device constraint.
pub(crate) const UNPLACED_LABEL: &str = "(no device)";
/// Legend label for collapsed scopes spanning several devices.
pub(crate) const MIXED_LABEL: &str = "(several devices)";

impl DeviceColors {
    pub(crate) fn new(graph: &GraphView) -> DeviceColors {
        let mut devices: Vec<String> = graph
            .nodes
            .iter()
            .filter(|n| !n.device.is_empty())
            .map(|n| n.device.clone())
            .collect();
        devices.sort();
        devices.dedup();
        DeviceColors {
            devices,
            has_unplaced: graph.nodes.iter().any(|n| n.device.is_empty()),
        }
    }

    pub(crate) fn of_device(&self, device: &str) -> DeviceColor {
        match self.devices.binary_search_by(|d| d.as_str().cmp(device)) {
            Ok(index) => device_color(index),
            Err(_) => UNPLACED,
        }
    }

    /// A node's device colour; a collapsed scope's if all its nodes share one device.
    pub(crate) fn of_box(&self, graph: &GraphView, kind: &BoxKind) -> DeviceColor {
        match kind {
            BoxKind::Node(n) => self.of_device(&graph.nodes[*n].device),
            BoxKind::CollapsedScope { members, .. } => {
                let mut devices = members.iter().map(|&m| graph.nodes[m].device.as_str());
                let first = devices.next().unwrap_or("");
                if devices.all(|d| d == first) {
                    self.of_device(first)
                } else {
                    MIXED
                }
            }
        }
    }

    /// Legend entries: every device, then the unplaced and mixed kinds where present. None
    /// at all when no node has a device: a legend whose one entry is "(no device)" tells
    /// the reader nothing.
    pub(crate) fn legend(&self, any_mixed: bool) -> Vec<(String, DeviceColor)> {
        if self.devices.is_empty() {
            return Vec::new();
        }
        let mut entries: Vec<(String, DeviceColor)> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.clone(), device_color(i)))
            .collect();
        if self.has_unplaced {
            entries.push((UNPLACED_LABEL.to_string(), UNPLACED));
        }
        if any_mixed {
            entries.push((MIXED_LABEL.to_string(), MIXED));
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_colours_differ_past_the_fixed_palette() {
        let colours: Vec<_> = (0..20).map(|i| hex(device_color(i).fill)).collect();
        let mut unique = colours.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), colours.len());
    }
}
