//! Where the fields of the metrics and logs answers are: `[defaults.metrics_mapping]`,
//! `[defaults.logs_mapping]` and their per-service overrides (json_exporter-style modules).
//!
//! Those two endpoints come from the source design, not from TD's published API, so their shape is
//! a setting. Owns the raw tables, the checked [`MetricsMapping`] / [`LogsMapping`], and their
//! checks (dotted paths, units, stat labels). Each key left out keeps the value of the level
//! above (service -> defaults -> the built-in mapping, which is the exporter's historic guess).
//! It reads no answer: `td::metrics_answer` and `td::logs_answer` apply a mapping.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::validate::Validator;
use super::ErrorRateUnit;

/// Segments of a dotted path at most (the metrics answer is flattened 9 levels deep).
pub const MAX_PATH_SEGMENTS: usize = 8;

// -- as written ----------------------------------------------------------------------------------

#[derive(Deserialize, Default, Debug, Clone)]
pub(super) struct RawMetricsMapping {
    pub(super) root: Option<String>,
    pub(super) error_rate: Option<String>,
    pub(super) error_rate_unit: Option<String>,
    pub(super) latency: Option<BTreeMap<String, String>>,
    pub(super) latency_unit: Option<String>,
}

#[derive(Deserialize, Default, Debug, Clone)]
pub(super) struct RawLogsMapping {
    pub(super) entries: Option<String>,
    pub(super) id: Option<String>,
    pub(super) user: Option<String>,
    pub(super) section: Option<String>,
    pub(super) timestamp: Option<String>,
    pub(super) status: Option<String>,
    pub(super) processing_time_ms: Option<String>,
    pub(super) error: Option<String>,
    pub(super) next: Option<String>,
    pub(super) next_param: Option<String>,
}

// -- checked -------------------------------------------------------------------------------------

/// A dotted path into a JSON answer (`stats.errors.ratio`): non-empty segments of letters, digits,
/// `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Checks `s`; the error says what is wrong and how to write it.
    pub fn parse(s: &str) -> Result<FieldPath, String> {
        if s.trim().is_empty() {
            return Err("an empty path: write a dotted path such as \"stats.errors.ratio\"".into());
        }
        let segments: Vec<String> = s.split('.').map(str::to_string).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "{s:?} has {} segments: at most {MAX_PATH_SEGMENTS}",
                segments.len()
            ));
        }
        for seg in &segments {
            if seg.is_empty() {
                return Err(format!(
                    "{s:?} has an empty segment: write it as a.b.c, without leading, trailing or double dots"
                ));
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            {
                return Err(format!(
                    "{s:?} holds {c:?}: a path is plain field names (letters, digits, _ and -) joined by dots; \
                     no wildcards, indexes or spaces"
                ));
            }
        }
        Ok(FieldPath(segments))
    }

    fn builtin(s: &str) -> FieldPath {
        FieldPath(s.split('.').map(str::to_string).collect())
    }

    /// The value at this path under `v`, if every segment is an object key.
    pub fn lookup<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(v, |at, seg| at.as_object()?.get(seg))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// Where the metrics fields are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetricsRoot {
    /// `root` not set: the top, or its `data` / `metrics` object when the top has no error rate.
    Auto,
    /// `root = ""`: the top of the answer, never unwrapped.
    Top,
    /// `root = "a.b"`: that object; an answer without it is invalid.
    At(FieldPath),
}

/// The unit of the latency fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LatencyUnit {
    S,
    #[default]
    Ms,
    Us,
}

impl LatencyUnit {
    pub fn to_seconds(self, v: f64) -> f64 {
        match self {
            LatencyUnit::S => v,
            LatencyUnit::Ms => v / 1e3,
            LatencyUnit::Us => v / 1e6,
        }
    }
}

/// How a metrics answer maps to `td_pz_service_error_rate`, `td_pz_service_latency_seconds` and
/// `td_pz_service_metric`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetricsMapping {
    pub root: MetricsRoot,
    /// Relative to the root.
    pub error_rate: FieldPath,
    /// Also `Service::error_rate_unit` (the older per-service key).
    pub error_rate_unit: ErrorRateUnit,
    /// `stat` label -> path relative to the root, sorted by label.
    pub latency: Vec<(String, FieldPath)>,
    pub latency_unit: LatencyUnit,
}

