//! The exposition against the catalog: a registry with a series in every family renders
//! exactly the families [`ALL`] describes, with their type, help and label names.

use std::collections::{BTreeMap, BTreeSet};

use super::super::store::{Streak, PROBE_BUCKETS};
use super::super::text::Histogram;
use super::super::*;
use super::*;

/// A registry with at least one series in every family, filled straight into its store and
/// vectors so that it depends on no recording method.
fn filled() -> Metrics {
    let m = Metrics::new();
    m.services.with("1", "s", |s| {
        let p = s.probe("vip");
        p.total = 3;
        p.successes = 2;
        p.failures.inc(Reason::ALL[0]);
        p.streak = Streak::after(None, Some(Reason::ALL[0]));
        p.success = Some(1.0);
        let mut h = Box::<Histogram<6>>::default();
        h.observe(&PROBE_BUCKETS, 0.2);
        p.duration = Some(h);
        p.last_duration = Some(0.2);
        p.server_processing = Some(0.01);
        p.status = Some(200.0);
        p.section_match = Some(true);
        p.section = Some("premium".into());
        for poller in Poller::ALL {
            let ps = s.poller(poller);
            ps.polls = Some(2);
            ps.skipped = 1;
            ps.failures.inc(Reason::ALL[1]);
            ps.streak = Streak::after(None, Some(Reason::ALL[1]));
            ps.last_success = Some(1_700_000_000.0);
        }
        *s.api.entry_or_default((Endpoint::Logs, Some(200))) += 1;
        *s.api.entry_or_default((Endpoint::P13n, None)) += 1;
        s.error_rate = Some(0.02);
        s.fields.insert("a.b".into(), 1.5);
        s.latency.insert("p95".into(), 0.08);
        s.logs.entries.insert("premium".into(), 4);
        s.logs.shares.insert("premium".into(), 1.0);
        s.logs.last_entry = Some(1_700_000_000.0);
        s.logs.errors = Some(1);
        s.logs.overflow = Some(0);
        s.logs.slow = Some(1);
    });
    m.poll_duration.with_label_values(&["probe"]).observe(0.1);
    m.lateness.with_label_values(&["probe"]).observe(0.001);
    m.reload_ok.set(1.0);
    m.reload_ts.set(1_700_000_000.0);
    m.jobs.set(4.0);
    m.runs_in_flight.set(1.0);
    m.inventory.set("1", [1, 2, 3, 4]);
    m
}

/// What the exposition says of one family.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    help: String,
    kind: String,
    labels: BTreeSet<String>,
}

/// Every family of a text exposition, by name: `# HELP`, `# TYPE` and the label names of its
/// samples (`le` of histogram buckets aside).
fn families_of(text: &str) -> BTreeMap<String, Seen> {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a name and a text");
            let help = help.replace("\\n", "\n").replace("\\\\", "\\");
            seen.entry(name.into()).or_default().help = help;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a name and a type");
            seen.entry(name.into()).or_default().kind = kind.into();
        } else if !line.is_empty() {
            let end = line.find(['{', ' ']).expect("a sample has a value");
            let series = &line[..end];
            let family = seen
                .keys()
                .rev()
                .find(|f| {
                    series == f.as_str()
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| series.strip_prefix(f.as_str()) == Some(s))
                })
                .unwrap_or_else(|| panic!("sample of no announced family: {line}"))
                .clone();
            if let Some(labels) = line[end..].strip_prefix('{') {
                let labels = &labels[..labels.rfind('}').expect("labels end with }")];
                for pair in labels.split("\",") {
                    let name = pair.split('=').next().unwrap_or_default();
                    if name != "le" {
                        seen.get_mut(&family).unwrap().labels.insert(name.into());
                    }
                }
            }
        }
    }
    seen
}

fn described() -> BTreeMap<String, Seen> {
    ALL.iter()
        .filter(|f| f.source != Source::Process || cfg!(target_os = "linux"))
        .map(|f| {
            let seen = Seen {
                help: f.help.into(),
                kind: f.kind.as_str().into(),
                labels: f.labels.iter().map(|l| l.to_string()).collect(),
            };
            (f.name.to_string(), seen)
        })
        .collect()
}

#[test]
fn the_exposition_is_the_catalog() {
    let text = String::from_utf8(filled().render()).unwrap();
    let seen = families_of(&text);
    let described = described();
    let names = |m: &BTreeMap<String, Seen>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&seen), names(&described), "families");
    for (name, want) in &described {
        assert_eq!(&seen[name], want, "{name}");
    }
    // Every series the fill made was rendered: per service, 19 of the probe (9 of them the
    // histogram's), 20 of the four pollers, 2 requests, 3 of the metrics endpoint, 6 of the
    // logs.
    let service_samples = text
        .lines()
        .filter(|l| l.contains("pz_service=\"s\""))
        .count();
    assert_eq!(service_samples, 50, "{text}");
}

#[test]
fn the_parser_sees_labels_help_and_drift() {
    let text = "# HELP a_seconds x\\\\y\n# TYPE a_seconds histogram\n\
                a_seconds_bucket{k=\"v,w\",le=\"1\"} 1\na_seconds_sum{k=\"v\"} 1\n\
                # HELP b b\n# TYPE b gauge\nb 1\n";
    let seen = families_of(text);
    assert_eq!(seen["a_seconds"].help, "x\\y");
    assert_eq!(seen["a_seconds"].labels, BTreeSet::from(["k".to_string()]));
    assert!(seen["b"].labels.is_empty());
    let mut described = described();
    described
        .get_mut("td_pz_probes_total")
        .unwrap()
        .labels
        .insert("typo".into());
    let rendered = families_of(&String::from_utf8(filled().render()).unwrap());
    assert_ne!(
        rendered["td_pz_probes_total"],
        described["td_pz_probes_total"]
    );
}

#[test]
fn names_are_unique_and_prefixed() {
    let mut names = BTreeSet::new();
    for f in ALL {
        assert!(names.insert(f.name), "{} twice", f.name);
        let prefix = match f.source {
            Source::Process => "process_",
            _ => "td_pz_",
        };
        assert!(f.name.starts_with(prefix), "{}", f.name);
        assert_eq!(
            f.kind == Kind::Counter,
            f.name.ends_with("_total"),
            "{}",
            f.name
        );
    }
}

#[test]
fn the_store_writes_the_service_families_in_catalog_order() {
    let store: Vec<&str> = families::FAMILIES.iter().map(|f| f.name).collect();
    let catalog: Vec<&str> = ALL
        .iter()
        .filter(|f| f.source == Source::Service)
        .map(|f| f.name)
        .collect();
    assert_eq!(store, catalog);
}

#[test]
fn histogram_series_resolve_to_their_family() {
    assert_eq!(
        family_of("td_pz_probe_duration_seconds_bucket"),
        Some(&PROBE_DURATION)
    );
    assert_eq!(
        family_of("td_pz_probe_duration_seconds"),
        Some(&PROBE_DURATION)
    );
    assert_eq!(family_of("td_pz_probes_total"), Some(&PROBES));
    assert_eq!(family_of("td_pz_probes_total_count"), None);
    assert_eq!(family_of("td_pz_probe_duration_seconds_max"), None);
    assert_eq!(family_of("td_pz_probe"), None);
}
