//! The timeline as text for terminals: how busy each lane was, its longest kernels, and
//! the transfers between lanes.

use super::{busy_us, cut_middle, extent, lane_order, SpanView, TimelineView};
use crate::error::{Result, VisualizerError};
use crate::number_format::duration_us;
use std::collections::HashMap;

const MIN_WIDTH: usize = 20;
const MAX_WIDTH: usize = 10_000;
/// Longest spans listed under each lane.
const TOP_SPANS: usize = 5;

/// Summarises `view` in lines of at most `width` characters, joined by newlines (none after
/// the last): per lane (`group · name  busy X of Y (Z%)`) its five longest spans, then one
/// line per pair of lanes that tensors crossed between, busiest pair first.
pub fn render_timeline_text(view: &TimelineView, width: usize) -> Result<String> {
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
        return Err(VisualizerError::InvalidOption(format!(
            "text width {width} is outside {MIN_WIDTH}..={MAX_WIDTH} characters"
        )));
    }
    view.validate()?;
    let mut lines = Vec::new();
    if !view.title.is_empty() {
        lines.push(fit(&view.title, width));
    }
    if view.spans.is_empty() {
        lines.push("no kernels ran".to_string());
        return Ok(lines.join("\n"));
    }
    let total = extent(view)?.length;
    let mut by_lane: Vec<Vec<&SpanView>> = vec![Vec::new(); view.lanes.len()];
    for span in &view.spans {
        if let Some(spans) = by_lane.get_mut(span.lane) {
            spans.push(span);
        }
    }
    for lane in lane_order(&view.lanes) {
        let (Some(info), Some(spans)) = (view.lanes.get(lane), by_lane.get_mut(lane)) else {
            continue;
        };
        let busy = busy_us(spans);
        let percent = if total > 0.0 {
            busy / total * 100.0
        } else {
            0.0
        };
        let stats = format!(
            "busy {} of {} ({percent:.0}%)",
            duration_us(busy),
            duration_us(total)
        );
        lines.push(name_then(&info.title(lane), &stats, width));
        spans.sort_by(|a, b| {
            b.dur_us
                .total_cmp(&a.dur_us)
                .then(a.start_us.total_cmp(&b.start_us))
        });
        for span in spans.iter().take(TOP_SPANS) {
            let line = format!("    {:>9}  {}", duration_us(span.dur_us), span.label);
            lines.push(fit(&line, width));
        }
    }
    for (from, to, count) in transfer_counts(view) {
        let title = |lane: usize| view.lanes.get(lane).map(|l| l.title(lane));
        let (from, to) = (
            title(from).unwrap_or_default(),
            title(to).unwrap_or_default(),
        );
        let plural = if count == 1 { "" } else { "s" };
        let prefix = format!("{count} transfer{plural}, ");
        lines.push(between(&prefix, &from, &to, width));
    }
    Ok(lines.join("\n"))
}

/// Arrows counted by (from lane, to lane), most first, then in order of first appearance.
fn transfer_counts(view: &TimelineView) -> Vec<(usize, usize, usize)> {
    let mut counts: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    for (i, arrow) in view.arrows.iter().enumerate() {
        counts
            .entry((arrow.from_lane, arrow.to_lane))
            .or_insert((0, i))
            .0 += 1;
    }
    let mut pairs: Vec<((usize, usize), (usize, usize))> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    pairs
        .into_iter()
        .map(|((from, to), (count, _))| (from, to, count))
        .collect()
}

/// `text`, cut with `…` to at most `width` characters.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `name  stats`: the name is cut rather than the numbers, unless even they do not fit.
fn name_then(name: &str, stats: &str, width: usize) -> String {
    let whole = format!("{name}  {stats}");
    let stats_len = stats.chars().count() + 2;
    if whole.chars().count() <= width || width < stats_len + 4 {
        return fit(&whole, width);
    }
    format!("{}  {stats}", fit_middle(name, width - stats_len))
}

/// `prefix from → to`, both names cut alike when the line is too long.
fn between(prefix: &str, from: &str, to: &str, width: usize) -> String {
    let whole = format!("{prefix}{from} → {to}");
    let room = width.saturating_sub(prefix.chars().count() + 3);
    if whole.chars().count() <= width || room < 4 {
        return fit(&whole, width);
    }
    let to_room = (room / 2).max(room.saturating_sub(from.chars().count()));
    let from_room = room - to_room.min(to.chars().count());
    format!(
        "{prefix}{} → {}",
        fit_middle(from, from_room),
        fit_middle(to, to_room)
    )
}

/// A lane title cut in the middle to at most `width` characters.
fn fit_middle(title: &str, width: usize) -> String {
    cut_middle(title, |t| t.chars().count() <= width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_to_width() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        let line = name_then("a very long lane name", "busy 1 ms of 2 ms (50%)", 35);
        assert_eq!(line.chars().count(), 35);
        assert!(line.ends_with("(50%)"));
        let line = between(
            "3 transfers, ",
            "worker/task:0 · CPU:0",
            "ps/task:1 · CPU:0",
            40,
        );
        assert!(line.chars().count() <= 40, "{line}");
        assert!(line.contains(" → "));
    }
}
