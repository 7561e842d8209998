//! Compact number labels for axes, shared by the plotters charts and the text charts.

/// At most about seven characters: `0.693`, `12000`, `1.5e-5`, `3.2e7`.
pub(crate) fn compact(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value.is_nan() {
            "NaN".into()
        } else if value.is_infinite() {
            if value > 0.0 { "inf" } else { "-inf" }.into()
        } else {
            "0".into()
        };
    }
    let magnitude = value.abs();
    if !(1e-3..1e6).contains(&magnitude) {
        let text = format!("{value:.1e}");
        return text.replace(".0e", "e");
    }
    // Four significant digits, trailing zeros trimmed.
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A time given in microseconds, in the unit that suits it: `850 µs`, `1.25 ms`, `3.5 s`.
pub(crate) fn duration_us(us: f64) -> String {
    let magnitude = us.abs();
    if magnitude < 1e3 {
        format!("{} µs", compact(us))
    } else if magnitude < 1e6 {
        format!("{} ms", compact(us / 1e3))
    } else {
        format!("{} s", compact(us / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::{compact, duration_us};

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration_us(0.0), "0 µs");
        assert_eq!(duration_us(850.0), "850 µs");
        assert_eq!(duration_us(1250.0), "1.25 ms");
        assert_eq!(duration_us(3.5e6), "3.5 s");
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.5432), "0.5432");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(12000.0), "12000");
        assert_eq!(compact(1.5e-5), "1.5e-5");
        assert_eq!(compact(3.0e7), "3e7");
        assert_eq!(compact(-0.25), "-0.25");
    }
}
