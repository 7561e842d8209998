//! Loss curves: SVG parsed as XML, PNG decoded, errors for bad input.

use roxmltree::Document;
use sluice_visualizer::curve::{render_curve_png, render_curve_svg, save_curve, CurveOptions};
use sluice_visualizer::error::VisualizerError;
use sluice_visualizer::series::Series;

fn decaying(name: &str, points: usize, every: usize, floor: f64) -> Series {
    Series::from_pairs(
        name,
        (0..points).step_by(every).map(|i| {
            (
                i as f64,
                floor + 2.0 * (-(i as f64) / points as f64 * 4.0).exp(),
            )
        }),
    )
}

fn texts(svg: &str) -> Vec<String> {
    let doc = Document::parse(svg).expect("SVG is XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn svg_has_title_axis_labels_and_a_legend_entry_per_series() {
    let series = [
        decaying("train", 2000, 1, 0.2),
        decaying("test", 2000, 100, 0.3),
    ];
    let options = CurveOptions {
        title: Some("MNIST softmax".into()),
        x_label: "step".into(),
        y_label: "cross-entropy".into(),
        smoothing: Some(0.8),
        ..CurveOptions::default()
    };
    let svg = render_curve_svg(&series, &options).unwrap();
    let texts = texts(&svg);
    for expected in ["MNIST softmax", "step", "cross-entropy", "train", "test"] {
        assert!(
            texts.iter().any(|t| t == expected),
            "no text {expected:?} in {texts:?}"
        );
    }
    // Tick labels are compact numbers.
    assert!(texts.iter().any(|t| t == "1000"), "{texts:?}");
}

#[test]
fn long_curves_are_decimated_to_the_pixel_width() {
    let series = [decaying("train", 100_000, 1, 0.1)];
    let options = CurveOptions::default();
    let svg = render_curve_svg(&series, &options).unwrap();
    let doc = Document::parse(&svg).unwrap();
    let longest = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter_map(|n| n.attribute("points"))
        .map(|p| p.split_whitespace().count())
        .max()
        .unwrap();
    assert!(
        longest <= 4 * options.width as usize,
        "{longest} points drawn"
    );
    assert!(svg.len() < 200_000, "{} bytes", svg.len());
}

#[test]
fn log_scale_drops_non_positive_values_and_labels_decades() {
    let mut series = decaying("loss", 1000, 1, 0.01);
    series.push(1000.0, 0.0);
    series.push(1001.0, -1.0);
    series.push(1002.0, f64::NAN);
    let options = CurveOptions {
        log_y: true,
        ..CurveOptions::default()
    };
    let texts = texts(&render_curve_svg(&[series], &options).unwrap());
    assert!(texts.iter().any(|t| t == "1"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "0.1"), "{texts:?}");

    let negative = Series::from_pairs("neg", [(0.0, -1.0), (1.0, -2.0)]);
    assert!(matches!(
        render_curve_svg(&[negative], &options),
        Err(VisualizerError::NoData(_))
    ));
}

#[test]
fn png_decodes_to_the_requested_size() {
    let series = [
        decaying("train", 5000, 1, 0.2),
        decaying("test", 5000, 250, 0.25),
    ];
    for (width, height) in [(640, 360), (800, 450), (1024, 300)] {
        let options = CurveOptions {
            width,
            height,
            title: Some("loss".into()),
            ..CurveOptions::default()
        };
        let bytes = render_curve_png(&series, &options).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((frame.width, frame.height), (width, height));
        // The first series' blue is on the picture.
        let blue = pixels[..frame.buffer_size()]
            .chunks(3)
            .filter(|p| p[0] < 60 && p[1] > 100 && p[1] < 140 && p[2] > 160)
            .count();
        assert!(blue > 100, "{blue} blue pixels");
    }
}

#[test]
fn bad_input_is_an_error() {
    let series = [decaying("train", 100, 1, 0.2)];
    let tiny = CurveOptions {
        width: 10,
        height: 10,
        ..CurveOptions::default()
    };
    assert!(matches!(
        render_curve_svg(&series, &tiny),
        Err(VisualizerError::InvalidSize { .. })
    ));
    let huge = CurveOptions {
        width: 100_000,
        ..CurveOptions::default()
    };
    assert!(matches!(
        render_curve_png(&series, &huge),
        Err(VisualizerError::InvalidSize { .. })
    ));
    let smoothing = CurveOptions {
        smoothing: Some(1.5),
        ..CurveOptions::default()
    };
    assert!(matches!(
        render_curve_svg(&series, &smoothing),
        Err(VisualizerError::InvalidOption(_))
    ));
    assert!(matches!(
        render_curve_svg(&[], &CurveOptions::default()),
        Err(VisualizerError::NoData(_))
    ));
    assert!(matches!(
        render_curve_svg(&[Series::new("empty")], &CurveOptions::default()),
        Err(VisualizerError::NoData(_))
    ));
}

#[test]
fn single_points_and_flat_lines_still_draw() {
    let one = Series::from_pairs("one", [(5.0, 0.5)]);
    let flat = Series::from_pairs("flat", (0..10).map(|i| (i as f64, 1.0)));
    Document::parse(&render_curve_svg(&[one], &CurveOptions::default()).unwrap()).unwrap();
    Document::parse(&render_curve_svg(&[flat], &CurveOptions::default()).unwrap()).unwrap();
}

#[test]
fn save_picks_the_format_from_the_extension() {
    let dir = std::env::temp_dir().join(format!("sluice-visualizer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let series = [decaying("train", 100, 1, 0.2)];
    save_curve(dir.join("c.png"), &series, &CurveOptions::default()).unwrap();
    save_curve(dir.join("c.svg"), &series, &CurveOptions::default()).unwrap();
    let png = std::fs::read(dir.join("c.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(dir.join("c.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    std::fs::remove_dir_all(&dir).unwrap();
}
