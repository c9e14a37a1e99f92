//! The kernel's clocks for the simulator: when a request reached the socket, and a fine timer.
//!
//! An injected latency should count from the moment the request arrived, not from when the
//! simulator got round to it: a parked thread on a virtual machine can take a few hundred
//! microseconds to wake, and that would be added to every delay a client measures. Each accepted
//! connection asks for `SO_TIMESTAMPNS` and is read with `recvmsg`; the first read after the last
//! request was taken leaves its kernel timestamp in an [`RxClock`] for the handler. [`hr_sleep`]
//! is the other half of a precise delay: a kernel timer finer than tokio's millisecond ticks.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The arrival time of the request being read, shared by a connection and its handler.
#[derive(Clone, Debug, Default)]
pub struct RxClock(Arc<AtomicU64>);

impl RxClock {
    /// When the first bytes read since the last call reached the socket, or now when the kernel
    /// gave no timestamp. Resets, so the next request's first read sets it again.
    pub fn take(&self) -> Instant {
        let now = Instant::now();
        let rx_ns = self.0.swap(0, Ordering::Relaxed);
        let wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        match wall_ns.checked_sub(rx_ns) {
            // A stamp more than a second old, or in the future, means the wall clock stepped.
            Some(ago) if rx_ns != 0 && ago < 1_000_000_000 => {
                now.checked_sub(Duration::from_nanos(ago)).unwrap_or(now)
            }
            _ => now,
        }
    }

    fn set_if_unset(&self, rx_ns: u64) {
        let _ = self
            .0
            .compare_exchange(0, rx_ns, Ordering::Relaxed, Ordering::Relaxed);
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
                        this.clock.set_if_unset(rx);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
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
