//! Step timelines: every lane, span and arrow is drawn (and parses back as XML), overlapping
//! kernels get rows of their own, bad input is named, and the text summary fits its width.

mod common;

use common::drawing::{number, parse, text_of, tooltip, with_class};
use sluice_visualizer::error::VisualizerError;
use sluice_visualizer::timeline::{
    render_timeline_svg, render_timeline_text, ArrowView, LaneView, SpanView, TimelineOptions,
    TimelineView,
};

fn lane(group: &str, name: &str) -> LaneView {
    LaneView {
        group: group.into(),
        name: name.into(),
    }
}

fn span(lane: usize, start_us: f64, dur_us: f64, label: &str, category: &str) -> SpanView {
    SpanView {
        lane,
        start_us,
        dur_us,
        label: label.into(),
        category: category.into(),
        detail: String::new(),
    }
}

fn arrow(from_lane: usize, from_us: f64, to_lane: usize, to_us: f64, label: &str) -> ArrowView {
    ArrowView {
        from_lane,
        from_us,
        to_lane,
        to_us,
        label: label.into(),
    }
}

/// Two workers and a parameter server; worker 1's GPU runs two kernels at once.
fn step() -> TimelineView {
    TimelineView {
        title: "step 7".into(),
        lanes: vec![
            lane("/job:worker/task:0", "CPU:0"),
            lane("/job:ps/task:0", "CPU:0"),
            lane("/job:worker/task:1", "GPU:0"),
            lane("/job:worker/task:0", "GPU:0"),
        ],
        spans: vec![
            span(0, 1_000.0, 300.0, "input/Cast", "math"),
            span(3, 1_400.0, 2_500.0, "layer1/MatMul", "linalg"),
            span(1, 4_000.0, 150.0, "Adam/update_W", "training"),
            span(2, 5_000.0, 800.0, "layer2/MatMul", "linalg"),
            span(2, 5_200.0, 400.0, "layer2/Relu", "math"),
            span(0, 4_000.0, 0.01, "tiny", "math"),
            span(3, 3_950.0, 40.0, "send_h1", "transfer"),
        ],
        arrows: vec![
            arrow(3, 3_990.0, 2, 4_900.0, "layer1/MatMul:0"),
            arrow(3, 3_990.0, 1, 4_000.0, "grad_W"),
            arrow(3, 3_995.0, 1, 4_010.0, "grad_b"),
        ],
    }
}

fn svg_of(view: &TimelineView) -> String {
    render_timeline_svg(view, &TimelineOptions::default()).unwrap()
}

#[test]
fn every_lane_span_and_arrow_is_drawn() {
    let view = step();
    let svg = svg_of(&view);
    let doc = parse(&svg);
    let root = doc.root_element();
    assert_eq!(root.attribute("class"), Some("sluice-timeline"));
    assert_eq!(number(&root, "width"), 960.0);
    assert_eq!(with_class(&doc, "lane").len(), 4);
    assert_eq!(with_class(&doc, "span").len(), view.spans.len());
    assert_eq!(with_class(&doc, "arrow").len(), view.arrows.len());
    let lanes: Vec<String> = with_class(&doc, "lane").iter().map(text_of).collect();
    assert!(
        lanes.contains(&"worker/task:1 · GPU:0".to_string()),
        "{lanes:?}"
    );
    // Lanes of one group are drawn together: worker/task:0's two lanes come first.
    assert!(lanes[0].starts_with("worker/task:0") && lanes[1].starts_with("worker/task:0"));
    assert_eq!(with_class(&doc, "group-separator").len(), 2);
    let legend: Vec<String> = with_class(&doc, "legend-label")
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(legend, ["linalg", "math", "training", "transfer"]);
}

#[test]
fn tooltips_name_the_nodes() {
    let view = step();
    let svg = svg_of(&view);
    let doc = parse(&svg);
    let tips: Vec<String> = with_class(&doc, "span").iter().map(tooltip).collect();
    for span in &view.spans {
        let tip = tips
            .iter()
            .find(|t| t.starts_with(&span.label))
            .unwrap_or_else(|| panic!("no tooltip for {}: {tips:?}", span.label));
        assert!(tip.contains(&span.category), "{tip}");
    }
    let matmul = tips
        .iter()
        .find(|t| t.starts_with("layer1/MatMul"))
        .unwrap();
    assert!(matmul.contains("duration: 2.5 ms"), "{matmul}");
    let arrows: Vec<String> = with_class(&doc, "arrow").iter().map(tooltip).collect();
    assert!(arrows.iter().any(|t| t.starts_with("grad_W")), "{arrows:?}");
}

