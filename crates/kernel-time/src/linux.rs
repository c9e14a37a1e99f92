//! Linux: `SO_TIMESTAMPNS` receive times read with `recvmsg`, and a `timerfd` sleep.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, ReadBuf};
use tokio::net::TcpStream;

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

/// Asks for receive timestamps on a connection; false when the socket refuses.
pub(crate) fn timestamps_on(io: &TcpStream) -> bool {
    setsockopt(io, sockopt::ReceiveTimestampns, &true).is_ok()
}

/// One read into `buf` with `recvmsg`: the kernel's receive time in ns since the epoch of bytes
/// that were read, `None` at the end of the stream or when the kernel gave none.
pub(crate) fn poll_read_stamped(
    io: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<Option<u64>>> {
    loop {
        ready!(io.poll_read_ready(cx))?;
        let fd = io.as_raw_fd();
        let unfilled = buf.initialize_unfilled();
        match io.try_io(Interest::READABLE, || recv_stamped(fd, unfilled)) {
            Ok((n, rx)) => {
                buf.advance(n);
                return Poll::Ready(Ok(rx.filter(|_| n > 0)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::Stamped;

    #[tokio::test]
    async fn a_read_leaves_the_arrival_time_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut server, clock) = Stamped::new(server);
        assert!(
            super::timestamps_on(server.get_ref()),
            "loopback TCP takes SO_TIMESTAMPNS"
        );
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
}
