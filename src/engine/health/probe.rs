//! One HTTP probe, the client it uses and the polling wait that rollback
//! verification runs.

use std::error::Error as _;
use std::io;
use std::time::{Duration, Instant, SystemTime};

use tokio::time::{self, MissedTickBehavior};

use super::http::{Client, Failure, Request};
use super::{MIN_PERIOD, ProbeOutcome, Sample};
use crate::config::HealthSpec;

/// Maximum time to open a TCP connection, whatever the probe timeout.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Request timeout for requests that do not set their own.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum number of same-origin redirects a probe follows.
pub(super) const MAX_REDIRECTS: usize = 3;

/// Maximum number of response body bytes a probe reads.
pub(super) const BODY_READ_LIMIT: usize = 4096;

/// Maximum number of body characters quoted in a `BadStatus` error.
const BODY_EXCERPT_CHARS: usize = 200;

/// Builds the HTTP client that probes share.
///
/// The client connects within one second, uses no proxy and follows at most
/// three redirects, and only those that stay on the same scheme, host and
/// port. A redirect to another origin is not followed, so the probe returns
/// the 3xx status, which passes unless `expected_status` excludes it. Plain
/// `http://` URLs go through rewind's own HTTP/1.1 client
/// (`health::http`), others through reqwest with rustls.
pub fn client() -> Client {
    Client::default()
}