impl Default for MetricsMapping {
    /// The built-in guess: `error_rate`, and `p50|p95|p99|avg_latency_ms` in milliseconds.
    fn default() -> Self {
        MetricsMapping {
            root: MetricsRoot::Auto,
            error_rate: FieldPath::builtin("error_rate"),
            error_rate_unit: ErrorRateUnit::Ratio,
            latency: [
                ("avg", "avg_latency_ms"),
                ("p50", "p50_latency_ms"),
                ("p95", "p95_latency_ms"),
                ("p99", "p99_latency_ms"),
            ]
            .iter()
            .map(|(s, p)| (s.to_string(), FieldPath::builtin(p)))
            .collect(),
            latency_unit: LatencyUnit::Ms,
        }
    }
}

/// How a logs answer maps to entries. Each field is a list of paths tried in order (the
/// built-in mapping has fallbacks; a configured key is one path); entry fields are relative to
/// the entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogsMapping {
    /// `None`: the answer itself when it is an array, else its `logs` or `data` array.
    pub entries: Option<FieldPath>,
    pub id: Vec<FieldPath>,
    /// Never a label: kept on the entry for the `probe` command only.
    pub user: Vec<FieldPath>,
    pub section: Vec<FieldPath>,
    pub timestamp: Vec<FieldPath>,
    pub status: Vec<FieldPath>,
    pub processing_time_ms: Vec<FieldPath>,
    pub error: Vec<FieldPath>,
    /// Relative to the top of the answer.
    pub next: Vec<FieldPath>,
    /// The query parameter that sends `next` back; empty: pages are not followed.
    pub next_param: String,
}

impl LogsMapping {
    /// The built-in guess; `page_param` is `[defaults.logs].page_param`.
    pub fn builtin(page_param: &str) -> Self {
        let paths = |ps: &[&str]| ps.iter().map(|p| FieldPath::builtin(p)).collect();
        LogsMapping {
            entries: None,
            id: paths(&["id", "request_id"]),
            user: paths(&["user_id"]),
            section: paths(&["section"]),
            timestamp: paths(&["timestamp"]),
            status: paths(&["status", "status_code"]),
            processing_time_ms: paths(&["processing_time_ms"]),
            error: paths(&["error"]),
            next: paths(&["next_page", "pagination.next_page", "pagination.nextPage"]),
            next_param: page_param.to_string(),
        }
    }
}

impl ErrorRateUnit {
    /// `v` in this unit as a ratio 0..1.
    pub fn to_ratio(self, v: f64) -> f64 {
        match self {
            ErrorRateUnit::Ratio => v,
            ErrorRateUnit::Percent => v / 100.0,
        }
    }
}

// -- checks --------------------------------------------------------------------------------------

