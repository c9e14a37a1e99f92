//! Writing the Prometheus text exposition format (version 0.0.4) by hand, for the per-service
//! families kept in [`super::store`]: the same bytes the `prometheus` crate's encoder writes
//! (label names in alphabetical order, `le` last, `+Inf`/`-Inf`/`NaN`), without building a
//! protobuf message per series first.

use std::io::Write;

/// A fixed-bucket histogram: counts per bucket (not cumulative), the count and the sum.
#[derive(Clone, Debug)]
pub struct Histogram<const N: usize> {
    counts: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            counts: [0; N],
            count: 0,
            sum: 0.0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    pub fn observe(&mut self, bounds: &[f64; N], v: f64) {
        if let Some(i) = bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    /// The `_bucket`, `_sum` and `_count` lines of one series, `labels` already written.
    pub fn write(&self, out: &mut Vec<u8>, name: &str, bounds: &[f64; N], labels: &[u8]) {
        let mut cumulative = 0;
        for (b, c) in bounds.iter().zip(self.counts) {
            cumulative += c;
            series_start(out, name, "_bucket", labels);
            out.extend_from_slice(b",le=\"");
            float(out, *b);
            out.extend_from_slice(b"\"} ");
            uint(out, cumulative);
            out.push(b'\n');
        }
        series_start(out, name, "_bucket", labels);
        out.extend_from_slice(b",le=\"+Inf\"} ");
        uint(out, self.count);
        out.push(b'\n');
        series_start(out, name, "_sum", labels);
        out.extend_from_slice(b"} ");
        float(out, self.sum);
        out.push(b'\n');
        series_start(out, name, "_count", labels);
        out.extend_from_slice(b"} ");
        uint(out, self.count);
        out.push(b'\n');
    }
}

fn series_start(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    out.push(b'{');
    out.extend_from_slice(labels);
}

/// `name{labels} value\n`, `labels` already written as `a="x",b="y"`.
pub fn sample(out: &mut Vec<u8>, name: &str, labels: &[u8], value: Value) {
    series_start(out, name, "", labels);
    out.extend_from_slice(b"} ");
    match value {
        Value::Float(v) => float(out, v),
        Value::Uint(v) => uint(out, v),
    }
    out.push(b'\n');
}

#[derive(Clone, Copy)]
pub enum Value {
    Float(f64),
    Uint(u64),
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut Vec<u8>, name: &str, help: &str, kind: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    for c in help.bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

/// `name="value"`, the value escaped; `first` omits the leading comma.
pub fn label(out: &mut Vec<u8>, first: bool, name: &str, value: &str) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_into(out, value);
    out.push(b'"');
}

pub fn escape_into(out: &mut Vec<u8>, value: &str) {
    if !value.bytes().any(|c| matches!(c, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for c in value.bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
}

pub fn float(out: &mut Vec<u8>, v: f64) {
    if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Whole numbers (status codes, timestamps in seconds, counts) print as integers.
        if v < 0.0 {
            out.push(b'-');
        }
        uint(out, v.abs() as u64);
    } else {
        let _ = write!(out, "{v}");
    }
}

pub fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut out = Vec::new();
        float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_as_the_prometheus_crate_prints_them() {
        for v in [
            0.0,
            1.0,
            -3.0,
            0.005,
            2.5,
            1e-7,
            1_764_000_000.25,
            123_456_789.0,
            1e300,
            -0.5,
        ] {
            assert_eq!(f(v), format!("{v}"), "{v}");
        }
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(f64::NAN), "NaN");
        let mut out = Vec::new();
        uint(&mut out, 0);
        out.push(b' ');
        uint(&mut out, u64::MAX);
        assert_eq!(out, format!("0 {}", u64::MAX).as_bytes());
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        label(&mut out, true, "a", "x\"y\\z\nw");
        label(&mut out, false, "b", "plain");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"a="x\"y\\z\nw",b="plain""#
        );
    }

    #[test]
    fn histogram_lines_are_cumulative() {
        let bounds = [0.1, 1.0];
        let mut h = Histogram::<2>::default();
        for v in [0.05, 0.5, 0.7, 3.0] {
            h.observe(&bounds, v);
        }
        let mut out = Vec::new();
        h.write(&mut out, "x_seconds", &bounds, b"s=\"1\"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "x_seconds_bucket{s=\"1\",le=\"0.1\"} 1\n\
             x_seconds_bucket{s=\"1\",le=\"1\"} 3\n\
             x_seconds_bucket{s=\"1\",le=\"+Inf\"} 4\n\
             x_seconds_sum{s=\"1\"} 4.25\n\
             x_seconds_count{s=\"1\"} 4\n"
        );
    }
}
