//! The checker of `tests/metric_names.rs`: finds metric names, label names and PromQL
//! expressions in texts and checks them against the catalog and the rules' records.

use std::collections::{BTreeMap, BTreeSet};

use td_pz_exporter::metrics::catalog::{self, Family, Kind, Source};

pub const RULES: &str = "alerts/td-pz-rules.yaml";
/// Labels the scraper adds to every series (docs/metrics.md), and the name label.
const TARGET_LABELS: &[&str] = &["job", "instance", "service", "region", "__name__"];
/// PromQL clauses whose parentheses hold label names.
const LABEL_CLAUSES: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Recording rules of [`RULES`], with the label names their series can carry.
pub type Records = BTreeMap<String, BTreeSet<String>>;

/// A metric name used in a text, and what follows it.
#[derive(Debug)]
pub struct Use<'a> {
    pub name: &'a str,
    /// Followed by `*`, `.*` or `<`: a prefix of names.
    prefix: bool,
    /// The text between the braces that follow it, if any.
    matchers: Option<&'a str>,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Every metric name in `text`.
pub fn uses(text: &str) -> Vec<Use<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_word(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_word(b[i]) {
            i += 1;
        }
        let name = text[start..i].trim_end_matches(':');
        let ours = match name.find("td_pz_") {
            Some(0) => true,
            Some(at) => name[..at].ends_with(':'),
            None => name.starts_with("process_"),
        };
        if !ours || name == "td_pz_" || name == "process_" {
            continue;
        }
        let rest = &text[start + name.len()..];
        let prefix = rest.starts_with('*') || rest.starts_with(".*") || rest.starts_with('<');
        let matchers = match rest.strip_prefix('{') {
            Some(inner) if !prefix && !inner.starts_with('{') => braced(inner),
            _ => None,
        };
        out.push(Use {
            name,
            prefix,
            matchers,
        });
    }
    out
}

/// The text up to the `}` that closes a brace already opened, quoted strings skipped.
fn braced(s: &str) -> Option<&str> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (_, _) if escaped => escaped = false,
            (_, '\\') => escaped = true,
            (None, '"' | '\'' | '`') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '}') => return Some(&s[..i]),
            _ => {}
        }
    }
    None
}

/// `text` with the content of every quoted string removed (`"a{b}"` becomes `""`).
fn without_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => {}
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The label names of matchers (`a="x", b=~"y"`, or bare names as docs write them).
fn matcher_labels(matchers: &str) -> Vec<String> {
    let plain = without_strings(&matchers.replace("\\\"", "\""));
    plain
        .split(',')
        .map(ident)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// The label names in the `clauses` (`by (...)`, `without (...)`, `on (...)` and the like).
fn clause_labels(expr: &str, clauses: &[&str]) -> Vec<String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    for kw in clauses {
        for (at, _) in expr.match_indices(kw) {
            let end = at + kw.len();
            if (at > 0 && is_word(b[at - 1])) || (end < b.len() && is_word(b[end])) {
                continue;
            }
            let Some(inner) = expr[end..].trim_start().strip_prefix('(') else {
                continue;
            };
            let inner = &inner[..inner.find(')').unwrap_or(inner.len())];
            out.extend(
                inner
                    .split(',')
                    .map(ident)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
    }
    out
}

/// The label names a name's series can carry, or why the name is not one the catalog or the
/// rules define.
fn labels_of(u: &Use, records: &Records) -> Result<BTreeSet<String>, String> {
    let name = u.name;
    if name.contains(':') {
        let found = records
            .keys()
            .any(|r| r == name || (u.prefix && r.starts_with(name)));
        return match records.get(name) {
            Some(labels) => Ok(labels.clone()),
            None if found => Ok(BTreeSet::new()),
            None => Err(format!("{name}: no `record:` in {RULES} defines it")),
        };
    }
    if u.prefix {
        return match catalog::ALL.iter().any(|f| f.name.starts_with(name)) {
            true => Ok(BTreeSet::new()),
            false => Err(format!("{name}*: no described family starts so")),
        };
    }
    let family: &Family =
        catalog::family_of(name).ok_or_else(|| format!("{name}: not a described family"))?;
    let mut labels: BTreeSet<String> = family.labels.iter().map(|l| l.to_string()).collect();
    if family.kind == Kind::Histogram && name.ends_with("_bucket") {
        labels.insert("le".into());
    }
    Ok(labels)
}

fn allowed(mut labels: BTreeSet<String>) -> BTreeSet<String> {
    labels.extend(TARGET_LABELS.iter().map(|l| l.to_string()));
    labels
}

/// Checks every name of `text`, and the label names of the matchers that follow it.
fn check_names(place: &str, text: &str, records: &Records, problems: &mut Vec<String>) {
    for u in uses(text) {
        match labels_of(&u, records) {
            Err(e) => problems.push(format!("{place}: {e}")),
            Ok(labels) if !u.prefix => {
                let ok = allowed(labels);
                for l in u.matchers.map(matcher_labels).unwrap_or_default() {
                    if !ok.contains(&l) {
                        problems.push(format!("{place}: {}{{{l}}}: no such label", u.name));
                    }
                }
            }
            Ok(_) => {}
        }
    }
}

/// The labels the series of the names in a PromQL expression carry (target labels aside).
fn expr_labels(expr: &str, records: &Records) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for u in uses(expr) {
        labels.extend(labels_of(&u, records).unwrap_or_default());
    }
    labels
}

/// Checks that every label an expression groups, joins or matches on is one of the names in it.
/// Expressions that make labels (`label_replace`, `label_join`) or read `ALERTS` are skipped.
fn check_expr(place: &str, expr: &str, records: &Records, problems: &mut Vec<String>) {
    if ["label_replace", "label_join", "ALERTS"]
        .iter()
        .any(|f| expr.contains(f))
    {
        return;
    }
    let ok = allowed(expr_labels(expr, records));
    let plain = without_strings(expr);
    let mut used = clause_labels(&plain, LABEL_CLAUSES);
    for (at, _) in plain.match_indices('{') {
        used.extend(
            braced(&plain[at + 1..])
                .map(matcher_labels)
                .unwrap_or_default(),
        );
    }
    for l in used {
        if !ok.contains(&l) {
            problems.push(format!(
                "{place}: label {l} is on no series of `{}`",
                expr.trim()
            ));
        }
    }
}

/// The value of every `expr:` key of a YAML text (plain, quoted or a block), unquoted.
pub fn yaml_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start().trim_start_matches("- ");
        let Some(value) = body.strip_prefix("expr:") else {
            continue;
        };
        let indent = line.len() - body.len();
        let value = value.trim();
        let expr = if value.starts_with('|') || value.starts_with('>') {
            let block = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent);
            block.copied().collect::<Vec<_>>().join("\n")
        } else if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'').unwrap_or(v).replace("''", "'")
        } else if let Some(v) = value.strip_prefix('"') {
            v.strip_suffix('"').unwrap_or(v).replace("\\\"", "\"")
        } else {
            value.to_string()
        };
        out.push(expr);
    }
    out
}

