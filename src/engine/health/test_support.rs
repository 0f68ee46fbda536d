//! A switchable HTTP server on 127.0.0.1 and spec builders for the health
//! tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time;

use crate::config::HealthSpec;

/// Upper bound for waits on events that should arrive within milliseconds.
pub(super) const PATIENCE: Duration = Duration::from_secs(10);

/// Response settings and request counters of the test server.
pub(super) struct ServerState {
    status: AtomicU16,
    delay_ms: AtomicU64,
    body: Mutex<String>,
    pub(super) redirect_to: Mutex<String>,
    pub(super) requests: AtomicUsize,
    in_flight: Mutex<HashMap<String, usize>>,
    max_in_flight: Mutex<HashMap<String, usize>>,
}

impl ServerState {
    pub(super) fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(super) fn set_delay(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap();
        self.delay_ms.store(millis, Ordering::SeqCst);
    }

    pub(super) fn set_body(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_owned();
    }

    pub(super) fn max_in_flight(&self, path: &str) -> usize {
        let max = self.max_in_flight.lock().unwrap();
        max.get(path).copied().unwrap_or(0)
    }
}

/// Decrements the in-flight count of a path when a request ends or is
/// cancelled.
struct InFlight {
    state: Arc<ServerState>,
    path: String,
}

impl InFlight {
    fn enter(state: &Arc<ServerState>, path: &str) -> InFlight {
        let mut in_flight = state.in_flight.lock().unwrap();
        let count = in_flight.entry(path.to_owned()).or_insert(0);
        *count += 1;
        let mut max = state.max_in_flight.lock().unwrap();
        let max = max.entry(path.to_owned()).or_insert(0);
        *max = (*max).max(*count);
        InFlight {
            state: Arc::clone(state),
            path: path.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self.state.in_flight.lock().unwrap();
        if let Some(count) = in_flight.get_mut(&self.path) {
            *count -= 1;
        }
    }
}

/// Responds to `/loop` with a redirect to itself, `/moved` with a redirect to
/// `redirect_to`, and every other path with the configured status and
/// body after the configured delay.
async fn answer(State(state): State<Arc<ServerState>>, uri: Uri) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter(&state, uri.path());

    let location = match uri.path() {
        "/loop" => Some("/loop".to_owned()),
        "/moved" => Some(state.redirect_to.lock().unwrap().clone()),
        _ => None,
    };
    if let Some(location) = location {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .body(Body::empty())
            .unwrap();
    }

    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        time::sleep(Duration::from_millis(delay)).await;
    }
    let body = state.body.lock().unwrap().clone();
    Response::builder()
        .status(state.status.load(Ordering::SeqCst))
        .body(Body::from(body))
        .unwrap()
}

/// HTTP server on 127.0.0.1 that stops when dropped.
pub(super) struct TestServer {
    pub(super) addr: SocketAddr,
    pub(super) state: Arc<ServerState>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub(super) async fn start() -> TestServer {
        let state = Arc::new(ServerState {
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            body: Mutex::new(String::new()),
            redirect_to: Mutex::new(String::new()),
            requests: AtomicUsize::new(0),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: Mutex::new(HashMap::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TestServer { addr, state, task }
    }

    pub(super) fn url(&self, path: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn health_spec(url: reqwest::Url) -> HealthSpec {
    HealthSpec {
        url,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        expected_status: Vec::new(),
        failure_threshold: 3,
        success_threshold: 1,
    }
}

/// Returns `http://` followed by `template`, where `ADDR` becomes the
/// address of a port that was bound and then released, so nothing
/// listens there.
pub(super) async fn closed_port_url(template: &str) -> reqwest::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let text = format!("http://{}", template.replace("ADDR", &addr.to_string()));
    reqwest::Url::parse(&text).unwrap()
}
