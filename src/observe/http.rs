//! The HTTP endpoints kube-system probes and Prometheus use: `/health` (`health`), `/ready`
//! (`ready`) and `/metrics` (`prometheus`). One listener per address; several directives that
//! name the same address share it. A reload changes what a listener serves without closing it.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::vocab::ListenAddr;

use super::metrics::Metrics;

/// A plugin that can say whether it is ready to answer (`kubernetes`, once its data is in).
pub trait Readiness: Send + Sync {
    fn name(&self) -> &'static str;
    fn is_ready(&self) -> bool;
}

/// What every endpoint reads: the metrics, and the plugins that report readiness.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub readiness: ArcSwap<Vec<Arc<dyn Readiness>>>,
}

impl Shared {
    /// `None` when ready; else the names of the plugins still waiting, comma-separated.
    pub fn waiting(&self) -> Option<String> {
        let mut names: Vec<&str> = self
            .readiness
            .load()
            .iter()
            .filter(|r| !r.is_ready())
            .map(|r| r.name())
            .collect();
        names.sort_unstable();
        names.dedup();
        (!names.is_empty()).then(|| names.join(","))
    }
}

/// The paths one address serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    pub health: bool,
    pub ready: bool,
    pub metrics: bool,
}

pub struct HttpListener {
    pub addr: SocketAddr,
    routes: Arc<ArcSwap<Routes>>,
    stop: CancellationToken,
}

impl HttpListener {
    pub async fn bind(
        at: &ListenAddr,
        routes: Routes,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let listener = bind(at).await?;
        let addr = listener.local_addr()?;
        let routes = Arc::new(ArcSwap::from_pointee(routes));
        let stop = CancellationToken::new();
        tokio::spawn(accept(
            listener,
            routes.clone(),
            shared.clone(),
            stop.clone(),
        ));
        tokio::spawn(self_check(addr, routes.clone(), shared, stop.clone()));
        Ok(Self { addr, routes, stop })
    }

    pub fn set_routes(&self, routes: Routes) {
        self.routes.store(Arc::new(routes));
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for HttpListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn bind(at: &ListenAddr) -> std::io::Result<TcpListener> {
    match at.ip {
        Some(ip) => listen(SocketAddr::new(ip, at.port)),
        None => match listen(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), at.port)) {
            Ok(l) => Ok(l),
            Err(_) => listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), at.port)),
        },
    }
}

/// A listener with SO_REUSEPORT, as CoreDNS's health and metrics listeners: during an update
/// with surge, the new node-local instance binds `/health` and `/metrics` beside the old one.
/// Not on a port the kernel picks (port 0), which another listener could then share.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(addr.port() != 0)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn accept(
    listener: TcpListener,
    routes: Arc<ArcSwap<Routes>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let (routes, shared) = (routes.clone(), shared.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (routes, shared) = (routes.clone(), shared.clone());
                async move { Ok::<_, Infallible>(handle(&req, &routes.load(), &shared)) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// Answers one HTTP request.
pub fn handle(req: &Request<Incoming>, routes: &Routes, shared: &Shared) -> Response<Full<Bytes>> {
    respond(req.method(), req.uri().path(), routes, shared)
}

fn respond(method: &Method, path: &str, routes: &Routes, shared: &Shared) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    match path {
        "/health" if routes.health => text(StatusCode::OK, "OK"),
        "/ready" if routes.ready => match shared.waiting() {
            None => text(StatusCode::OK, "OK"),
            Some(names) => {
                tracing::info!("plugin/ready: Still waiting on: {names:?}");
                text(StatusCode::SERVICE_UNAVAILABLE, names)
            }
        },
        "/metrics" if routes.metrics => {
            let mut r = text(StatusCode::OK, shared.metrics.render());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// CoreDNS's health plugin asks its own `/health` every second and records how long that took
/// (`coredns_health_request_duration_seconds`) or that it failed: a sign of an overloaded process.
async fn self_check(
    addr: SocketAddr,
    routes: Arc<ArcSwap<Routes>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let target = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port()),
        _ => addr,
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if !routes.load().health {
            continue;
        }
        let start = Instant::now();
        let ok = tokio::time::timeout(Duration::from_secs(3), get_ok(target, "/health"))
            .await
            .unwrap_or(false);
        if ok {
            shared
                .metrics
                .health
                .duration
                .observe(start.elapsed().as_secs_f64());
        } else {
            shared.metrics.health.failures.inc();
        }
    }
}

/// A minimal `GET` that says whether the answer was 200.
async fn get_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await.is_ok() && head.ends_with(b" 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, bool);

    impl Readiness for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn is_ready(&self) -> bool {
            self.1
        }
    }

    fn shared(plugins: Vec<Arc<dyn Readiness>>) -> Shared {
        Shared {
            metrics: Arc::new(Metrics::new()),
            readiness: ArcSwap::from_pointee(plugins),
        }
    }

    async fn body(r: Response<Full<Bytes>>) -> (u16, String) {
        use http_body_util::BodyExt;
        let status = r.status().as_u16();
        let bytes = r
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn ready_names_the_plugins_still_waiting() {
        let all = Routes {
            health: true,
            ready: true,
            metrics: true,
        };
        let s = shared(vec![
            Arc::new(Fixed("kubernetes", false)),
            Arc::new(Fixed("kubernetes", false)),
            Arc::new(Fixed("erratic", false)),
            Arc::new(Fixed("other", true)),
        ]);
        let r = body(respond(&Method::GET, "/ready", &all, &s)).await;
        assert_eq!(r, (503, "erratic,kubernetes".into()));
        // Health does not depend on readiness.
        assert_eq!(
            body(respond(&Method::GET, "/health", &all, &s)).await,
            (200, "OK".into())
        );
        let s = shared(vec![Arc::new(Fixed("kubernetes", true))]);
        assert_eq!(
            body(respond(&Method::GET, "/ready", &all, &s)).await,
            (200, "OK".into())
        );
        // Only what this address was given.
        let only_health = Routes {
            health: true,
            ..Routes::default()
        };
        assert_eq!(
            body(respond(&Method::GET, "/ready", &only_health, &s))
                .await
                .0,
            404
        );
        assert_eq!(
            body(respond(&Method::POST, "/health", &all, &s)).await.0,
            405
        );
    }
}
