//! Off Linux: no receive times (a plain read) and tokio's timer, which rounds a sleep up to its
//! next millisecond tick.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

/// Nothing to prepare: no receive times.
pub fn prepare(_listener: &tokio::net::TcpListener) {}

/// Sleeps at least `d` on tokio's timer.
pub async fn hr_sleep(d: Duration) -> io::Result<()> {
    tokio::time::sleep(d).await;
    Ok(())
}

/// No receive times: a [`crate::Stamped`] reads plainly.
pub(crate) fn timestamps_on(_io: &TcpStream) -> bool {
    false
}

/// A plain read: never stamped.
pub(crate) fn poll_read_stamped(
    io: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<Option<u64>>> {
    ready!(Pin::new(io).poll_read(cx, buf))?;
    Poll::Ready(Ok(None))
}
