//! Property tests (proptest): the parsers never panic on any input, numbers are read the same
//! as numbers and as strings, log entries are counted exactly once whatever the overlap and
//! order of the answers, the request budget never lets more than N requests into one second,
//! sharding gives every service one owner and moves only to a new replica, and `/metrics`
//! stays valid text exposition whatever the section names. The fuzz targets (fuzz/,
//! scripts/fuzz.sh) explore the same parsers for longer; these run in every `cargo test`.
//!
//! Case counts are moderate so that this file takes a few seconds in `cargo test --release`.
//! Failures are not persisted to a file: a counterexample is shrunk and printed, and a real bug
//! gets an explicit regression test at the end of this file.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{json, Map, Value};

use td_pz_exporter::budget::Budget;
use td_pz_exporter::config::Config;
use td_pz_exporter::metrics::Metrics;
use td_pz_exporter::poll::logs::{LogState, SectionCap, UNKNOWN_SECTION};
use td_pz_exporter::shard::Shard;
use td_pz_exporter::td::{cdp, mgmt, p13n};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// -- generators -----------------------------------------------------------------------------

/// Field names the parsers look at, so that generated documents reach past the first check.
const KEYS: &[&str] = &[
    "section",
    "outputs",
    "processing_time_ms",
    "user_id",
    "timestamp",
    "offers",
    "attributes",
    "batch_segments",
    "error_rate",
    "data",
    "metrics",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "avg_latency_ms",
    "logs",
    "id",
    "request_id",
    "status",
    "status_code",
    "error",
    "next_page",
    "nextPage",
    "pagination",
    "name",
    "code",
    "message",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "\\PC{0,8}",
        1 => "[a-z.]{1,6}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        (0u32..3_000_000_000).prop_map(Value::from),
        (-1e3f64..1e3).prop_map(Value::from),
        proptest::sample::select(&[1e30, 1e300, -1e300, 1.8e19, 2e22, 5e-324, -0.0][..])
            .prop_map(Value::from),
    ]
}

fn scalar_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| format!(" {i} ")),
        proptest::sample::select(
            &[
                "NaN",
                "inf",
                "-inf",
                "1e400",
                "1e30",
                "2024-02-13T10:30:00Z",
                "2024-02-13 10:30:00.5",
                "2024-02-13 10:30:00 UTC",
                "+275760-09-13T00:00:00Z",
                "1707820200123",
                "yesterday",
                "",
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number(),
        3 => scalar_string().prop_map(Value::String),
    ]
}