/// Builds the reqwest client for `https://` probes, with the same rules.
///
/// # Panics
///
/// Panics when the TLS backend cannot be initialised, as
/// `reqwest::Client::new` does.
pub(super) fn reqwest_client() -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let same_origin = attempt
            .previous()
            .last()
            .is_some_and(|previous| previous.origin() == attempt.url().origin());
        if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });

    reqwest::Client::builder()
        .user_agent(concat!("rewind/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        .no_proxy()
        .redirect(redirects)
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build()
        .expect("failed to build the health probe HTTP client")
}

/// Probes `spec.url` once with `spec.timeout`.
///
/// The timeout covers connecting, the response headers and reading the body.
/// Error texts name the host and port but never the userinfo, path or query
/// of the URL.
pub async fn probe(client: &Client, spec: &HealthSpec) -> Sample {
    probe_with(client, spec, plain_request(spec).as_ref()).await
}

/// Returns the request that probes `spec.url` with rewind's own client,
/// or `None` for a URL that is not `http://`.
pub(super) fn plain_request(spec: &HealthSpec) -> Option<Request> {
    (spec.url.scheme() == "http").then(|| Request::new(&spec.url))
}

/// Probes as [`probe`] does, sending `request` when there is one: the
/// request [`plain_request`] returned for `spec`, which a probe task
/// builds once.
pub(super) async fn probe_with(
    client: &Client,
    spec: &HealthSpec,
    request: Option<&Request>,
) -> Sample {
    match request {
        Some(request) => probe_plain(client, spec, request).await,
        // Boxed, so that the rarer TLS path does not enlarge every probe
        // task's future.
        None => Box::pin(probe_tls(client.tls(), spec)).await,
    }
}

/// Probes an `http://` URL with rewind's own client.
async fn probe_plain(client: &Client, spec: &HealthSpec, request: &Request) -> Sample {
    let at = SystemTime::now();
    let started = Instant::now();
    let response = match client.send(request, spec.timeout).await {
        Ok(response) => response,
        Err(failure) => {
            let (outcome, text) = describe_failure(failure, spec);
            return Sample {
                at,
                outcome,
                status: None,
                latency: started.elapsed(),
                error: Some(scrub(text, &spec.url)),
            };
        }
    };
    let sample = judge(spec, at, response.status, response.latency, &response.body);
    client.recycle(response.body);
    sample
}

/// Returns the sample for a response with `status` and `body`.
fn judge(spec: &HealthSpec, at: SystemTime, status: u16, latency: Duration, body: &[u8]) -> Sample {
    if spec.accepts(status) {
        return Sample {
            at,
            outcome: ProbeOutcome::Passed,
            status: Some(status),
            latency,
            error: None,
        };
    }
    let excerpt = body_excerpt(body);
    let text = if excerpt.is_empty() {
        format!("status {status}")
    } else {
        format!("status {status}: {excerpt}")
    };
    Sample {
        at,
        outcome: ProbeOutcome::BadStatus,
        status: Some(status),
        latency,
        error: Some(scrub(text, &spec.url)),
    }
}

/// Returns the outcome and the error text of a failed request.
fn describe_failure(failure: Failure, spec: &HealthSpec) -> (ProbeOutcome, String) {
    let endpoint = endpoint(&spec.url);
    match failure {
        Failure::Refused => (
            ProbeOutcome::Refused,
            format!("connection refused by {endpoint}"),
        ),
        Failure::ConnectTimedOut => (
            ProbeOutcome::TimedOut,
            format!("connect to {endpoint} timed out"),
        ),
        Failure::TimedOut => (
            ProbeOutcome::TimedOut,
            format!(
                "no response from {endpoint} within {}",
                humantime::format_duration(spec.timeout)
            ),
        ),
        Failure::Connect(cause) => (
            ProbeOutcome::Refused,
            format!("connect to {endpoint} failed: {cause}"),
        ),
        Failure::Redirect(cause) => (ProbeOutcome::Failed, format!("redirect failed: {cause}")),
        Failure::Read(cause) => (
            ProbeOutcome::Failed,
            format!("reading the response failed: {cause}"),
        ),
        Failure::Request(cause) => (ProbeOutcome::Failed, format!("request failed: {cause}")),
    }
}

/// Probes a URL of another scheme, `https://`, with reqwest.
async fn probe_tls(client: &reqwest::Client, spec: &HealthSpec) -> Sample {
    let at = SystemTime::now();
    let started = Instant::now();
    let result = client
        .get(spec.url.clone())
        .timeout(spec.timeout)
        .send()
        .await;
    let latency = started.elapsed();

    let response = match result {
        Ok(response) => response,
        Err(error) => {
            let (outcome, text) = describe_failure(classify(&error), spec);
            return Sample {
                at,
                outcome,
                status: None,
                latency,
                error: Some(scrub(text, &spec.url)),
            };
        }
    };

    let status = response.status().as_u16();
    // Reading the body lets the connection go back to the pool.
    let body = read_body(response).await;
    judge(spec, at, status, latency, &body)
}

/// Probes every `poll` until `spec.success_threshold` consecutive probes pass
/// or `timeout` has elapsed, and calls `on_sample` after each probe.
///
/// Returns every sample, in `Ok` when the service turned healthy and in `Err`
/// when time ran out. Each probe's timeout is cut to the time left, so the
/// call returns soon after `timeout`. A zero `timeout` returns `Err` with no
/// samples.
pub async fn wait_healthy(
    client: &Client,
    spec: &HealthSpec,
    timeout: Duration,
    poll: Duration,
    mut on_sample: impl FnMut(&Sample),
) -> Result<Vec<Sample>, Vec<Sample>> {
    let deadline = time::Instant::now() + timeout;
    let required_passes = spec.success_threshold.max(1);
    let mut ticker = time::interval(poll.max(MIN_PERIOD));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut attempt = spec.clone();
    let mut samples = Vec::new();
    let mut passes = 0;

    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = time::sleep_until(deadline) => return Err(samples),
        }
        let remaining = deadline.saturating_duration_since(time::Instant::now());
        if remaining.is_zero() {
            return Err(samples);
        }

        attempt.timeout = spec.timeout.min(remaining);
        let sample = probe(client, &attempt).await;
        on_sample(&sample);

        if sample.passed() {
            passes += 1;
        } else {
            passes = 0;
        }
        samples.push(sample);
        if passes >= required_passes {
            return Ok(samples);
        }
    }
}

/// Returns `url` without userinfo, query and fragment, safe to show and log.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut redacted = url.clone();
    // Only URLs that cannot be a base, such as `data:`, reject these setters,
    // and they carry no userinfo.
    let _ = redacted.set_username("");
    let _ = redacted.set_password(None);
    redacted.set_query(None);
    redacted.set_fragment(None);
    redacted.to_string()
}

