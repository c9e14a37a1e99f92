//! Plain-text formatting for the status page: latencies, ages, UTC times, shortened messages.
//!
//! Text only, no markup: the templates in [`super::page`] escape whatever these return.

use std::time::{Duration, SystemTime};

/// A duration in seconds as milliseconds with one decimal (`12.3 ms`), or `-` when there is none.
pub fn ms(d: Option<f64>) -> String {
    match d {
        Some(s) => format!("{:.1} ms", s * 1000.0),
        None => "-".into(),
    }
}

/// How long ago `t` was, in its largest whole unit: `42s ago`, `5m ago`, `3h ago`.
pub fn age(t: SystemTime) -> String {
    age_at(t, SystemTime::now())
}

fn age_at(t: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(t).unwrap_or(Duration::ZERO).as_secs();
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

/// `2026-11-29 13:04:05`, for tooltips beside the relative times.
pub fn utc(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The first `n` characters of `s`, with `…` when some were cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// The message without its leading `reason: `, where the reason is shown beside it.
pub fn strip_reason<'a>(message: &'a str, reason: Option<&str>) -> &'a str {
    reason
        .and_then(|r| message.strip_prefix(r))
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_with_one_decimal() {
        assert_eq!(ms(Some(0.01234)), "12.3 ms");
        assert_eq!(ms(Some(1.5)), "1500.0 ms");
        assert_eq!(ms(None), "-");
    }

    #[test]
    fn ages_in_their_largest_whole_unit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |s| age_at(now - Duration::from_secs(s), now);
        assert_eq!(ago(0), "0s ago");
        assert_eq!(ago(59), "59s ago");
        assert_eq!(ago(60), "1m ago");
        assert_eq!(ago(3599), "59m ago");
        assert_eq!(ago(7300), "2h ago");
        // A time in the future (a clock step) reads as now.
        assert_eq!(age_at(now + Duration::from_secs(5), now), "0s ago");
    }

    #[test]
    fn utc_times() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_957_445);
        assert_eq!(utc(t), "2026-11-29 13:04:05");
    }

    #[test]
    fn long_messages_are_cut_at_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 2), "hé…");
    }

    #[test]
    fn the_reason_is_not_repeated() {
        assert_eq!(
            strip_reason("timeout: no answer in 5s", Some("timeout")),
            "no answer in 5s"
        );
        assert_eq!(
            strip_reason("timeout: x", Some("unavailable")),
            "timeout: x"
        );
        assert_eq!(strip_reason("plain", None), "plain");
    }
}
