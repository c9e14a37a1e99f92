//! The status page's pictures, as inline SVG built with maud: a latency sparkline per target and
//! horizontal section bars per service. No JavaScript, nothing fetched.
//!
//! Every size is fixed, every number drawn is finite (a non-finite or negative input is left out,
//! never drawn), and names go through maud, which escapes them. Each picture carries the numbers
//! it draws in data attributes (`data-points`, `data-at`, `data-share`, `data-count`), written in
//! the shortest form that reads back as the same `f64`, so a test can compare them exactly with
//! `/status.json`. These builders read what they are given and change nothing.

use std::cmp::Ordering;

use maud::{html, Markup};

use crate::history::{Record, SectionCount, SectionShare};
use crate::outcome::unix_of;
use crate::web::display::{ms, truncate};

/// Results drawn in a sparkline on the overview.
pub(super) const SPARK_RUNS: usize = 60;
const SPARK_W: f64 = 180.0;
const SPARK_H: f64 = 32.0;
const PAD: f64 = 3.0;

/// Bars drawn per picture, the largest first; the rest are counted in `data-omitted`.
pub(super) const MAX_BARS: usize = 16;
const BAR_ROW: f64 = 16.0;
const BAR_LABEL: f64 = 120.0;
const BAR_LEN: f64 = 140.0;
const BARS_W: f64 = BAR_LABEL + BAR_LEN + 70.0;

/// `v` when it is a finite number of at least zero.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

fn joined<T>(items: impl Iterator<Item = T>, f: impl Fn(T) -> String) -> String {
    items.map(f).collect::<Vec<_>>().join(",")
}

/// The latency of `recent` (oldest first), one point per run, failed runs marked in red. A run
/// without a (finite) latency has no point on the line; a failed one is marked on the baseline.
pub(super) fn sparkline(target: &str, recent: &[&Record]) -> Markup {
    if recent.is_empty() {
        return html! { span.idle.spark-empty data-target=(target) { "no data" } };
    }
    let values: Vec<Option<f64>> = recent.iter().map(|r| finite(r.duration_seconds)).collect();
    let max = values.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    let scale = if max > 0.0 { max } else { 1.0 };
    let n = recent.len();
    let x = |i: usize| match n {
        1 => SPARK_W / 2.0,
        _ => PAD + i as f64 * (SPARK_W - 2.0 * PAD) / (n - 1) as f64,
    };
    let y = |v: f64| SPARK_H - PAD - v / scale * (SPARK_H - 2.0 * PAD);
    let line: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (x(i), y(v))))
        .collect();
    let fails: Vec<(f64, f64)> = recent
        .iter()
        .zip(&values)
        .enumerate()
        .filter(|(_, (r, _))| !r.ok)
        .map(|(i, (_, v))| (x(i), y(v.unwrap_or(0.0))))
        .collect();
    let label = format!(
        "latency of the last {n} runs: max {}, {} failed",
        ms(Some(max)),
        fails.len()
    );
    let xy = |(x, y): (f64, f64)| format!("{x:.1},{y:.1}");
    html! {
        svg.spark width=(SPARK_W) height=(SPARK_H) viewBox={ "0 0 " (SPARK_W) " " (SPARK_H) }
            role="img" aria-label=(label) data-target=(target)
            data-points=(joined(values.iter(), |v| v.map_or(String::new(), |v| v.to_string())))
            data-ok=(joined(recent.iter(), |r| if r.ok { "1".to_string() } else { "0".to_string() }))
            data-at=(joined(recent.iter(), |r| unix_of(r.at).to_string()))
            data-max=(max) {
            title { (label) }
            line x1="0" x2=(SPARK_W) y1=(SPARK_H - PAD) y2=(SPARK_H - PAD) stroke="#e3e6eb" {}
            @if line.len() > 1 {
                polyline.latency points=(line.iter().map(|p| xy(*p)).collect::<Vec<_>>().join(" "))
                    fill="none" stroke="#1a73e8" stroke-width="1.5" {}
            } @else if let Some((cx, cy)) = line.first() {
                circle.latency cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}")) r="2" fill="#1a73e8" {}
            }
            @for (cx, cy) in &fails {
                circle.fail cx=(format!("{cx:.1}")) cy=(format!("{cy:.1}")) r="2.5" fill="#ea4335" {}
            }
        }
    }
}