/// The recording rules of a rules file and the labels of their series: those its expression
/// aggregates `by`, or with no `by` those of the names in it (which may be earlier records).
pub fn records(rules: &str) -> Records {
    let mut out = Records::new();
    let exprs = yaml_exprs(rules);
    let mut exprs = exprs.iter();
    for line in rules.lines() {
        let body = line.trim_start().trim_start_matches("- ");
        if body.starts_with("alert:") {
            exprs.next();
        } else if let Some(name) = body.strip_prefix("record:") {
            let expr = exprs.next().map(String::as_str).unwrap_or_default();
            let plain = without_strings(expr);
            let by = clause_labels(&plain, &["by"]);
            let labels = match by.is_empty() || plain.contains("without") {
                true => expr_labels(expr, &out),
                false => by.into_iter().collect(),
            };
            out.insert(name.trim().trim_matches(['\'', '"']).to_string(), labels);
        }
    }
    out
}

/// Every string of a JSON document, with the key it is the value of.
fn json_strings<'a>(v: &'a serde_json::Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        serde_json::Value::String(s) => out.push((key, s)),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, key, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| json_strings(x, k, out)),
        _ => {}
    }
}

/// Checks a file's text; `path` says how to read it (`.json`: a dashboard; `.yaml`/`.yml`: the
/// `expr:` values are PromQL; anything else: text).
pub fn check_file(path: &str, text: &str, records: &Records, problems: &mut Vec<String>) {
    if path.ends_with(".json") {
        let doc: serde_json::Value = match serde_json::from_str(text) {
            Ok(d) => d,
            Err(e) => return problems.push(format!("{path}: not JSON: {e}")),
        };
        let mut strings = Vec::new();
        json_strings(&doc, "", &mut strings);
        for (key, s) in strings {
            let place = format!("{path} ({key})");
            check_names(&place, s, records, problems);
            if key == "expr" {
                check_expr(&place, s, records, problems);
            }
            if let Some(args) = s.strip_prefix("label_values(") {
                let (series, label) = args.rsplit_once(',').unwrap_or(("", args));
                let label = ident(label);
                if !allowed(expr_labels(series, records)).contains(label) {
                    problems.push(format!(
                        "{place}: label {label} is on no series of {series}"
                    ));
                }
            }
        }
        return;
    }
    check_names(path, text, records, problems);
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        for expr in yaml_exprs(text) {
            check_expr(path, &expr, records, problems);
        }
    }
}

/// Checks docs/metrics.md's tables: each family's row has its type and labels, and every
/// family has a row (the process collector's under `process_*`).
pub fn check_docs_tables(text: &str, problems: &mut Vec<String>) {
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, name, kind, labels, ..] = cells[..] {
            rows.insert(name.trim_matches('`'), (kind, labels));
        }
    }
    for f in catalog::ALL {
        let row = match f.source {
            Source::Process => "process_*",
            _ => f.name,
        };
        let Some((kind, labels)) = rows.get(row) else {
            problems.push(format!("docs/metrics.md: {} has no row", f.name));
            continue;
        };
        if f.source == Source::Process {
            continue;
        }
        if *kind != f.kind.as_str() {
            problems.push(format!(
                "docs/metrics.md: {} is a {}, not a {kind}",
                f.name,
                f.kind.as_str()
            ));
        }
        let documented: BTreeSet<&str> = labels
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let described: BTreeSet<&str> = f.labels.iter().copied().collect();
        if documented != described {
            problems.push(format!(
                "docs/metrics.md: {} has labels {described:?}, not {documented:?}",
                f.name
            ));
        }
    }
}
