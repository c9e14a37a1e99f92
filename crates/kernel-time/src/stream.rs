//! [`Stamped`]: a TCP stream whose reads leave the kernel's receive time in an [`RxClock`] and
//! whose writes mark when a request was sent. How a read is stamped is the platform's ([`sys`]).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::{sys, RxClock};

/// A TCP stream whose reads note the kernel's receive timestamp in an [`RxClock`].
#[derive(Debug)]
pub struct Stamped {
    io: TcpStream,
    clock: RxClock,
    /// False when the socket refused `SO_TIMESTAMPNS` (or off Linux): plain reads, and handlers
    /// use "now".
    stamped: bool,
}

impl Stamped {
    pub fn new(io: TcpStream) -> (Stamped, RxClock) {
        let stamped = sys::timestamps_on(&io);
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
        let rx = ready!(sys::poll_read_stamped(&mut this.io, cx, buf))?;
        if let Some(rx) = rx {
            this.clock.note(rx);
        }
        Poll::Ready(Ok(()))
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

/// The connection's [`RxClock`] rides on each response, as a `Connected` extra (next to
/// hyper-util's `HttpInfo`).
#[cfg(feature = "hyper-client")]
impl hyper_util::client::legacy::connect::Connection for Stamped {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        self.io.connected().extra(self.clock.clone())
    }
}