/// Classifies a reqwest error as the failure the plain client reports.
fn classify(error: &reqwest::Error) -> Failure {
    if has_io_kind(error, io::ErrorKind::ConnectionRefused) {
        Failure::Refused
    } else if error.is_timeout() && error.is_connect() {
        Failure::ConnectTimedOut
    } else if error.is_timeout() {
        Failure::TimedOut
    } else if error.is_connect() {
        Failure::Connect(source_chain(error))
    } else if error.is_redirect() {
        Failure::Redirect(source_chain(error))
    } else if error.is_body() || error.is_decode() {
        Failure::Read(source_chain(error))
    } else {
        Failure::Request(source_chain(error))
    }
}

/// Tells whether an I/O error of `kind` is among the causes of `error`.
fn has_io_kind(error: &reqwest::Error, kind: io::ErrorKind) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_error| io_error.kind() == kind)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Joins the causes of `error` with ": ", lowercase, skipping causes whose
/// text is already included. The top-level reqwest text is left out because
/// it contains the URL.
fn source_chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string().to_lowercase();
        // The hyper-util 0.1 client wraps every cause in an error shown as
        // "client error (connect)" or similar, which adds nothing.
        let is_wrapper = text.starts_with("client error (");
        let is_repeat = parts.iter().any(|part| part.contains(&text));
        if !text.is_empty() && !is_wrapper && !is_repeat {
            parts.push(text);
        }
        source = cause.source();
    }

    if parts.is_empty() {
        "unknown error".to_owned()
    } else {
        parts.join(": ")
    }
}

/// Returns `host:port` of `url`, with the scheme's default port when the URL
/// has none.
fn endpoint(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("unknown host");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Replaces the password and the query of `url` in `text` with `***`, in case
/// a cause or a response body quotes them.
fn scrub(text: String, url: &reqwest::Url) -> String {
    let secrets = [url.password(), url.query()];
    secrets
        .into_iter()
        .flatten()
        .filter(|secret| !secret.is_empty())
        .fold(text, |text, secret| text.replace(secret, "***"))
}

/// Reads at most [`BODY_READ_LIMIT`] bytes of the body. A read error ends the
/// read and keeps the bytes read so far. The request timeout bounds the read.
async fn read_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(BODY_READ_LIMIT);
    body
}

