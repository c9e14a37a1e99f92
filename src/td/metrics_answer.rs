//! A service metrics answer read through its [`MetricsMapping`]: the error rate, the latencies
//! (in seconds, by `stat`) and every other numeric field by dotted path.
//!
//! The endpoint comes from the source design (only `error_rate` is named), so where the fields
//! are is the mapping's business. Parsing is tolerant (numbers as strings accepted); a problem is
//! a [`ParseError`], never a panic. Knows nothing of Prometheus or of units of the error rate.

use serde_json::{Map, Value};

use super::{json, number, ParseError};
use crate::config::{MetricsMapping, MetricsRoot};

/// Fields kept from one metrics response at most: a guard against an unbounded `field` label.
pub const MAX_FIELDS: usize = 200;

/// Levels below the root that are flattened into fields.
const MAX_DEPTH: usize = 8;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceMetrics {
    /// The error rate as sent (the unit is the config's business).
    pub error_rate: Option<f64>,
    /// Every other numeric field by dotted path below the root, sorted.
    pub fields: Vec<(String, f64)>,
    /// The mapped latency fields in seconds, by `stat` label (not repeated in `fields`: one series
    /// per value, docs/metrics.md "Series budget").
    pub latencies: Vec<(String, f64)>,
    /// Fields dropped by [`MAX_FIELDS`].
    pub dropped: usize,
}

pub fn parse_metrics(body: &[u8], mapping: &MetricsMapping) -> Result<ServiceMetrics, ParseError> {
    let v = json(body)?;
    let top = v
        .as_object()
        .ok_or_else(|| ParseError("the body is JSON but not an object".into()))?;
    let obj = match &mapping.root {
        MetricsRoot::Top => top,
        // Some APIs wrap the payload: {"data": {...}}.
        MetricsRoot::Auto if mapping.error_rate.lookup(&v).is_none() => {
            match top.get("data").or_else(|| top.get("metrics")) {
                Some(Value::Object(inner)) => inner,
                _ => top,
            }
        }
        MetricsRoot::Auto => top,
        MetricsRoot::At(p) => match p.lookup(&v) {
            Some(Value::Object(inner)) => inner,
            Some(_) => {
                return Err(ParseError(format!(
                    "\"{p}\" is not an object (metrics_mapping.root)"
                )))
            }
            None => {
                return Err(ParseError(format!(
                    "the response has no \"{p}\" object (metrics_mapping.root)"
                )))
            }
        },
    };
    let error_rate = mapping.error_rate.to_string();
    let latency: Vec<(&str, String)> = mapping
        .latency
        .iter()
        .map(|(stat, p)| (stat.as_str(), p.to_string()))
        .collect();
    let mut out = ServiceMetrics::default();
    let mut flat = Vec::new();
    flatten("", obj, &mut flat, 0);
    for (path, val) in flat {
        if path == error_rate {
            // `{"a.b": 1, "a": {"b": 2}}` names one path twice: keep the first.
            out.error_rate = out.error_rate.or(Some(val));
            continue;
        }
        let mut is_latency = false;
        for (stat, _) in latency.iter().filter(|(_, p)| *p == path) {
            is_latency = true;
            if !out.latencies.iter().any(|(s, _)| s == stat) {
                let secs = mapping.latency_unit.to_seconds(val);
                out.latencies.push((stat.to_string(), secs));
            }
        }
        if is_latency {
            continue;
        }
        if out.fields.len() < MAX_FIELDS {
            out.fields.push((path, val));
        } else {
            out.dropped += 1;
        }
    }
    out.fields.sort_by(|a, b| a.0.cmp(&b.0));
    out.fields.dedup_by(|later, first| later.0 == first.0);
    if out.error_rate.is_none() && out.fields.is_empty() && out.latencies.is_empty() {
        return Err(ParseError(
            "the metrics response has no numeric field".into(),
        ));
    }
    Ok(out)
}