#[test]
fn spans_of_one_category_share_a_colour_and_short_ones_stay_visible() {
    let svg = svg_of(&step());
    let doc = parse(&svg);
    let spans = with_class(&doc, "span");
    let fill_of = |label: &str| {
        spans
            .iter()
            .find(|s| tooltip(s).starts_with(label))
            .and_then(|s| s.attribute("fill"))
            .unwrap()
            .to_string()
    };
    assert_eq!(fill_of("layer1/MatMul"), fill_of("layer2/MatMul"));
    assert_ne!(fill_of("layer1/MatMul"), fill_of("input/Cast"));
    assert!(spans.iter().all(|s| number(s, "width") >= 1.0));
}

#[test]
fn overlapping_spans_on_one_lane_get_different_rows() {
    let svg = svg_of(&step());
    let doc = parse(&svg);
    let spans = with_class(&doc, "span");
    let y_of = |label: &str| {
        let span = spans
            .iter()
            .find(|s| tooltip(s).starts_with(label))
            .unwrap();
        (number(span, "y"), number(span, "height"))
    };
    let (matmul, height) = y_of("layer2/MatMul");
    let (relu, _) = y_of("layer2/Relu");
    assert!((matmul - relu).abs() >= height, "{matmul} vs {relu}");
    // Spans that follow each other on a lane stay on one row.
    assert_eq!(y_of("input/Cast").0, y_of("tiny").0);
}

#[test]
fn validate_names_the_bad_span_or_arrow() {
    let mut view = step();
    view.spans[4].lane = 9;
    let error = view.validate().unwrap_err();
    assert!(matches!(error, VisualizerError::InvalidTimeline { .. }));
    let message = error.to_string();
    assert!(
        message.contains("layer2/Relu") && message.contains("lane 9"),
        "{message}"
    );
    assert!(render_timeline_svg(&view, &TimelineOptions::default()).is_err());
    assert!(render_timeline_text(&view, 80).is_err());

    let mut view = step();
    view.spans[1].dur_us = -1.0;
    let message = view.validate().unwrap_err().to_string();
    assert!(
        message.contains("layer1/MatMul") && message.contains("duration"),
        "{message}"
    );

    let mut view = step();
    view.spans[0].start_us = f64::NAN;
    let message = view.validate().unwrap_err().to_string();
    assert!(
        message.contains("input/Cast") && message.contains("start"),
        "{message}"
    );

    let mut view = step();
    view.arrows[1].to_us = f64::INFINITY;
    let message = view.validate().unwrap_err().to_string();
    assert!(
        message.contains("grad_W") && message.contains("arrival"),
        "{message}"
    );
    assert!(step().validate().is_ok());
}

#[test]
fn bad_options_are_errors() {
    let view = step();
    for options in [
        TimelineOptions {
            width: 10,
            ..TimelineOptions::default()
        },
        TimelineOptions {
            max_spans: 0,
            ..TimelineOptions::default()
        },
    ] {
        assert!(matches!(
            render_timeline_svg(&view, &options),
            Err(VisualizerError::InvalidOption(_))
        ));
    }
    assert!(render_timeline_text(&view, 3).is_err());
}

#[test]
fn an_empty_view_says_nothing_ran() {
    for view in [
        TimelineView::default(),
        TimelineView {
            title: "step 0".into(),
            lanes: vec![lane("/job:worker/task:0", "CPU:0")],
            ..TimelineView::default()
        },
    ] {
        let svg = svg_of(&view);
        let doc = parse(&svg);
        assert_eq!(
            doc.root_element().attribute("class"),
            Some("sluice-timeline")
        );
        assert!(with_class(&doc, "span").is_empty());
        assert!(svg.contains("no kernels ran"), "{svg}");
        let text = render_timeline_text(&view, 40).unwrap();
        assert!(text.contains("no kernels ran"), "{text}");
    }
}

