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

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

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

    fn note(&self, rx_ns: u64) {
        let _ = self
            .0
            .first
            .compare_exchange(0, rx_ns, Ordering::Relaxed, Ordering::Relaxed);
        self.0.last.store(rx_ns, Ordering::Relaxed);
        self.0.wrote_since_read.store(false, Ordering::Relaxed);
    }

    fn note_write(&self, at: Instant) {
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

/// Asks for receive timestamps on the listening socket, so that the kernel (which switches
/// timestamping on lazily, from a work queue) is ready before the first request comes.
pub fn prepare(listener: &tokio::net::TcpListener) {
    let _ = setsockopt(listener, sockopt::ReceiveTimestampns, &true);
}

/// Sleeps `d` on a timerfd: a high-resolution kernel timer that wakes the task through tokio's IO
/// driver, where `tokio::time` rounds every deadline up to its next millisecond tick.
pub async fn hr_sleep(d: Duration) -> io::Result<()> {
    if d.is_zero() {
        return Ok(());
    }
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(d)),
        TimerSetTimeFlags::empty(),
    )?;
    // SAFETY: the descriptor is moved into the AsyncFd, which deregisters it before closing it,
    // and nothing else holds it.
    let fd = unsafe { AsyncFd::register_with_interest(OwnedFd::from(timer), Interest::READABLE)? };
    let _ready = fd.readable().await?;
    Ok(())
}

/// A TCP stream whose reads note the kernel's receive timestamp in an [`RxClock`].
#[derive(Debug)]
pub struct Stamped {
    io: TcpStream,
    clock: RxClock,
    /// False when the socket refused `SO_TIMESTAMPNS`: plain reads, and handlers use "now".
    stamped: bool,
}

impl Stamped {
    pub fn new(io: TcpStream) -> (Stamped, RxClock) {
        let stamped = setsockopt(&io, sockopt::ReceiveTimestampns, &true).is_ok();
        let clock = RxClock::default();
        (
            Stamped {
                io,
                clock: clock.clone(),
                stamped,
            },
            clock,
        )
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.io
    }

    pub fn clock(&self) -> &RxClock {
        &self.clock
    }
}

/// One `recvmsg` into `buf`: the bytes read and the kernel's receive time in ns since the epoch.
fn recv_stamped(fd: i32, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let msg =
        recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty()).map_err(io::Error::from)?;
    let rx = msg.cmsgs().ok().and_then(|mut it| {
        it.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => u64::try_from(ts.tv_sec()).ok().map(|s| {
                s.saturating_mul(1_000_000_000)
                    .saturating_add(ts.tv_nsec() as u64)
            }),
            _ => None,
        })
    });
    Ok((msg.bytes, rx))
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.stamped {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        loop {
            ready!(this.io.poll_read_ready(cx))?;
            let fd = this.io.as_raw_fd();
            let unfilled = buf.initialize_unfilled();
            match this
                .io
                .try_io(Interest::READABLE, || recv_stamped(fd, unfilled))
            {
                Ok((n, rx)) => {
                    buf.advance(n);
                    if let (true, Some(rx)) = (n > 0, rx) {
                        this.clock.note(rx);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl Stamped {
    /// Notes the time just before a write that sent bytes.
    fn wrote(&self, at: Instant, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.clock.note_write(at);
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = Instant::now();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(at, &polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = Instant::now();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(at, &polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_read_leaves_the_arrival_time_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut server, clock) = Stamped::new(server);
        assert!(server.stamped, "loopback TCP takes SO_TIMESTAMPNS");
        // The first socket to ask switches the kernel's timestamping on from a work queue.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let sent = Instant::now();
        client.write_all(b"hello").await.unwrap();
        // The bytes wait in the socket while the reader is "busy".
        std::thread::sleep(Duration::from_millis(30));
        let mut buf = [0u8; 16];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        let arrived = clock.take();
        // The arrival is the kernel's, ~30 ms before the read, not the read itself.
        let lag = Instant::now() - arrived;
        assert!(lag >= Duration::from_millis(25), "arrival only {lag:?} ago");
        assert!(
            arrived >= sent - Duration::from_millis(5),
            "arrival before the send"
        );

        // Taken: with nothing read since, the clock answers "now".
        let again = clock.take();
        assert!(Instant::now() - again < Duration::from_millis(5));

        // The latest read's arrival, not the wake-up that read it.
        let before_write = Instant::now();
        client.write_all(b"again").await.unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"again");
        let last = clock.last_read().expect("a kernel timestamp");
        assert!(
            last >= before_write - Duration::from_millis(1),
            "{:?}",
            before_write - last
        );
        let lag = Instant::now() - last;
        assert!(
            lag >= Duration::from_millis(25),
            "last read only {lag:?} ago"
        );
    }

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
}