impl Validator<'_> {
    fn field_path(&mut self, at: &str, key: &str, s: &str) -> Option<FieldPath> {
        FieldPath::parse(s)
            .map_err(|e| self.problem(&format!("{at}.{key}"), e))
            .ok()
    }

    /// `raw` over `base`: each key written replaces the base's value.
    pub(super) fn metrics_mapping(
        &mut self,
        at: &str,
        raw: &RawMetricsMapping,
        base: &MetricsMapping,
    ) -> MetricsMapping {
        let mut m = base.clone();
        if let Some(r) = &raw.root {
            if r.is_empty() {
                m.root = MetricsRoot::Top;
            } else if let Some(p) = self.field_path(at, "root", r) {
                m.root = MetricsRoot::At(p);
            }
        }
        if let Some(p) = raw.error_rate.as_deref() {
            m.error_rate = self.field_path(at, "error_rate", p).unwrap_or(m.error_rate);
        }
        m.error_rate_unit = self.error_rate_unit(at, raw).unwrap_or(m.error_rate_unit);
        if let Some(u) = raw.latency_unit.as_deref() {
            match u {
                "s" => m.latency_unit = LatencyUnit::S,
                "ms" => m.latency_unit = LatencyUnit::Ms,
                "us" => m.latency_unit = LatencyUnit::Us,
                other => self.problem(
                    &format!("{at}.latency_unit"),
                    format!("unknown unit {other:?}: use \"s\", \"ms\" or \"us\""),
                ),
            }
        }
        if let Some(table) = &raw.latency {
            m.latency.clear();
            for (stat, p) in table {
                let place = format!("{at}.latency.{stat}");
                if stat == "latency_unit" {
                    self.problem(
                        &place,
                        format!("latency_unit belongs in [{at}] itself, not in its latency table"),
                    );
                } else if !valid_stat(stat) {
                    self.problem(
                        &place,
                        format!("{stat:?} is the stat label: use letters, digits and _ (e.g. p95)"),
                    );
                } else if let Some(fp) = self.field_path(&format!("{at}.latency"), stat, p) {
                    m.latency.push((stat.clone(), fp));
                }
            }
        }
        m
    }

    /// The error rate unit of `[metrics_mapping]`, if written and valid.
    fn error_rate_unit(&mut self, at: &str, raw: &RawMetricsMapping) -> Option<ErrorRateUnit> {
        match raw.error_rate_unit.as_deref()? {
            "ratio" => Some(ErrorRateUnit::Ratio),
            "percent" => Some(ErrorRateUnit::Percent),
            other => {
                self.problem(
                    &format!("{at}.error_rate_unit"),
                    format!("unknown unit {other:?}: use \"ratio\" (0..1) or \"percent\" (0..100)"),
                );
                None
            }
        }
    }

    /// `raw` over `base`: each key written replaces the base's value (and its fallbacks).
    pub(super) fn logs_mapping(
        &mut self,
        at: &str,
        raw: &RawLogsMapping,
        base: &LogsMapping,
    ) -> LogsMapping {
        let mut m = base.clone();
        if let Some(p) = raw.entries.as_deref() {
            m.entries = self.field_path(at, "entries", p).or(m.entries);
        }
        let fields: [(&str, &Option<String>, &mut Vec<FieldPath>); 8] = [
            ("id", &raw.id, &mut m.id),
            ("user", &raw.user, &mut m.user),
            ("section", &raw.section, &mut m.section),
            ("timestamp", &raw.timestamp, &mut m.timestamp),
            ("status", &raw.status, &mut m.status),
            (
                "processing_time_ms",
                &raw.processing_time_ms,
                &mut m.processing_time_ms,
            ),
            ("error", &raw.error, &mut m.error),
            ("next", &raw.next, &mut m.next),
        ];
        for (key, written, slot) in fields {
            if let Some(p) = written.as_deref() {
                if let Some(fp) = self.field_path(at, key, p) {
                    *slot = vec![fp];
                }
            }
        }
        if let Some(q) = &raw.next_param {
            if q.is_empty() || valid_param(q) {
                m.next_param = q.clone();
            } else {
                self.problem(
                    &format!("{at}.next_param"),
                    format!("{q:?} is a query parameter name: use letters, digits, _, -, . and [ ] (e.g. \"cursor\" or \"page[after]\")"),
                );
            }
        }
        m
    }
}

fn valid_stat(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_param(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(
            FieldPath::parse("stats.errors.ratio").unwrap().to_string(),
            "stats.errors.ratio"
        );
        assert!(FieldPath::parse("").is_err());
        assert!(FieldPath::parse("a..b")
            .unwrap_err()
            .contains("empty segment"));
        assert!(FieldPath::parse(".a").is_err());
        assert!(FieldPath::parse("items[0].x")
            .unwrap_err()
            .contains("no wildcards"));
        assert!(FieldPath::parse("a.*").is_err());
        assert!(FieldPath::parse("a b").is_err());
        assert!(FieldPath::parse("a.b.c.d.e.f.g.h.i")
            .unwrap_err()
            .contains("at most 8"));
    }

    #[test]
    fn lookup_follows_objects_only() {
        let v = serde_json::json!({"a": {"b": 1, "c": [1]}});
        let p = |s| FieldPath::parse(s).unwrap();
        assert_eq!(p("a.b").lookup(&v), Some(&serde_json::json!(1)));
        assert_eq!(p("a.c.0").lookup(&v), None);
        assert_eq!(p("x").lookup(&v), None);
    }
}
