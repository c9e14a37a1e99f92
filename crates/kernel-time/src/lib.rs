//! The kernel's clocks: when bytes reached a socket, and a timer finer than tokio's.
//!
//! A thread parked on a virtual machine can take from a few hundred microseconds to a few
//! milliseconds to wake. Timed in user space, that wake-up is added to whatever is measured. A
//! [`Stamped`] TCP stream asks for `SO_TIMESTAMPNS` and reads with `recvmsg`, so each read leaves
//! the kernel's receive time in an [`RxClock`]:
//!
//! - the simulator counts an injected latency from the arrival of the request
//!   ([`RxClock::take`]), not from when its thread got round to it;
//! - the TD client ends a request's clock at the arrival of the answer's last bytes
//!   ([`RxClock::last_read`]), not at the wake-up that read them, and on a reused connection starts
//!   it at the write that sent the request ([`RxClock::request_sent`]), not when the request was
//!   queued for the connection's task.
//!
//! [`hr_sleep`] is the other half of the simulator's precise delays: a kernel timer that does not
//! round to tokio's millisecond ticks.
//!
//! Both need Linux (`SO_TIMESTAMPNS`, `timerfd`). Elsewhere the crate compiles to what they stand
//! in for: a plain stream whose clock has no receive times ([`RxClock::take`] answers "now",
//! [`RxClock::last_read`] `None`) and tokio's timer.
//!
//! It owns the sockets' clocks only: what is timed, and what a time means, is the callers'.

mod stream;
#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod sys;
#[cfg(not(target_os = "linux"))]
#[path = "portable.rs"]
mod sys;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use stream::Stamped;
pub use sys::{hr_sleep, prepare};

/// Receive times of a connection's reads, shared by the connection and whoever times it.
#[derive(Clone, Debug, Default)]
pub struct RxClock(Arc<Stamps>);

#[derive(Debug, Default)]
struct Stamps {
    /// The first read since the last [`RxClock::take`], in ns since the epoch; 0 when none.
    first: AtomicU64,
    /// The latest read that returned bytes; 0 before any.
    last: AtomicU64,
    /// The first write after a read (a request follows its predecessor's answer), in ns since
    /// [`base`] plus one; 0 before any.
    sent: AtomicU64,
    wrote_since_read: AtomicBool,
}

/// The origin of the `sent` stamps: they are the process's own monotonic time.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl RxClock {
    /// When the first bytes read since the last call reached the socket, or now when the kernel
    /// gave no timestamp. Resets, so the next request's first read sets it again.
    pub fn take(&self) -> Instant {
        let now = Instant::now();
        to_instant(self.0.first.swap(0, Ordering::Relaxed), now).unwrap_or(now)
    }

    /// When the bytes of the latest read reached the socket; `None` before the kernel gave a
    /// timestamp (or when the wall clock stepped since).
    pub fn last_read(&self) -> Option<Instant> {
        to_instant(self.0.last.load(Ordering::Relaxed), Instant::now())
    }

    /// When the request being answered was written to the socket: the first write after the
    /// previous answer was read. `None` before any write.
    pub fn request_sent(&self) -> Option<Instant> {
        match self.0.sent.load(Ordering::Relaxed) {
            0 => None,
            ns => base().checked_add(Duration::from_nanos(ns - 1)),
        }
    }

    pub(crate) fn note(&self, rx_ns: u64) {
        let _ = self
            .0
            .first
            .compare_exchange(0, rx_ns, Ordering::Relaxed, Ordering::Relaxed);
        self.0.last.store(rx_ns, Ordering::Relaxed);
        self.0.wrote_since_read.store(false, Ordering::Relaxed);
    }

    pub(crate) fn note_write(&self, at: Instant) {
        if !self.0.wrote_since_read.swap(true, Ordering::Relaxed) {
            let ns = at.saturating_duration_since(base()).as_nanos() as u64;
            self.0.sent.store(ns.saturating_add(1), Ordering::Relaxed);
        }
    }
}

/// A kernel timestamp (wall clock, ns since the epoch) as an `Instant`, by its age now.
fn to_instant(rx_ns: u64, now: Instant) -> Option<Instant> {
    let wall_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    match wall_ns.checked_sub(rx_ns) {
        // A stamp more than a minute old, or in the future, means the wall clock stepped.
        Some(ago) if rx_ns != 0 && ago < 60_000_000_000 => {
            now.checked_sub(Duration::from_nanos(ago))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hr_sleep_never_wakes_early() {
        for ms in [0u64, 1, 3, 7] {
            let d = Duration::from_micros(ms * 1000 + 300);
            let t = Instant::now();
            hr_sleep(d).await.unwrap();
            let took = t.elapsed();
            assert!(took >= d, "{d:?} slept only {took:?}");
            assert!(took < d + Duration::from_millis(500), "{d:?} took {took:?}");
        }
    }

    #[test]
    fn a_write_after_a_read_stamps_the_next_request_once() {
        let clock = RxClock::default();
        assert_eq!(clock.request_sent(), None);
        // After `base()` is set by the first write, so that the stamp is exact.
        let first = Instant::now() + Duration::from_millis(5);
        clock.note_write(first);
        clock.note_write(first + Duration::from_millis(3));
        let sent = clock.request_sent().expect("a stamp");
        assert!(sent.saturating_duration_since(first) < Duration::from_micros(1));
        // A read ends the request; the next write starts the next one.
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        clock.note(wall_ns);
        let second = first + Duration::from_millis(10);
        clock.note_write(second);
        let sent = clock.request_sent().expect("a stamp");
        assert!(sent.saturating_duration_since(second) < Duration::from_micros(1));
        assert!(second.saturating_duration_since(sent) < Duration::from_micros(1));
    }
}