fn flatten(prefix: &str, obj: &Map<String, Value>, out: &mut Vec<(String, f64)>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for (k, v) in obj {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&path, inner, out, depth + 1),
            other => {
                if let Some(n) = number(other) {
                    out.push((path, n));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ErrorRateUnit};

    const NESTED: &[u8] = br#"{"stats": {"errors": {"ratio": 0.02},
        "latency": {"p50_ms": 21.5, "p95_ms": 80, "p99_ms": 120}}, "requests": 1234}"#;

    /// The mapping `toml` (the body of `[defaults.metrics_mapping]`) gives, through the config.
    fn mapping(toml: &str) -> MetricsMapping {
        let text = format!("[td]\napi_key_env = \"K\"\n[defaults.metrics_mapping]\n{toml}\n");
        let env = std::collections::BTreeMap::from([("K".to_string(), "1/x".to_string())]);
        let cfg = Config::parse(&text, "t.toml", &env).unwrap_or_else(|e| panic!("{e}"));
        (*cfg.defaults.metrics_mapping).clone()
    }

    fn custom() -> MetricsMapping {
        mapping(
            "error_rate = \"stats.errors.ratio\"\n[defaults.metrics_mapping.latency]\n\
             p50 = \"stats.latency.p50_ms\"\np95 = \"stats.latency.p95_ms\"\np99 = \"stats.latency.p99_ms\"",
        )
    }

    #[test]
    fn a_nested_answer_through_a_mapping() {
        let m = parse_metrics(NESTED, &custom()).unwrap();
        assert_eq!(m.error_rate, Some(0.02));
        let mut lat = m.latencies.clone();
        lat.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            lat,
            vec![
                ("p50".to_string(), 0.0215),
                ("p95".to_string(), 0.08),
                ("p99".to_string(), 0.12)
            ]
        );
        // A mapped latency is a td_pz_service_latency_seconds series only, not a field too.
        assert_eq!(m.fields, vec![("requests".to_string(), 1234.0)]);
    }

    #[test]
    fn the_built_in_mapping_finds_nothing_nested() {
        let m = parse_metrics(NESTED, &MetricsMapping::default()).unwrap();
        assert_eq!(m.error_rate, None);
        assert!(m.latencies.is_empty());
        assert_eq!(m.fields.len(), 5);
        assert_eq!(m.fields[1], ("stats.errors.ratio".to_string(), 0.02));
    }

    #[test]
    fn the_built_in_mapping_unwraps_data_unless_rooted_at_the_top() {
        let body = br#"{"data": {"error_rate": 0.5, "p99_latency_ms": 250}, "n": 1}"#;
        let m = parse_metrics(body, &MetricsMapping::default()).unwrap();
        assert_eq!(m.error_rate, Some(0.5));
        assert_eq!(m.latencies, vec![("p99".to_string(), 0.25)]);
        let top = parse_metrics(body, &mapping("root = \"\"")).unwrap();
        assert_eq!(top.error_rate, None);
        assert_eq!(top.fields[0], ("data.error_rate".to_string(), 0.5));
    }

    #[test]
    fn a_root_units_and_a_percent() {
        let mm = mapping(
            "root = \"result.service\"\nerror_rate = \"err_pct\"\nerror_rate_unit = \"percent\"\n\
             latency_unit = \"us\"\n[defaults.metrics_mapping.latency]\nmedian = \"lat.median\"",
        );
        assert_eq!(mm.error_rate_unit, ErrorRateUnit::Percent);
        let body =
            br#"{"result": {"service": {"err_pct": "2.5", "lat": {"median": 1500}}}, "other": 7}"#;
        let m = parse_metrics(body, &mm).unwrap();
        assert_eq!(m.error_rate, Some(2.5));
        assert_eq!(mm.error_rate_unit.to_ratio(2.5), 0.025);
        assert_eq!(m.latencies, vec![("median".to_string(), 0.0015)]);
        assert!(m.fields.is_empty(), "{:?}", m.fields);
        let s = mapping("latency_unit = \"s\"\n[defaults.metrics_mapping.latency]\np95 = \"p95\"");
        let m = parse_metrics(br#"{"p95": 0.08}"#, &s).unwrap();
        assert_eq!(m.latencies, vec![("p95".to_string(), 0.08)]);
    }

    #[test]
    fn a_missing_root_is_a_parse_error() {
        let mm = mapping("root = \"result\"");
        let e = parse_metrics(br#"{"error_rate": 0.1}"#, &mm).unwrap_err();
        assert_eq!(
            e.0,
            "the response has no \"result\" object (metrics_mapping.root)"
        );
        let e = parse_metrics(br#"{"result": 3}"#, &mm).unwrap_err();
        assert_eq!(e.0, "\"result\" is not an object (metrics_mapping.root)");
        assert!(parse_metrics(b"not json", &mm).is_err());
    }
}
