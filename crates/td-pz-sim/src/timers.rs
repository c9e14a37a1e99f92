//! Holding an answer until its due time to within a few microseconds (latency faults).
//!
//! Owns only the waiting; what is held and why is decided by [`super::faults`], and how
//! precisely it was held is kept by [`super::state::SimState::note_hold`].

use std::time::{Duration, Instant};

/// How long before a held answer's due time the simulator stops sleeping and starts yielding:
/// more than a usual wake-up, so that only a rare slow one makes the answer late.
const SPIN_MARGIN: Duration = Duration::from_micros(1500);

/// Waits until `until` to within a few microseconds, and returns when its coarse sleep ended (for
/// `/_sim/holds`). tokio's timer has millisecond ticks and rounds a sleep up to the next one, and a
/// thread's wake-up on a virtual machine now and then takes a millisecond or more, so the wait is
/// a high-resolution kernel timer ([`kernel_time::hr_sleep`]) to [`SPIN_MARGIN`] before `until`,
/// then yields until it. The timing benchmark (scripts/bench-timing.sh) measures the exporter
/// against this delay.
pub(super) async fn precise_delay_until(until: Instant) -> Instant {
    let now = Instant::now();
    if let Some(coarse) = until
        .checked_duration_since(now)
        .and_then(|d| d.checked_sub(SPIN_MARGIN))
    {
        if kernel_time::hr_sleep(coarse).await.is_err() {
            // No timerfd: tokio's timer, with room for its rounding.
            let until_coarse = until.checked_sub(Duration::from_millis(2)).unwrap_or(now);
            if let Some(d) = until_coarse.checked_duration_since(now) {
                tokio::time::sleep(d).await;
            }
        }
    }
    let woke = Instant::now();
    while Instant::now() < until {
        tokio::task::yield_now().await;
    }
    woke
}