/// Returns the body as one line of at most [`BODY_EXCERPT_CHARS`] characters,
/// followed by "…" when cut. Whitespace runs and control characters become
/// one space, so that the text cannot break a terminal line.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect();
    let line = words.join(" ");

    let mut excerpt: String = line.chars().take(BODY_EXCERPT_CHARS).collect();
    if excerpt.len() < line.len() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::engine::health::test_support::{PATIENCE, TestServer, closed_port_url, health_spec};

    #[tokio::test]
    async fn probe_passes_on_200() {
        let server = TestServer::start().await;

        let sample = probe(&client(), &health_spec(server.url("/health"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::Passed);
        assert_eq!(sample.status, Some(200));
        assert_eq!(sample.error, None);
        assert!(sample.latency > Duration::ZERO);
        assert!(sample.at <= SystemTime::now());
    }

    #[tokio::test]
    async fn probes_give_their_read_buffer_back() {
        let server = TestServer::start().await;
        let client = client();
        let spec = health_spec(server.url("/health"));

        for _ in 0..3 {
            let sample = probe(&client, &spec).await;
            assert_eq!(sample.outcome, ProbeOutcome::Passed);
            assert_eq!(client.spare_buffers(), 1);
        }
    }

    #[tokio::test]
    async fn probe_quotes_body_of_500() {
        let server = TestServer::start().await;
        server.state.set_status(500);
        server
            .state
            .set_body("database unreachable\n\tretry later\n");

        let sample = probe(&client(), &health_spec(server.url("/health"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::BadStatus);
        assert_eq!(sample.status, Some(500));
        assert_eq!(
            sample.error.as_deref(),
            Some("status 500: database unreachable retry later")
        );
    }

    #[tokio::test]
    async fn probe_cuts_long_body() {
        let server = TestServer::start().await;
        server.state.set_status(503);
        server.state.set_body(&"x".repeat(10_000));

        let sample = probe(&client(), &health_spec(server.url("/health"))).await;

        let expected = format!("status 503: {}…", "x".repeat(BODY_EXCERPT_CHARS));
        assert_eq!(sample.error.as_deref(), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn probe_without_body_names_status() {
        let server = TestServer::start().await;
        server.state.set_status(404);

        let sample = probe(&client(), &health_spec(server.url("/health"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::BadStatus);
        assert_eq!(sample.error.as_deref(), Some("status 404"));
    }

    #[tokio::test]
    async fn probe_reports_refused_port() {
        let url = closed_port_url("ADDR/health").await;
        let endpoint = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());

        let sample = probe(&client(), &health_spec(url)).await;

        assert_eq!(sample.outcome, ProbeOutcome::Refused);
        assert_eq!(sample.status, None);
        let expected = format!("connection refused by {endpoint}");
        assert_eq!(sample.error.as_deref(), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn probe_times_out_on_slow_handler() {
        let server = TestServer::start().await;
        server.state.set_delay(Duration::from_secs(1));
        let mut spec = health_spec(server.url("/health"));
        spec.timeout = Duration::from_millis(50);

        let sample = probe(&client(), &spec).await;

        assert_eq!(sample.outcome, ProbeOutcome::TimedOut);
        assert_eq!(sample.status, None);
        let expected = format!("no response from {} within 50ms", server.addr);
        assert_eq!(sample.error.as_deref(), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn probe_honours_expected_status() {
        let server = TestServer::start().await;
        let mut spec = health_spec(server.url("/health"));
        spec.expected_status = vec![204];
        let client = client();

        let ok = probe(&client, &spec).await;
        server.state.set_status(204);
        let no_content = probe(&client, &spec).await;

        assert_eq!(ok.outcome, ProbeOutcome::BadStatus);
        assert_eq!(ok.status, Some(200));
        assert_eq!(no_content.outcome, ProbeOutcome::Passed);
        assert_eq!(no_content.status, Some(204));
    }

    #[tokio::test]
    async fn probe_follows_same_origin_redirect() {
        let server = TestServer::start().await;
        *server.state.redirect_to.lock().unwrap() = "/health".to_owned();

        let sample = probe(&client(), &health_spec(server.url("/moved"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::Passed);
        assert_eq!(sample.status, Some(200));
        assert_eq!(server.state.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn probe_stops_at_cross_origin_redirect() {
        let server = TestServer::start().await;
        let elsewhere = TestServer::start().await;
        *server.state.redirect_to.lock().unwrap() = elsewhere.url("/health").to_string();

        let sample = probe(&client(), &health_spec(server.url("/moved"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::Passed);
        assert_eq!(sample.status, Some(302));
        assert_eq!(elsewhere.state.requests.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn probe_fails_on_redirect_loop() {
        let server = TestServer::start().await;

        let sample = probe(&client(), &health_spec(server.url("/loop"))).await;

        assert_eq!(sample.outcome, ProbeOutcome::Failed);
        assert_eq!(sample.status, None);
        assert_eq!(
            sample.error.as_deref(),
            Some("redirect failed: too many redirects")
        );
        assert_eq!(
            server.state.requests.load(Ordering::SeqCst),
            MAX_REDIRECTS + 1
        );
    }

    #[tokio::test]
    async fn probe_errors_hide_password_and_query() {
        let refused_url = closed_port_url("admin:hunter2@ADDR/health?token=abc123").await;
        let server = TestServer::start().await;
        server.state.set_status(401);
        server
            .state
            .set_body("token=abc123 rejected for admin:hunter2");
        let mut rejected_url = server.url("/health?token=abc123");
        rejected_url.set_username("admin").unwrap();
        rejected_url.set_password(Some("hunter2")).unwrap();
        let client = client();

        let refused = probe(&client, &health_spec(refused_url)).await;
        let rejected = probe(&client, &health_spec(rejected_url)).await;

        for sample in [&refused, &rejected] {
            let error = sample.error.as_deref().unwrap();
            assert!(!error.contains("hunter2"), "password in {error:?}");
            assert!(!error.contains("abc123"), "query in {error:?}");
        }
        assert_eq!(
            rejected.error.as_deref(),
            Some("status 401: *** rejected for admin:***")
        );
    }

    #[tokio::test]
    async fn probe_reports_tls_failure_as_refused() {
        let server = TestServer::start().await;
        let url = reqwest::Url::parse(&format!("https://{}/health", server.addr)).unwrap();

        let sample = probe(&client(), &health_spec(url)).await;

        assert_eq!(sample.outcome, ProbeOutcome::Refused);
        assert_eq!(sample.status, None);
        let error = sample.error.unwrap();
        let prefix = format!("connect to {} failed: ", server.addr);
        assert!(error.starts_with(&prefix), "error {error:?}");
        assert!(!error.contains("client error"), "error {error:?}");
    }

    #[test]
    fn redact_url_strips_userinfo_and_query() {
        let url =
            reqwest::Url::parse("https://admin:hunter2@example.test:8443/health?token=abc#top")
                .unwrap();

        assert_eq!(redact_url(&url), "https://example.test:8443/health");
    }

    #[test]
    fn body_excerpt_drops_control_characters() {
        let excerpt = body_excerpt(b"\x1b[31mred\x1b[0m\r\nline\x07");

        assert_eq!(excerpt, "[31mred [0m line");
    }

    #[tokio::test]
    async fn wait_healthy_succeeds_after_recovery() {
        let server = TestServer::start().await;
        server.state.set_status(503);
        let mut spec = health_spec(server.url("/health"));
        spec.success_threshold = 2;
        let state = Arc::clone(&server.state);
        let mut seen = 0;

        let result = wait_healthy(
            &client(),
            &spec,
            PATIENCE,
            Duration::from_millis(10),
            |_| {
                seen += 1;
                if seen == 2 {
                    state.set_status(200);
                }
            },
        )
        .await;

        let samples = result.expect("service should turn healthy");
        let outcomes: Vec<ProbeOutcome> = samples.iter().map(|sample| sample.outcome).collect();
        assert_eq!(
            outcomes,
            [
                ProbeOutcome::BadStatus,
                ProbeOutcome::BadStatus,
                ProbeOutcome::Passed,
                ProbeOutcome::Passed
            ]
        );
        assert_eq!(seen, 4);
    }

    #[tokio::test]
    async fn wait_healthy_fails_at_deadline() {
        let server = TestServer::start().await;
        server.state.set_status(500);
        let spec = health_spec(server.url("/health"));
        let mut seen = 0;

        let result = wait_healthy(
            &client(),
            &spec,
            Duration::from_millis(200),
            Duration::from_millis(20),
            |_| seen += 1,
        )
        .await;

        let samples = result.expect_err("service should never turn healthy");
        assert!(!samples.is_empty());
        assert!(samples.iter().all(|sample| !sample.passed()));
        assert_eq!(seen, samples.len());
    }

    #[tokio::test]
    async fn wait_healthy_cuts_probe_to_deadline() {
        let server = TestServer::start().await;
        server.state.set_delay(Duration::from_secs(30));
        let spec = health_spec(server.url("/health"));

        let result = time::timeout(
            PATIENCE,
            wait_healthy(
                &client(),
                &spec,
                Duration::from_millis(100),
                Duration::from_millis(10),
                |_| {},
            ),
        )
        .await
        .expect("wait_healthy should return soon after its timeout");

        let samples = result.expect_err("service should never turn healthy");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].outcome, ProbeOutcome::TimedOut);
    }

    #[tokio::test]
    async fn wait_healthy_with_zero_timeout_probes_nothing() {
        let server = TestServer::start().await;
        let spec = health_spec(server.url("/health"));

        let result = wait_healthy(
            &client(),
            &spec,
            Duration::ZERO,
            Duration::from_millis(10),
            |_| {},
        )
        .await;

        assert_eq!(result, Err(Vec::new()));
        assert_eq!(server.state.requests.load(Ordering::SeqCst), 0);
    }
}