/// Any JSON value, biased towards objects with the field names the parsers read.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            2 => prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Documents shaped like each answer (cdp, p13n, metrics, logs), with any values in the fields.
fn shaped() -> impl Strategy<Value = Value> {
    let obj = || {
        prop::collection::vec((key(), leaf()), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
    };
    prop_oneof![
        (leaf(), obj(), leaf()).prop_map(|(section, outputs, ms)| json!({
            "user_id": "u", "section": section, "outputs": outputs, "processing_time_ms": ms
        })),
        prop::collection::vec(("\\PC{0,6}", obj(), leaf()), 0..4).prop_map(|offers| {
            let offers: Map<String, Value> = offers
                .into_iter()
                .map(|(name, attrs, segs)| {
                    (name, json!({"attributes": attrs, "batch_segments": segs}))
                })
                .collect();
            json!({ "offers": offers })
        }),
        (leaf(), obj(), obj()).prop_map(|(rate, flat, nested)| {
            let mut m = flat.as_object().cloned().unwrap_or_default();
            m.insert("error_rate".into(), rate);
            m.insert("nested".into(), nested);
            json!({ "data": m })
        }),
        (prop::collection::vec(obj(), 0..6), leaf()).prop_map(|(logs, next)| {
            json!({ "logs": logs, "pagination": { "next_page": next } })
        }),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![json_value(), shaped()]
}

/// Every response parser on one body: none may panic, whatever it returns.
fn parse_everything(body: &[u8]) {
    let _ = cdp::parse_personalization(body);
    let _ = p13n::parse_personalization(body, None);
    let _ = p13n::parse_personalization(body, Some("vip"));
    let _ = mgmt::parse_metrics(body);
    let _ = mgmt::parse_logs(body);
    let _ = td_pz_exporter::td::discovery::parse(
        body,
        "/audiences/1/realtime_personalization_services",
    );
}

// -- parsers never panic --------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn parsers_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_everything(&body);
    }

    #[test]
    fn parsers_never_panic_on_json(v in any_json()) {
        parse_everything(v.to_string().as_bytes());
        // The same value as the answer's wrapped payload, as the parsers unwrap it.
        for wrap in ["data", "logs", "offers", "metrics"] {
            parse_everything(json!({ wrap: v.clone() }).to_string().as_bytes());
        }
        let _ = mgmt::parse_timestamp(&v);
    }

    #[test]
    fn parsed_answers_keep_their_invariants(v in any_json(), expected in "[a-z]{0,3}") {
        let body = v.to_string();
        if let Ok(p) = cdp::parse_personalization(body.as_bytes()) {
            let s = p.section.expect("a cdp answer that parses has a section");
            prop_assert!(p.sections.len() == 1 && p.sections.contains(&s));
        }
        if let Ok(p) = p13n::parse_personalization(body.as_bytes(), Some(&expected)) {
            match &p.section {
                None => prop_assert!(p.sections.is_empty()),
                Some(s) => {
                    prop_assert!(p.sections.contains(s));
                    if p.sections.contains(&expected) {
                        prop_assert_eq!(s, &expected);
                    }
                }
            }
        }
        if let Ok(m) = mgmt::parse_metrics(body.as_bytes()) {
            prop_assert!(m.error_rate.is_none_or(f64::is_finite));
            prop_assert!(m.fields.iter().all(|(_, v)| v.is_finite()));
            prop_assert!(m.fields.len() <= mgmt::MAX_FIELDS);
        }
        if let Ok(page) = mgmt::parse_logs(body.as_bytes()) {
            for e in &page.entries {
                prop_assert!(e.timestamp.is_none_or(f64::is_finite));
                prop_assert!(e.status.is_none_or(|s| (100..600).contains(&s)));
            }
        }
    }
}

// -- the configuration parser ---------------------------------------------------------------

/// Lines of real configurations, to be shuffled, dropped and garbled.
const CONFIG_LINES: &[&str] = &[
    "[td]",
    "site = \"us01\"",
    "site = \"jp01\"",
    "site = \"mars01\"",
    "api_key_env = \"TD_API_KEY\"",
    "api_key_env = \"UNSET_VARIABLE\"",
    "personalization_url = \"http://127.0.0.1:9898\"",
    "cdp_api_url = \"ftp://x\"",
    "p13n_url = \"not a url\"",
    "timeout = \"0s\"",
    "timeout = \"10s\"",
    "timeout = 10s",
    "max_requests_per_second = 0.5",
    "max_requests_per_second = 1e9",
    "max_response_bytes = -1",
    "[defaults]",
    "probe_schedule = \"*/5 * * * *\"",
    "probe_schedule = \"0 0 0 30 2 * *\"",
    "metrics_schedule = \"0 0 0 1 1 * 2099\"",
    "logs_schedule = \"@hourly\"",
    "section_share_window = \"0s\"",
    "section_share_window = \"99999999999999y\"",
    "[defaults.logs]",
    "max_pages = 0",
    "overlap = \"1h\"",
    "[[service]]",
    "name = \"a\"",
    "name = \" \"",
    "parent_segment_id = \"1\"",
    "service_id = \"2\"",
    "api = \"p13n\"",
    "api = \"graphql\"",
    "database = \"rt_events\"",
    "table = \"Web-Personalization\"",
    "token_env = \"TD_P13N_TOKEN\"",
    "sections = []",
    "max_sections = 0",
    "[[service.probe]]",
    "name = \"vip\"",
    "name = \"v i p\"",
    "user_id = \"u1\"",
    "endpoint = \"test\"",
    "context = { a = 1, b = [1, \"x\"] }",
    "max_latency = \"0ms\"",
    "schedule = \"every minute\"",
    "[[parent_segment]]",
    "id = \"394649\"",
    "discover = true",
    "[sharding]",
    "index = 3",
    "count = 3",
    "unknown_key = 1",
    "[unknown_table]",
    "= \"\"",
    "\"\\u00e9\" = \"\\uD800\"",
    "# a comment \u{1} with a control character",
];

