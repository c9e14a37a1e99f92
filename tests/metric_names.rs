//! Metric names from one source: every metric name the rules, their unit tests, the Kubernetes
//! manifests, the dashboards, the docs and the README use is a family the crate describes
//! (`metrics::catalog`), with label names that family has; every recording rule used is defined
//! by a `record:`; every family is documented in docs/metrics.md with its type and labels.
//!
//! No daemon and no scrape: the files are read as text (the dashboards as JSON). A name is a
//! run of `[A-Za-z0-9_:]` starting with `td_pz_` or `process_` (or a recording rule's
//! `level:td_pz_...:operations`); histogram series (`_bucket`, `_sum`, `_count`) resolve to
//! their family; a name followed by `*`, `.*` or `<` is a prefix (`td_pz_log_*`,
//! `ratio_rate.*`, `ratio_rate<W>`) that must start at least one name.

#[path = "metric_names/check.rs"]
mod check;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use check::{check_docs_tables, check_file, records, uses, yaml_exprs, Records, RULES};
use td_pz_exporter::metrics::catalog::{self, Source};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (below it too when `deep`) whose names end in one of `exts`, sorted.
fn files(dir: &str, exts: &[&str], deep: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join(dir)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                if deep {
                    dirs.push(p);
                }
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn real_records() -> Records {
    records(&read(&root().join(RULES)))
}

#[test]
fn the_rules_dashboards_and_docs_use_only_described_names() {
    let records = real_records();
    let yaml = &[".yaml", ".yml"][..];
    let groups = [
        files("alerts", yaml, false),
        files("alerts/tests", yaml, false),
        files("deploy/kubernetes", yaml, true),
        files("dashboards", &[".json"], false),
        files("docs", &[".md"], false),
        vec![root().join("README.md")],
    ];
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for p in groups.iter().flatten() {
        let text = read(p);
        let path = p
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        check_file(&path, &text, &records, &mut problems);
        names.extend(uses(&text).iter().map(|u| u.name.to_string()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The scan saw the files it should: each group has some, and the names they use reach
    // every recording rule and every family of the exporter's own.
    assert!(groups.iter().all(|g| !g.is_empty()));
    assert!(groups[2].iter().any(|p| p.ends_with("prometheusrule.yaml")));
    let unused: Vec<&str> = records
        .keys()
        .map(String::as_str)
        .filter(|r| !names.contains(*r))
        .collect();
    assert!(unused.is_empty(), "records used nowhere: {unused:?}");
    let unused: Vec<&str> = catalog::ALL
        .iter()
        .filter(|f| f.source != Source::Process && !names.iter().any(|n| f.has_series(n)))
        .map(|f| f.name)
        .collect();
    assert!(unused.is_empty(), "families named nowhere: {unused:?}");
}

#[test]
fn every_rule_expression_is_read() {
    for path in [RULES, "deploy/kubernetes/base/prometheusrule.yaml"] {
        let text = read(&root().join(path));
        let rules = text
            .lines()
            .map(|l| l.trim_start().trim_start_matches("- "))
            .filter(|l| l.starts_with("alert:") || l.starts_with("record:"))
            .count();
        let exprs = yaml_exprs(&text);
        assert_eq!(exprs.len(), rules, "{path}");
        assert!(rules > 40, "{path}: {rules} rules");
        // Block expressions are read whole: the first record's is its two sums.
        assert_eq!(
            exprs[0]
                .matches("sum by (parent_segment, pz_service)")
                .count(),
            2
        );
        assert!(exprs
            .iter()
            .all(|e| !e.trim().is_empty() && !e.contains("for:")));
    }
}

#[test]
fn every_family_is_documented_with_its_type_and_labels() {
    let mut problems = Vec::new();
    check_docs_tables(&read(&root().join("docs/metrics.md")), &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_rules_define_their_records_with_labels() {
    let records = real_records();
    assert_eq!(records.len(), 20, "{records:?}");
    let labels = |r: &str| records[r].iter().map(String::as_str).collect::<Vec<_>>();
    let by_service = ["parent_segment", "pz_service"];
    assert_eq!(
        labels("pz_service:td_pz_probe_errors:ratio_rate5m"),
        by_service
    );
    assert_eq!(
        labels("pz_service:td_pz_probe_duration_seconds:p95_5m"),
        ["le", "parent_segment", "pz_service"]
    );
    assert_eq!(
        labels("pz_service_section:td_pz_section_share:avg5m"),
        ["parent_segment", "pz_service", "section"]
    );
    // A record of a record carries the labels of the first.
    assert_eq!(
        labels("pz_service:td_pz_probe_availability:ratio_rate5m"),
        by_service
    );
}

/// Asserts that checking `text` as the file `path` finds exactly the problems `want` (each a
/// part of one problem's message, in order).
fn assert_caught(path: &str, text: &str, want: &[&str]) {
    let mut got = Vec::new();
    check_file(path, text, &real_records(), &mut got);
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(g.contains(w), "{g:?} does not say {w:?}");
    }
}

#[test]
fn a_misspelled_name_is_caught() {
    let x = "not a described family";
    assert_caught(
        "alerts/x.yaml",
        "expr: 'rate(td_pz_probes_totl[5m]) > 0'\n",
        &[&format!("alerts/x.yaml: td_pz_probes_totl: {x}")],
    );
    assert_caught(
        "docs/x.md",
        "`td_pz_probe_sucess` and `process_open_fd`",
        &["td_pz_probe_sucess", "process_open_fd"],
    );
    // Only histograms have _bucket, _sum and _count series.
    assert_caught(
        "docs/x.md",
        "td_pz_probes_total_count td_pz_probe_duration_seconds_sum",
        &["td_pz_probes_total_count: not"],
    );
    assert_caught(
        "docs/x.md",
        "`td_pz_lg_*` and `td_pz_log_*`",
        &["td_pz_lg_*: no described family starts so"],
    );
    let dashboard = r#"{"panels": [{"targets": [{"expr": "sum(rate(td_pz_polls_totl[5m]))"}]}]}"#;
    assert_caught(
        "dashboards/x.json",
        dashboard,
        &["dashboards/x.json (expr): td_pz_polls_totl: not"],
    );
}

#[test]
fn an_undefined_record_is_caught() {
    let text = "expr: 'pz_service:td_pz_probe_errors:ratio_rate7m > 0.1'\n\
                expr: '{__name__=~\"pz_service:td_pz_probe_slow:ratio_rate.*\"}'\n\
                expr: '{__name__=~\"pz_service:td_pz_probe_slo:ratio_rate.*\"}'\n";
    assert_caught(
        "alerts/tests/x.yaml",
        text,
        &[
            "ratio_rate7m: no `record:`",
            "pz_service:td_pz_probe_slo:ratio_rate",
        ],
    );
}

#[test]
fn a_misspelled_label_is_caught() {
    let rule = "      - alert: X\n        expr: |-\n          sum by (job, pz_servce) (increase(td_pz_probes_total{probe=\"vip\"}[5m]))\n            and on (job, instance, parent_segment, pz_service, probe)\n          td_pz_probe_success == 0\n        for: 5m\n";
    assert_caught("alerts/x.yaml", rule, &["label pz_servce is on no series"]);
    // A matcher after a name names a label of that family, not of another in the expression.
    let expr = "expr: 'td_pz_polls_total{probe=\"vip\"} and td_pz_probes_total'\n";
    assert_caught(
        "alerts/x.yaml",
        expr,
        &["td_pz_polls_total{probe}: no such label"],
    );
    // A record has the labels it aggregates by.
    let expr = "expr: 'pz_service:td_pz_probe_errors:ratio_rate5m{probe=\"vip\"} > 0'\n";
    assert_caught(
        "alerts/x.yaml",
        expr,
        &[
            "ratio_rate5m{probe}: no such label",
            "label probe is on no series",
        ],
    );
    // `le` belongs to the buckets only; target labels to every series.
    let text = "td_pz_probe_duration_seconds_bucket{le=\"0.5\",job=\"x\"} td_pz_probe_duration_seconds_count{le=\"0.5\"}";
    assert_caught(
        "docs/x.md",
        text,
        &["td_pz_probe_duration_seconds_count{le}: no such label"],
    );
    let dashboard =
        r#"{"templating": {"list": [{"query": "label_values(td_pz_polls_total, pz_servic)"}]}}"#;
    assert_caught(
        "dashboards/x.json",
        dashboard,
        &["label pz_servic is on no series of td_pz_polls_total"],
    );
}

#[test]
fn a_drifted_docs_table_is_caught() {
    let docs = read(&root().join("docs/metrics.md"));
    let mut problems = Vec::new();
    let drifted = docs
        .replace(
            "| `td_pz_polls_total` | counter |",
            "| `td_pz_polls_total` | gauge |",
        )
        .replace(
            "| parent_segment, pz_service, probe, section |",
            "| parent_segment, pz_service, section |",
        )
        .replace("| `td_pz_scheduler_jobs` |", "| `td_pz_scheduler_job` |");
    check_docs_tables(&drifted, &mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("td_pz_polls_total is a counter, not a gauge"));
    assert!(problems[1].contains("td_pz_probe_section_info has labels"));
    assert!(problems[2].contains("td_pz_scheduler_jobs has no row"));
}
