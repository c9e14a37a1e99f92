//! The fault bodies streamed while they are sent: one byte every 200 ms, a body cut off by a
//! connection reset, a body too large to keep. Each is `[` then spaces, in chunks.
//!
//! Owns the bodies only; which fault asks for one is [`super::faults`]'.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};

use super::reply::SimBody;

/// `trickle`: a byte every 200 ms, without end.
pub(super) fn trickle() -> SimBody {
    Chunked::boxed_body(usize::MAX, 1, Some(Duration::from_millis(200)), None)
}

/// `reset`: 4 KiB of a 1 MiB body, then a connection reset.
pub(super) fn cut_off() -> SimBody {
    Chunked::boxed_body(1 << 20, 1024, None, Some(4096))
}

/// `body_bytes`: `n` bytes in 64 KiB chunks.
pub(super) fn huge(n: usize) -> SimBody {
    Chunked::boxed_body(n, 64 * 1024, None, None)
}

/// A body that sends `remaining` bytes of spaces (after a `[`) in chunks, optionally slowly or
/// cut off after `fail_after` bytes.
struct Chunked {
    remaining: usize,
    chunk: usize,
    delay: Option<Duration>,
    fail_after: Option<usize>,
    sent: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Chunked {
    fn boxed_body(
        remaining: usize,
        chunk: usize,
        delay: Option<Duration>,
        fail_after: Option<usize>,
    ) -> SimBody {
        let body = Chunked {
            remaining,
            chunk,
            delay,
            fail_after,
            sent: 0,
            sleep: None,
        };
        body.boxed()
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        use std::future::Future;
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if let Some(limit) = self.fail_after {
            if self.sent >= limit {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated reset",
                ))));
            }
        }
        if let Some(d) = self.delay {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(d)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let n = self.chunk.min(self.remaining);
        self.remaining -= n;
        self.sent += n;
        let mut buf = vec![b' '; n];
        if self.sent == n {
            buf[0] = b'[';
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_huge_body_is_a_bracket_then_spaces() {
        let body = super::huge(100_000).collect().await.expect("a whole body");
        let bytes = body.to_bytes();
        assert_eq!(bytes.len(), 100_000);
        assert_eq!(bytes[0], b'[');
        assert!(bytes[1..].iter().all(|&b| b == b' '));
    }

    #[tokio::test]
    async fn a_cut_off_body_fails_after_4_kib() {
        let mut body = super::cut_off();
        let mut got = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(f)) => got += f.into_data().map_or(0, |d| d.len()),
                Some(Err(e)) => break e,
                None => panic!("the body ended without the reset"),
            }
        };
        assert_eq!(got, 4096);
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    }
}