fn config_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(CONFIG_LINES).prop_map(str::to_string),
            1 => "\\PC{0,20}",
        ],
        0..24,
    )
    .prop_map(|lines| lines.join("\n"))
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "TD_API_KEY".to_string(),
            "1/PROPkey0123456789SECRET".to_string(),
        ),
        (
            "TD_P13N_TOKEN".to_string(),
            "1/2/PROPtoken0123456789TOKEN".to_string(),
        ),
    ])
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Any text: a checked configuration or a list of problems with lines inside the text,
    /// never a panic, and never the key in the message.
    #[test]
    fn config_parse_never_panics(text in config_text()) {
        let lines = text.lines().count() + 1;
        match Config::parse(&text, "p.toml", &env()) {
            Ok(cfg) => {
                prop_assert!(!cfg.td.api_key.is_empty());
                prop_assert!(cfg.services.iter().all(|s| !s.name.trim().is_empty()));
            }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                prop_assert!(e.problems.iter().all(|p| !p.message.trim().is_empty()), "{}", e);
                prop_assert!(e.problems.iter().all(|p| p.line.is_none_or(|l| (1..=lines).contains(&l))),
                    "{e}");
                prop_assert!(!e.to_string().contains("PROPkey0123456789SECRET"));
            }
        }
    }
}

// -- numbers as numbers and as strings --------------------------------------------------------

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        any::<i64>().prop_map(|i| i as f64),
        (-1e6f64..1e6),
        (0u32..10_000).prop_map(|n| f64::from(n) / 100.0),
    ]
}

