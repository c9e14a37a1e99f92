//! The per-service request budget: at most N requests to one TD service in any one-second window.
//!
//! Probes and pollers of a service share one [`Budget`]. It also holds a pause set by a 429's
//! `Retry-After`, during which nothing is sent to that service. It only waits; it never sends.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Extra spacing beyond one second, so that requests still fit the window when they reach the
/// server with a few milliseconds of scheduling or network jitter.
const WINDOW: Duration = Duration::from_millis(1050);

#[derive(Debug)]
pub struct Budget {
    per_second: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Start times granted so far (some may lie in the future), oldest first.
    granted: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Budget {
    pub fn new(per_second: u32) -> Self {
        Budget {
            per_second: per_second.max(1) as usize,
            state: Mutex::new(State::default()),
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second as u32
    }

    /// Reserves the earliest start time that keeps every window within the budget, and
    /// returns it. Call [`Budget::acquire`] to also wait for it.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut st = self.state.lock();
        let mut at = now;
        if let Some(p) = st.paused_until {
            if p > at {
                at = p;
            } else {
                st.paused_until = None;
            }
        }
        if st.granted.len() >= self.per_second {
            let nth = st.granted[st.granted.len() - self.per_second];
            at = at.max(nth + WINDOW);
        }
        if let Some(last) = st.granted.back() {
            at = at.max(*last);
        }
        st.granted.push_back(at);
        // Keep only what can still matter for a later reservation.
        while st.granted.len() > self.per_second {
            match st.granted.front() {
                Some(f) if *f + WINDOW <= now => {
                    st.granted.pop_front();
                }
                _ => break,
            }
        }
        at
    }

    pub async fn acquire(&self) {
        let at = self.reserve();
        // tokio rounds a deadline up to its next millisecond tick, so sleeping until "now" would
        // hold every request up to a millisecond for nothing.
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Sends nothing to this service before `now + d` (a 429's `Retry-After`).
    pub fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut st = self.state.lock();
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
    }

    pub fn paused_for(&self) -> Option<Duration> {
        let st = self.state.lock();
        st.paused_until
            .and_then(|p| p.checked_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_window_holds_more_than_the_budget() {
        let b = Budget::new(5);
        let start = Instant::now();
        let times: Vec<Duration> = (0..20).map(|_| b.reserve() - start).collect();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} requests in the second from {t:?}"
            );
        }
        // 20 requests at 5/s: the last starts after 3 windows.
        assert_eq!(times[19], WINDOW * 3);
        assert_eq!(times[4], Duration::ZERO);
        assert_eq!(times[5], WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_delays_the_next_request() {
        let b = Budget::new(100);
        let start = Instant::now();
        b.pause_for(Duration::from_secs(3));
        assert_eq!(b.reserve() - start, Duration::from_secs(3));
    }
}
