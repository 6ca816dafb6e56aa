//! Serving HTTP/1 to clients that may be hostile, for every port this app opens (`mm serve`, each loaded type's
//! endpoint): a client that sends its headers slowly, or promises a body and stops sending it (slowloris), is cut
//! off after a deadline, and at most [`Limits::max_connections`] are served at once (the rest wait in the kernel's
//! queue), so a crowd of them never keeps anyone else from being answered, nor runs the process out of files.

use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a connection may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From a connection's first byte of a request to the end of its headers.
    pub header_read: Duration,
    /// The longest a request body may go without a byte once its reader waits for it.
    pub body_idle: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// After `stop`, how long answers still being sent get before they are cut.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(15),
            body_idle: Duration::from_secs(30),
            max_connections: 512,
            drain: Duration::from_secs(10),
        }
    }
}

/// A request body that fails when no byte of it has come for [`Limits::body_idle`] while someone reads it. The
/// clock starts at the first read, so a request that waits (for a model to load, say) before its body is read is
/// not cut for it.
pub struct IdleBody {
    inner: Incoming,
    idle: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for IdleBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let why = format!("the request body stopped arriving for {} s", idle.as_secs());
                        Poll::Ready(Some(Err(why.into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `service` on `listener` under `limits` until `stop` is cancelled; then stops accepting, lets each
/// connection finish the request it is answering (up to [`Limits::drain`]), and returns.
pub async fn serve<S, B>(listener: TcpListener, limits: Limits, stop: CancellationToken, service: S)
where
    S: hyper::service::Service<Request<IdleBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let request = request.map(|inner| IdleBody { inner, idle: limits.body_idle, deadline: None });
                service.call(request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Every connection holds a permit until it ends: all of them back means all answered.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, permits.acquire_many(all)).await.is_err() {
        tracing::warn!(
            "answers still running {} s after the stop are left to end with the process",
            limits.drain.as_secs()
        );
    }
}

/// Whether `Host` names this machine: `localhost`, or a loopback address written as one (`127.0.0.1`, `[::1]`),
/// with or without a port; not a name that merely starts like one (`127.0.0.1.nip.io`, `127.evil.example`). No
/// `Host` (HTTP/1.0) is a program, not a browser.
pub fn is_loopback_host(headers: &hyper::HeaderMap) -> bool {
    let Some(host) = headers.get(hyper::header::HOST) else { return true };
    let Ok(host) = host.to_str() else { return false };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    is_loopback_name(name)
}

/// Whether a host name, as a URL or a `Host` header writes it without its port, is this machine: `localhost`, or a
/// loopback address (`127.0.0.1`, `[::1]`).
pub fn is_loopback_name(name: &str) -> bool {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    name.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser says it sends this request for another site or as a page's subresource (an `<img>`, a
/// `<script>`): what a web page can make a browser send, without reading the answer, for its side effects.
pub fn from_another_site(headers: &hyper::HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_ascii_lowercase());
    matches!(value("sec-fetch-site").as_deref(), Some("cross-site" | "same-site"))
        || value("sec-fetch-mode").as_deref() == Some("no-cors")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> hyper::HeaderMap {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(hyper::header::HOST, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_loopback_names_and_addresses_are_this_machine() {
        for ok in ["localhost", "LOCALHOST:80", "127.0.0.1", "127.0.0.1:8765", "127.1.2.3:1", "[::1]", "[::1]:8765"] {
            assert!(is_loopback_host(&host(ok)), "{ok}");
        }
        for bad in [
            "127.evil.example",
            "127.0.0.1.nip.io",
            "localhost.evil.example:80",
            "evil.example",
            "10.0.0.1",
            "[::2]:1",
            "127.0.0.1:",
            "::1",
        ] {
            assert!(!is_loopback_host(&host(bad)), "{bad}");
        }
        assert!(is_loopback_host(&hyper::HeaderMap::new()));
    }
}