proptest! {
    #![proptest_config(cases(1024))]

    /// A metrics field sent as a JSON number and as a string holding the same text reads the
    /// same, at the top level, nested, and as error_rate.
    #[test]
    fn numbers_and_numeric_strings_read_the_same(x in finite(), field in "[a-z_]{1,10}", pad in " {0,2}") {
        let text = Value::from(x).to_string();
        let as_number: Value = serde_json::from_str(&format!(
            r#"{{"error_rate": {text}, "f_{field}": {text}, "nested": {{"{field}": {text}}}}}"#
        )).unwrap();
        let as_string = json!({
            "error_rate": format!("{pad}{text}{pad}"),
            format!("f_{field}"): text,
            "nested": { field.clone(): text },
        });
        let a = mgmt::parse_metrics(as_number.to_string().as_bytes()).unwrap();
        let b = mgmt::parse_metrics(as_string.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&a, &b, "{} read differently as a number and as a string", text);
        prop_assert_eq!(a.error_rate, Some(x));
        prop_assert_eq!(a.fields.len(), 2);
    }

    /// The same for the answers' processing_time_ms and the logs' timestamps and status.
    #[test]
    fn answer_numbers_read_the_same_as_strings(ms in 0u32..600_000, frac in 0u32..1000, ts in 1_000_000_000u64..4_000_000_000_000) {
        let ms = format!("{ms}.{frac:03}");
        let n = format!(r#"{{"section":"a","processing_time_ms":{ms}}}"#);
        let s = format!(r#"{{"section":"a","processing_time_ms":"{ms}"}}"#);
        prop_assert_eq!(
            cdp::parse_personalization(n.as_bytes()).unwrap(),
            cdp::parse_personalization(s.as_bytes()).unwrap()
        );
        let n = format!(r#"[{{"timestamp":{ts},"status":404,"processing_time_ms":{ms}}}]"#);
        let s = format!(r#"[{{"timestamp":"{ts}","status":"404","processing_time_ms":"{ms}"}}]"#);
        let (a, b) = (mgmt::parse_logs(n.as_bytes()).unwrap(), mgmt::parse_logs(s.as_bytes()).unwrap());
        let strip = |p: &mgmt::LogsPage| p.entries.iter().map(|e| (e.timestamp, e.status, e.processing_time, e.error)).collect::<Vec<_>>();
        prop_assert_eq!(strip(&a), strip(&b));
    }
}

// -- log ingestion ------------------------------------------------------------------------------

const T: f64 = 1_700_000_000.0;
const SECTIONS: &[&str] = &["premium_users", "new_users", "cart", "fallback", "7"];

/// One distinct log entry: identified by an id, or by its content alone.
#[derive(Clone, Debug)]
struct Kind {
    by_id: bool,
    section: Option<usize>,
    /// Seconds after T; None: the entry has no timestamp (it is taken as "now").
    ts: Option<u16>,
    status: u16,
}

impl Kind {
    fn json(&self, i: usize) -> Value {
        let mut o = Map::new();
        if self.by_id {
            o.insert("id".into(), json!(format!("e{i}")));
        } else {
            o.insert("seq".into(), json!(i));
        }
        if let Some(s) = self.section {
            o.insert("section".into(), json!(SECTIONS[s]));
        }
        if let Some(t) = self.ts {
            o.insert("timestamp".into(), json!(T as u64 + u64::from(t)));
        }
        o.insert("status".into(), json!(self.status));
        Value::Object(o)
    }

    fn label(&self) -> String {
        self.section
            .map_or(UNKNOWN_SECTION.to_string(), |s| SECTIONS[s].to_string())
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    (
        any::<bool>(),
        prop::option::weighted(0.9, 0..SECTIONS.len()),
        prop::option::weighted(0.9, 0u16..300),
        prop::sample::select(&[200u16, 200, 200, 404, 500][..]),
    )
        .prop_map(|(by_id, section, ts, status)| Kind {
            by_id,
            section,
            ts,
            status,
        })
}

/// A set of distinct entries and overlapping answers drawn from it: each answer lists indices
/// into the set, an index appearing k times meaning the same content k times in that answer.
fn universe_and_answers() -> impl Strategy<Value = (Vec<Kind>, Vec<Vec<usize>>)> {
    prop::collection::vec(kind(), 1..20).prop_flat_map(|kinds| {
        let n = kinds.len();
        let answers = prop::collection::vec(prop::collection::vec(0..n, 0..30), 1..6);
        (Just(kinds), answers)
    })
}

fn body(kinds: &[Kind], answer: &[usize]) -> Vec<u8> {
    let logs: Vec<Value> = answer.iter().map(|&i| kinds[i].json(i)).collect();
    json!({ "logs": logs }).to_string().into_bytes()
}

/// Ingests each answer in turn (through the real parser) and returns the counts per section.
fn ingest_all(st: &mut LogState, kinds: &[Kind], answers: &[Vec<usize>]) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for a in answers {
        let page = mgmt::parse_logs(&body(kinds, a)).unwrap();
        assert_eq!(page.entries.len(), a.len());
        let got = st.ingest(&page.entries, T + 400.0);
        assert_eq!(got.too_old, 0);
        assert_eq!(got.by_section.values().sum::<u64>(), got.new_entries);
        for (s, n) in got.by_section {
            *total.entry(s).or_insert(0) += n;
        }
    }
    total
}

fn state() -> LogState {
    LogState::new(SectionCap::new(None, 50), Duration::from_secs(600))
}

fn shuffled(answers: &[Vec<usize>], seed: u64) -> Vec<Vec<usize>> {
    // A deterministic shuffle (xorshift), of the answers and of the entries within each.
    let mut x = seed | 1;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut out: Vec<Vec<usize>> = answers.to_vec();
    for i in (1..out.len()).rev() {
        out.swap(i, next(i + 1));
    }
    for a in &mut out {
        for i in (1..a.len()).rev() {
            a.swap(i, next(i + 1));
        }
    }
    out
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Each distinct entry is counted exactly as many times as the answer that holds it most
    /// often holds it; the totals do not depend on the order of answers or of entries; the
    /// shares follow the counts and sum to 1; replaying every answer adds nothing.
    #[test]
    fn log_entries_are_counted_once_whatever_the_overlap((kinds, answers) in universe_and_answers(), seed in any::<u64>()) {
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for (i, k) in kinds.iter().enumerate() {
            let most = answers.iter().map(|a| a.iter().filter(|&&j| j == i).count()).max().unwrap_or(0);
            if most > 0 {
                *expected.entry(k.label()).or_insert(0) += most as u64;
            }
        }

        let mut st = state();
        let counted = ingest_all(&mut st, &kinds, &answers);
        prop_assert_eq!(&counted, &expected);

        let mut other = state();
        let reordered = ingest_all(&mut other, &kinds, &shuffled(&answers, seed));
        prop_assert_eq!(&reordered, &expected, "the order of answers changed the totals");

        let total: u64 = expected.values().sum();
        let shares = st.shares(T + 400.0, Duration::from_secs(1000));
        if total == 0 {
            prop_assert!(shares.is_empty());
        } else {
            let sum: f64 = shares.iter().map(|(_, s)| s).sum();
            prop_assert!((sum - 1.0).abs() < 1e-9, "shares sum to {}", sum);
            for (s, share) in &shares {
                let want = expected[s] as f64 / total as f64;
                prop_assert!((share - want).abs() < 1e-12, "{} {} != {}", s, share, want);
            }
            prop_assert_eq!(shares.len(), expected.len());
        }

        let replay = ingest_all(&mut st, &kinds, &answers);
        prop_assert!(replay.is_empty(), "replaying added {:?}", replay);
    }
}

// -- the request budget -------------------------------------------------------------------------

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

proptest! {
    #![proptest_config(cases(512))]

    /// Whatever the pattern of reservations, time passing and Retry-After pauses: start times
    /// never go backwards, never precede the request or a pause, and no one-second window
    /// holds more than N of them.
    #[test]
    fn the_budget_never_exceeds_n_per_second(
        n in 1u32..12,
        steps in prop::collection::vec((0u64..1500, prop::option::weighted(0.05, 0u64..3000)), 1..80),
    ) {
        let rt = paused_runtime();
        let times = rt.block_on(async {
            let b = Budget::new(n);
            let start = tokio::time::Instant::now();
            let mut times = Vec::new();
            let mut paused_until = start;
            for (gap_ms, pause_ms) in &steps {
                // Most reservations come in bursts; some after a pause.
                if *gap_ms > 1000 {
                    tokio::time::advance(Duration::from_millis(gap_ms - 1000)).await;
                }
                if let Some(p) = pause_ms {
                    b.pause_for(Duration::from_millis(*p));
                    paused_until = paused_until.max(tokio::time::Instant::now() + Duration::from_millis(*p));
                }
                let asked = tokio::time::Instant::now();
                let at = b.reserve();
                assert!(at >= asked, "a start time before the request");
                assert!(at >= paused_until, "a start time inside a pause");
                times.push(at - start);
            }
            times
        });
        prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "start times go backwards: {:?}", times);
        for (i, t) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|u| **u < *t + Duration::from_secs(1)).count();
            prop_assert!(within <= n as usize, "{} starts in the second from {:?} (budget {}): {:?}", within, t, n, times);
        }
    }
}

// -- sharding -----------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(512))]

    /// Every key has exactly one owner among N shards, and going to N+1 moves a key only to
    /// the new shard.
    #[test]
    fn every_key_has_one_shard_and_growing_moves_only_to_the_new_one(
        keys in prop::collection::vec("\\PC{0,24}", 1..40),
        n in 1u32..16,
    ) {
        let shards: Vec<Shard> = (0..n).map(|i| Shard::new(i, n).unwrap()).collect();
        for k in &keys {
            let owners: Vec<u32> = shards.iter().filter(|s| s.owns(k)).map(|s| s.index).collect();
            prop_assert_eq!(owners.len(), 1, "key {:?} owned by {:?}", k, owners);
            prop_assert_eq!(owners[0], Shard::owner(k, n));
            let after = Shard::owner(k, n + 1);
            prop_assert!(after == owners[0] || after == n, "{:?} moved {} -> {} going {} -> {}", k, owners[0], after, n, n + 1);
        }
    }
}

