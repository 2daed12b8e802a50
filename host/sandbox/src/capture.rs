//! Bounded capture of a guest's stdout/stderr: bytes beyond the cap are counted and dropped,
//! never an error the guest could observe (so a chatty guest is not killed by its own logging).

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Buf {
    data: Vec<u8>,
    dropped: u64,
}

/// A capped in-memory sink shared between the WASI context and the host.
#[derive(Clone, Debug)]
pub struct CappedPipe {
    cap: usize,
    buf: Arc<Mutex<Buf>>,
}

impl CappedPipe {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: Arc::new(Mutex::new(Buf::default())),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(b.data.len());
        let take = room.min(bytes.len());
        b.data.extend_from_slice(&bytes[..take]);
        b.dropped += (bytes.len() - take) as u64;
    }

    /// The captured text (lossy UTF-8) and how many bytes were dropped past the cap.
    pub fn contents(&self) -> (String, u64) {
        let b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        (String::from_utf8_lossy(&b.data).into_owned(), b.dropped)
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_past_the_cap() {
        let p = CappedPipe::new(4);
        p.push(b"abcdef");
        p.push(b"gh");
        assert_eq!(p.contents(), ("abcd".to_string(), 4));
    }
}