/// One bar: a section, its share (0 to 1) and, for probe sections, its count.
struct Bar<'a> {
    section: &'a str,
    share: f64,
    count: Option<u64>,
}

/// The shares of a service's logs window as bars.
pub(super) fn share_bars(service: &str, shares: &[SectionShare]) -> Markup {
    let rows = shares
        .iter()
        .filter(|s| s.share.is_finite() && (0.0..=1.0).contains(&s.share))
        .map(|s| Bar {
            section: &s.section,
            share: s.share,
            count: None,
        })
        .collect();
    bars("shares", service, rows)
}

/// The sections a service's probes landed in, as bars of their share of the counted results.
pub(super) fn probe_bars(service: &str, counts: &[SectionCount]) -> Markup {
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let rows = counts
        .iter()
        .filter(|c| c.count > 0)
        .map(|c| Bar {
            section: &c.section,
            share: c.count as f64 / total as f64,
            count: Some(c.count),
        })
        .collect();
    bars("probe-sections", service, rows)
}

fn bars(kind: &str, service: &str, mut rows: Vec<Bar>) -> Markup {
    if rows.is_empty() {
        return html! { span class={ "idle bars-empty " (kind) } data-service=(service) { "no data" } };
    }
    rows.sort_by(|a, b| {
        b.share
            .partial_cmp(&a.share)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.section.cmp(b.section))
    });
    let omitted = rows.len().saturating_sub(MAX_BARS);
    rows.truncate(MAX_BARS);
    let height = rows.len() as f64 * BAR_ROW;
    html! {
        svg class={ "bars " (kind) } width=(BARS_W) height=(height)
            viewBox={ "0 0 " (BARS_W) " " (height) } role="img"
            aria-label={ (kind) " of " (service) } data-service=(service) data-omitted=(omitted) {
            @for (i, b) in rows.iter().enumerate() {
                @let top = i as f64 * BAR_ROW;
                @let value = match b.count {
                    Some(c) => format!("{c} ({:.0}%)", b.share * 100.0),
                    None => format!("{:.1}%", b.share * 100.0),
                };
                g.bar data-section=(b.section) data-share=(b.share)
                    data-count=[b.count] {
                    title { (b.section) ": " (value) }
                    text x="0" y=(top + 12.0) font-size="11" fill="#1d2330" {
                        (truncate(b.section, 18))
                    }
                    rect x=(BAR_LABEL) y=(top + 3.0) width=(BAR_LEN) height="10" fill="#eef1f5" {}
                    rect x=(BAR_LABEL) y=(top + 3.0) width=(format!("{:.1}", b.share * BAR_LEN))
                        height="10" fill="#1a73e8" {}
                    text x=(BAR_LABEL + BAR_LEN + 6.0) y=(top + 12.0) font-size="11" fill="#5f6368" {
                        (value)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn rec(ok: bool, secs: Option<f64>, at: u64) -> Record {
        Record {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            ok,
            reason: (!ok).then_some("timeout"),
            status: None,
            td_code: None,
            duration_seconds: secs,
            section: None,
            message: String::new(),
        }
    }

    fn draw(recs: &[Record]) -> String {
        sparkline("probe/1/a/vip", &recs.iter().collect::<Vec<_>>()).into_string()
    }

    #[test]
    fn an_empty_history_draws_no_picture() {
        let html = draw(&[]);
        assert_eq!(
            html,
            r#"<span class="idle spark-empty" data-target="probe/1/a/vip">no data</span>"#
        );
    }

    #[test]
    fn one_point_is_a_dot_in_the_middle() {
        let html = draw(&[rec(true, Some(0.012), 100)]);
        assert!(html.contains(r#"data-points="0.012" data-ok="1" data-at="100" data-max="0.012""#));
        assert!(
            html.contains(r#"<circle class="latency" cx="90.0" cy="3.0" r="2""#),
            "{html}"
        );
        assert!(!html.contains("polyline"));
        assert!(!html.contains(r#"class="fail""#));
    }

    #[test]
    fn failures_are_marked_on_the_line_or_the_baseline() {
        let html = draw(&[
            rec(true, Some(0.01), 100),
            rec(false, None, 130),
            rec(false, Some(0.02), 160),
        ]);
        assert!(html.contains(
            r#"data-points="0.01,,0.02" data-ok="1,0,0" data-at="100,130,160" data-max="0.02""#
        ));
        assert!(html.contains(r#"<polyline class="latency" points="3.0,16.0 177.0,3.0""#));
        // The failure without a latency sits on the baseline, the other on its point.
        assert!(
            html.contains(r#"<circle class="fail" cx="90.0" cy="29.0" r="2.5""#),
            "{html}"
        );
        assert!(html.contains(r#"<circle class="fail" cx="177.0" cy="3.0" r="2.5""#));
        assert_eq!(html.matches(r#"class="fail""#).count(), 2);
        assert!(html.contains("max 20.0 ms, 2 failed"));
    }

    #[test]
    fn non_finite_numbers_never_reach_the_picture() {
        let html = draw(&[
            rec(true, Some(f64::NAN), 100),
            rec(true, Some(f64::INFINITY), 130),
            rec(true, Some(-1.0), 160),
            rec(true, Some(0.5), 190),
        ]);
        assert!(html.contains(r#"data-points=",,,0.5""#), "{html}");
        assert!(html.contains(r#"data-max="0.5""#));
        let shares = [
            ("a", f64::NAN),
            ("b", f64::INFINITY),
            ("c", 1.5),
            ("d", 0.25),
        ]
        .map(|(s, v)| SectionShare {
            section: s.into(),
            share: v,
        });
        let bars = share_bars("1/a", &shares).into_string();
        assert_eq!(bars.matches(r#"<g class="bar""#).count(), 1, "{bars}");
        assert!(bars.contains(r#"data-section="d" data-share="0.25""#));
        for html in [&html, &bars] {
            for bad in ["NaN", "inf", "-1"] {
                assert!(!html.contains(bad), "{bad} in {html}");
            }
        }
        // Only non-finite shares: nothing to draw.
        assert!(share_bars("1/a", &shares[..3])
            .into_string()
            .contains("no data"));
    }

    #[test]
    fn probe_sections_are_bars_of_their_share_largest_first() {
        let counts = [("a", 1), ("b", 3), ("none", 0)].map(|(s, n)| SectionCount {
            section: s.into(),
            count: n,
        });
        let html = probe_bars("1/svc", &counts).into_string();
        assert!(html.starts_with(r#"<svg class="bars probe-sections" width="330" height="32""#));
        let b = html.find(r#"data-section="b" data-share="0.75" data-count="3""#);
        let a = html.find(r#"data-section="a" data-share="0.25" data-count="1""#);
        assert!(b.is_some() && a.is_some() && b < a, "{html}");
        assert!(html.contains(r#"width="105.0""#), "0.75 of 140: {html}");
        assert!(html.contains("3 (75%)"));
        assert!(!html.contains(r#""none""#));
        assert!(probe_bars("1/svc", &[]).into_string().contains("no data"));
    }

    #[test]
    fn at_most_max_bars_are_drawn() {
        let shares: Vec<SectionShare> = (0..20)
            .map(|i| SectionShare {
                section: format!("s{i:02}"),
                share: 0.05,
            })
            .collect();
        let html = share_bars("1/a", &shares).into_string();
        assert_eq!(html.matches(r#"<g class="bar""#).count(), MAX_BARS);
        assert!(html.contains(r#"data-omitted="4""#));
        // Equal shares go by name.
        assert!(html.contains(r#"data-section="s00""#) && !html.contains(r#"data-section="s19""#));
    }

    #[test]
    fn section_names_are_escaped() {
        const HOSTILE: &str = r#"<script>alert("x")</script>'&"#;
        const ESCAPED: &str = r#"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'&amp;"#;
        let shares = [SectionShare {
            section: HOSTILE.into(),
            share: 1.0,
        }];
        let counts = [SectionCount {
            section: HOSTILE.into(),
            count: 2,
        }];
        for html in [
            share_bars(HOSTILE, &shares).into_string(),
            probe_bars(HOSTILE, &counts).into_string(),
            sparkline(HOSTILE, &[&rec(true, Some(0.1), 1)]).into_string(),
        ] {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains(r#"alert("x")"#), "{html}");
            assert!(html.contains(&format!(r#"{ESCAPED}""#)), "{html}");
        }
        let html = share_bars(HOSTILE, &shares).into_string();
        // The service in the label and data attribute, the section in its data attribute and
        // title; the drawn label is cut to 18 characters.
        assert_eq!(html.matches(ESCAPED).count(), 4, "{html}");
        assert!(html.contains(r#">&lt;script&gt;alert(&quot;x&quot;)…</text>"#));
    }
}