// -- /metrics text with arbitrary label values ------------------------------------------------

/// One sample line of the text exposition format: `name{l="v",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Parses one sample line strictly: label values are quoted, `\\`, `\"` and `\n` are the only
/// escapes, and nothing but the value follows the labels.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return Err("no value".into()),
    };
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let end = loop {
            let mut lname = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                lname.push(c);
            }
            if !is_name(&lname, false) {
                return Err(format!("bad label name {lname:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, '\n')) => return Err("raw newline in a label value".into()),
                    Some((_, c)) => value.push(c),
                }
            }
            labels.push((lname, value));
            match chars.next() {
                Some((_, ',')) => {
                    if let Some(&(i, '}')) = chars.peek() {
                        break i + 1;
                    }
                }
                Some((i, '}')) => break i + 1,
                _ => return Err("bad label separator or unterminated labels".into()),
            }
        };
        rest = &r[end..];
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_string())?;
    let value = value.split(' ').next().unwrap_or_default();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.is_empty() {
            continue;
        }
        out.push(parse_sample(line).map_err(|e| format!("{e}: {line:?}"))?);
    }
    Ok(out)
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[\\\\\"\n{},= a-z]{0,12}",
        proptest::sample::select(&["", "\\", "\"", "\n", "\\n", "a\"}, x=\"1", "é💥", "\r\t"][..])
            .prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(cases(128))]

    /// Whatever the section, field, service and parent segment names, every line of `/metrics`
    /// parses as `name{labels} value`, and each name comes back unchanged from its escaped form.
    #[test]
    fn metrics_text_stays_valid_with_any_label_values(
        ps in label_value(),
        svc in label_value(),
        sections in prop::collection::btree_set(label_value(), 1..5),
        fields in prop::collection::btree_set(label_value(), 0..4),
    ) {
        let m = Metrics::new();
        let sections: Vec<String> = sections.into_iter().collect();
        for (i, s) in sections.iter().enumerate() {
            m.log_entries(&ps, &svc, s, i as u64 + 1);
        }
        let n = sections.len() as f64;
        let shares: Vec<(String, f64)> = sections.iter().map(|s| (s.clone(), 1.0 / n)).collect();
        m.set_section_shares(&ps, &svc, &shares);
        let fields: Vec<(String, f64)> = fields.into_iter().enumerate().map(|(i, f)| (f, i as f64 * 0.5)).collect();
        m.set_service_fields(&ps, &svc, &fields);

        let text = String::from_utf8(m.render()).expect("UTF-8");
        let samples = parse_exposition(&text).map_err(TestCaseError::fail)?;
        let find = |name: &str, label: &str, value: &str| {
            samples.iter().find(|s| {
                s.name == name
                    && s.labels.iter().any(|(k, v)| k == label && v == value)
                    && s.labels.iter().any(|(k, v)| k == "parent_segment" && *v == ps)
                    && s.labels.iter().any(|(k, v)| k == "pz_service" && *v == svc)
            })
        };
        for (i, s) in sections.iter().enumerate() {
            let e = find("td_pz_log_entries_total", "section", s);
            prop_assert!(e.is_some(), "section {:?} lost in {}", s, text);
            prop_assert_eq!(e.unwrap().value, i as f64 + 1.0);
            prop_assert!(find("td_pz_section_share", "section", s).is_some());
        }
        for (f, v) in &fields {
            let e = find("td_pz_service_metric", "field", f);
            prop_assert!(e.is_some(), "field {:?} lost", f);
            prop_assert_eq!(e.unwrap().value, *v);
        }
        let names: HashSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        prop_assert!(names.contains("td_pz_exporter_build_info"));
    }
}