#[test]
fn markup_in_labels_is_escaped() {
    let mut view = step();
    view.title = "<step> & \"more\"".into();
    view.lanes[0].name = "CPU<0>".into();
    view.spans[0].label = "a<b>&'c'".into();
    view.spans[0].detail = "</title><script>".into();
    view.spans[0].category = "x&y".into();
    view.arrows[0].label = "t<1>".into();
    let svg = svg_of(&view);
    let doc = parse(&svg);
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    let tips: Vec<String> = with_class(&doc, "span").iter().map(tooltip).collect();
    assert!(tips
        .iter()
        .any(|t| t.starts_with("a<b>&'c'") && t.contains("</title><script>")));
    let lanes: Vec<String> = with_class(&doc, "lane").iter().map(text_of).collect();
    assert!(lanes.iter().any(|l| l.ends_with("CPU<0>")), "{lanes:?}");
}

#[test]
fn past_max_spans_the_shortest_are_left_out_and_counted() {
    let view = step();
    let options = TimelineOptions {
        max_spans: 3,
        ..TimelineOptions::default()
    };
    let svg = render_timeline_svg(&view, &options).unwrap();
    let doc = parse(&svg);
    let tips: Vec<String> = with_class(&doc, "span").iter().map(tooltip).collect();
    assert_eq!(tips.len(), 3);
    for longest in ["layer1/MatMul", "layer2/MatMul", "layer2/Relu"] {
        assert!(tips.iter().any(|t| t.starts_with(longest)), "{tips:?}");
    }
    let note = with_class(&doc, "omitted");
    assert_eq!(note.len(), 1);
    assert!(text_of(&note[0]).starts_with("4 shorter spans"));
}

#[test]
fn many_spans_draw_within_the_picture() {
    let lanes = (0..8)
        .map(|i| {
            lane(
                &format!("/job:worker/task:{}", i / 2),
                &format!("GPU:{}", i % 2),
            )
        })
        .collect();
    let spans = (0..4000)
        .map(|i| {
            let start = (i * 37 % 100_000) as f64;
            span(
                i % 8,
                start,
                (i % 50) as f64 * 3.0,
                &format!("op{i}"),
                "math",
            )
        })
        .collect();
    let view = TimelineView {
        lanes,
        spans,
        ..TimelineView::default()
    };
    let svg = svg_of(&view);
    let doc = parse(&svg);
    let width = number(&doc.root_element(), "width");
    let height = number(&doc.root_element(), "height");
    for rect in with_class(&doc, "span") {
        assert!(number(&rect, "x") >= 0.0 && number(&rect, "x") + number(&rect, "width") <= width);
        assert!(number(&rect, "y") + number(&rect, "height") <= height);
    }
    let ticks: Vec<String> = with_class(&doc, "tick-label").iter().map(text_of).collect();
    assert!(
        ticks.len() >= 3 && ticks.iter().all(|t| t.ends_with(" ms")),
        "{ticks:?}"
    );
}

#[test]
fn text_mentions_every_lane_and_the_longest_span() {
    let view = step();
    let text = render_timeline_text(&view, 80).unwrap();
    for (i, lane) in view.lanes.iter().enumerate() {
        let title = format!("{} · {}", lane.group.trim_start_matches("/job:"), lane.name);
        assert!(text.contains(&title), "lane {i} missing:\n{text}");
    }
    assert!(
        text.contains("layer1/MatMul") && text.contains("2.5 ms"),
        "{text}"
    );
    assert!(
        text.contains("2 transfers, worker/task:0 · GPU:0 → ps/task:0 · CPU:0"),
        "{text}"
    );
    assert!(text.contains("1 transfer, "), "{text}");
    // worker/task:1's GPU ran two kernels at once: busy 800 µs, not 1.2 ms.
    assert!(
        text.contains("worker/task:1 · GPU:0  busy 800 µs of"),
        "{text}"
    );
    for width in [20, 33, 50] {
        let narrow = render_timeline_text(&view, width).unwrap();
        for line in narrow.lines() {
            assert!(line.chars().count() <= width, "{line:?} wider than {width}");
        }
    }
}
