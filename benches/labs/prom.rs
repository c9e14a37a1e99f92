//! Reading a `/metrics` scrape: the samples of the families a lab names, sums over label matches,
//! the series by the identity they carry (probe target, service, the exporter's own), and the fire
//! lateness between two scrapes as Prometheus' `histogram_quantile()` over the increase.

use std::collections::HashSet;

pub const NAMES: &[&str] = &[
    "td_pz_scheduler_lateness_seconds_bucket",
    "td_pz_schedule_skipped_total",
    "td_pz_probes_total",
    "td_pz_probe_failures_total",
    "td_pz_polls_total",
    "td_pz_poll_failures_total",
    "td_pz_scheduler_jobs",
    "td_pz_scheduler_runs_in_flight",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
];

/// (name, labels as written between the braces, value) of each sample in `NAMES`.
pub struct Samples(Vec<(String, String, f64)>);

impl Samples {
    pub fn parse(text: &str) -> Samples {
        let sample = |(name, labels, value): (&str, &str, &str)| {
            let value = if value == "+Inf" {
                f64::INFINITY
            } else {
                value.parse().ok()?
            };
            NAMES
                .contains(&name)
                .then(|| (name.to_owned(), labels.to_owned(), value))
        };
        Samples(sample_lines(text).filter_map(sample).collect())
    }

    /// The sum of `name` over the series whose labels match `matching`.
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.matching(name, matching).map(|(_, v)| v).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        m: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0
            .iter()
            .filter(move |(n, l, _)| {
                n == name && m.iter().all(|(k, w)| label(l, k).as_deref() == Some(*w))
            })
            .map(|(_, l, v)| (l.as_str(), *v))
    }

    /// [(le, cumulative count)] of a histogram's `_bucket` samples, summed over the series matching.
    fn buckets(&self, name: &str, matching: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let mut acc: Vec<(f64, f64)> = Vec::new();
        for (labels, v) in self.matching(name, matching) {
            let le = label(labels, "le").map_or(f64::NAN, |x| {
                if x == "+Inf" {
                    f64::INFINITY
                } else {
                    x.parse().unwrap_or(f64::NAN)
                }
            });
            match acc.iter_mut().find(|(l, _)| *l == le) {
                Some(b) => b.1 += v,
                None => acc.push((le, v)),
            }
        }
        acc.sort_by(|a, b| a.0.total_cmp(&b.0));
        acc
    }
}

/// (name, labels as written between the braces, value) of each sample line of an exposition.
fn sample_lines(text: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            Some((name, labels, value))
        })
}

/// The series Prometheus adds to every scrape target: `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
pub const SCRAPE_SERIES: usize = 5;

/// The series of one scrape by the identity they carry: `probe`, those with a `probe` label; `service`,
/// those with `pz_service`/`parent_segment` and no `probe`; `own`, the exporter's (neither). An empty
/// label value counts as absent, as in Prometheus.
#[derive(Default)]
pub struct Series {
    pub probe: usize,
    pub service: usize,
    pub own: usize,
    pub targets: usize,
    pub services: usize,
}

impl Series {
    pub fn count(text: &str) -> Series {
        let (mut s, mut targets, mut services) =
            (Series::default(), HashSet::new(), HashSet::new());
        for (_, labels, _) in sample_lines(text) {
            let [ps, svc, probe] = ["parent_segment", "pz_service", "probe"]
                .map(|k| label(labels, k).filter(|v| !v.is_empty()));
            match (&ps, &svc, probe) {
                (None, None, None) => s.own += 1,
                (_, _, None) => s.service += 1,
                (_, _, Some(probe)) => {
                    s.probe += 1;
                    targets.insert((ps.clone(), svc.clone(), probe));
                }
            }
            if ps.is_some() || svc.is_some() {
                services.insert((ps, svc));
            }
        }
        (s.targets, s.services) = (targets.len(), services.len());
        s
    }

    /// The sample lines of the scrape.
    pub fn total(&self) -> usize {
        self.probe + self.service + self.own
    }

    /// Per probe target, the mean over the targets of: the series with its `probe` label, its
    /// service's / the service's probes, (the exporter's own + `SCRAPE_SERIES`) / the targets.
    pub fn per_target(&self) -> [f64; 3] {
        let n = self.targets.max(1) as f64;
        [self.probe, self.service, self.own + SCRAPE_SERIES].map(|x| x as f64 / n)
    }
}

/// The value of label `key` in `k="v",...`, unescaped.
fn label(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"")?;
        let (mut value, mut chars) = (String::new(), after.char_indices());
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(
                    chars
                        .next()
                        .map_or('\\', |(_, c)| if c == 'n' { '\n' } else { c }),
                ),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        if k.trim_start_matches(',') == key {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
    None
}

/// Prometheus' histogram_quantile over [(le, cumulative count)] (le may be +Inf).
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last().filter(|b| b.1 > 0.0) else {
        return f64::NAN;
    };
    let (rank, mut prev) = (q * total, (0.0, 0.0));
    for &(le, c) in buckets {
        if c >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            return if c == prev.1 {
                le
            } else {
                prev.0 + (le - prev.0) * (rank - prev.1) / (c - prev.1)
            };
        }
        prev = (le, c);
    }
    buckets[buckets.len() - 1].0
}

/// Fire lateness between two scrapes: (p50, p99, fires, capped: p99 falls in +Inf), in seconds.
pub fn late(s0: &Samples, s1: &Samples, poller: Option<&str>) -> (f64, f64, f64, bool) {
    let m: Vec<(&str, &str)> = poller.map(|p| ("poller", p)).into_iter().collect();
    let name = "td_pz_scheduler_lateness_seconds_bucket";
    let before = s0.buckets(name, &m);
    let d: Vec<(f64, f64)> = s1
        .buckets(name, &m)
        .into_iter()
        .map(|(le, c)| {
            (
                le,
                c - before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1),
            )
        })
        .collect();
    let n = d.last().map_or(0.0, |b| b.1);
    let capped = d.len() > 1 && d[d.len() - 2].1 < 0.99 * n;
    (
        histogram_quantile(0.5, &d),
        histogram_quantile(0.99, &d),
        n,
        capped,
    )
}

/// Seconds as milliseconds; `>=` marks a rank in +Inf.
pub fn ms(v: f64, capped: bool) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{}{:.1} ms", if capped { ">= " } else { "" }, v * 1000.0)
    }
}