#[test]
fn the_exposition_parser_refuses_what_it_should() {
    assert!(parse_sample(r#"a{b="c"} 1"#).is_ok());
    assert!(parse_sample(r#"a{b="c",} 1"#).is_ok());
    assert!(parse_sample(r#"a 1"#).is_ok());
    assert!(parse_sample(r#"a{b="c\"} 1"#).is_err());
    assert!(parse_sample(r#"a{b="c"}1"#).is_err());
    assert!(parse_sample(r#"a{b="c\t"} 1"#).is_err());
    assert!(parse_sample(r#"a{b=c} 1"#).is_err());
    assert!(parse_sample(r#"1a 1"#).is_err());
    assert!(parse_sample(r#"a{b="c"} x"#).is_err());
    let s = parse_sample(r#"a{b="x\\\"\n"} NaN"#).unwrap();
    assert_eq!(s.labels, vec![("b".to_string(), "x\\\"\n".to_string())]);
}

// -- regressions: bugs these properties and the fuzz targets found --------------------------------
//
// The same inputs are in fuzz/seeds/.

/// A huge `processing_time_ms` panicked in `Duration::from_secs_f64` ("cannot convert float
/// seconds to Duration: value is either too big or NaN"), anything over about 1.8e22 ms. The
/// probe's task died with its `running` flag set, so that probe never ran again (every later
/// fire counted as skipped).
#[test]
fn regression_cdp_huge_processing_time_does_not_panic() {
    for ms in ["1e30", "\"1e30\"", "18446744073709551616000", "1.8e308"] {
        let body = format!(r#"{{"section":"premium_users","processing_time_ms":{ms}}}"#);
        let p = std::panic::catch_unwind(|| cdp::parse_personalization(body.as_bytes()));
        assert!(p.is_ok(), "cdp::parse_personalization panicked on {body}");
    }
}

/// The same in the logs parser: one log entry with a huge `processing_time_ms` panicked the
/// logs poller, which then never ran again for that service.
#[test]
fn regression_logs_huge_processing_time_does_not_panic() {
    let body = br#"{"logs":[{"section":"a","timestamp":1707820200,"processing_time_ms":1e300}]}"#;
    let p = std::panic::catch_unwind(|| mgmt::parse_logs(body));
    assert!(p.is_ok(), "mgmt::parse_logs panicked");
}

/// A metrics value sent as a JSON number read one unit in the last place away from the same
/// text sent as a string: serde_json's default float parser is not correctly rounded (with its
/// `float_roundtrip` feature it is). -3942.4036300936036 read as -3942.403630093603.
#[test]
fn regression_float_text_reads_the_same_as_a_number() {
    let text = "-3942.4036300936036";
    let n = mgmt::parse_metrics(format!(r#"{{"error_rate":{text}}}"#).as_bytes()).unwrap();
    let s = mgmt::parse_metrics(format!(r#"{{"error_rate":"{text}"}}"#).as_bytes()).unwrap();
    assert_eq!(s.error_rate, Some(-3942.4036300936036));
    assert_eq!(
        n.error_rate, s.error_rate,
        "{text} as a number and as a string"
    );
}

/// Regression (fixed): a control character in a TOML comment makes the toml crate return an error whose
/// message is empty, and `Config::parse` passes it on as the problem's message, so
/// `--config.check` prints `t.toml:3: ` and nothing else (src/config.rs, the arm that maps the
/// `serde_ignored::deserialize` error). Found by the `config` fuzz target.
#[test]
fn regression_config_error_for_a_control_character_in_a_comment_says_why() {
    let text = "[td]\napi_key_env = \"TD_API_KEY\"\n# a comment \u{1} with a control character\n";
    let e = Config::parse(text, "t.toml", &env()).unwrap_err();
    assert!(
        e.problems.iter().all(|p| !p.message.trim().is_empty()),
        "a problem without a message: {e:?}"
    );
}
