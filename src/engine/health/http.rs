//! A small HTTP/1.1 client for health probes of plain `http://` URLs.
//!
//! A probe sends one GET and needs the status and the first few KiB of the
//! body. reqwest, through hyper, keeps a task with read and write buffers
//! for each open connection, about 27 KiB each, so with a thousand
//! services those made up half of the dashboard's resident memory. This
//! client keeps an idle connection as its socket alone, and a few spare
//! read buffers that requests take and give back.
//!
//! It follows same-origin redirects, reuses keep-alive connections, reads
//! `Content-Length`, chunked and close-delimited bodies, and sends the URL's
//! userinfo as basic authentication. It uses no proxy and no TLS: URLs with
//! any other scheme go through reqwest (see [`Client::tls`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant as StdInstant};

use base64::Engine as _;
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{self, Instant};
use url::{Host, Position};

use super::probe::{BODY_READ_LIMIT, CONNECT_TIMEOUT, MAX_REDIRECTS};

/// Maximum size of a response head (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Maximum number of header lines in a response head, as in hyper.
const MAX_HEADERS: usize = 100;

/// Maximum number of chunked bytes read past the head before the body is cut.
const MAX_FRAMING_BYTES: usize = 64 * 1024;

/// Maximum length of a chunk size line, extensions included.
const MAX_CHUNK_LINE: usize = 1024;

/// Maximum size of the trailer section after the last chunk.
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Time between sweeps that close expired idle connections of every host.
const SWEEP_EVERY: Duration = IDLE_TIMEOUT;

/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum number of idle connections kept per host and port.
const MAX_IDLE_PER_ORIGIN: usize = 2;

/// Capacity of a new read buffer: a probe's whole response usually fits.
const READ_BUFFER: usize = 1024;

/// Largest read buffer kept for reuse; larger ones are freed.
const MAX_SPARE_BUFFER: usize = 8 * 1024;

/// Maximum number of read buffers kept for reuse. When more responses are
/// read at once, the buffers beyond it are freed after use.
const MAX_SPARE_BUFFERS: usize = 32;

/// The HTTP client that health probes share. Clones share idle connections.
#[derive(Clone, Default)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    idle: Mutex<Pool>,
    /// Empty read buffers given back by [`Client::recycle`]. A probe that
    /// takes one allocates no read buffer of its own, so a thousand probes
    /// a second do not spread short-lived buffers over the heap.
    spare: Mutex<Vec<Vec<u8>>>,
    /// Client for URLs other than `http://`, built at first use.
    tls: OnceLock<reqwest::Client>,
}

/// Idle keep-alive connections by `host:port`, newest last.
#[derive(Default)]
struct Pool {
    connections: HashMap<String, Vec<Idle>>,
    /// Time of the last sweep of every host, `None` before the first.
    swept: Option<StdInstant>,
}

struct Idle {
    stream: TcpStream,
    since: StdInstant,
}

/// A final response: the status, at most [`BODY_READ_LIMIT`] bytes of the
/// body, and the time from the start of the request to its head.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
    pub(super) latency: Duration,
}

/// Reason a request got no response. The texts are lowercase and quote no
/// part of the URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The host refused the connection (the last address tried, when its
    /// name has several).
    Refused,
    /// No connection within the connect timeout.
    ConnectTimedOut,
    /// No connection, for another reason such as a failed name lookup.
    Connect(String),
    /// The request timeout ran out before the response head arrived.
    TimedOut,
    /// A redirect could not be followed.
    Redirect(String),
    /// The connection failed or the response was not HTTP/1.x.
    Request(String),
    /// The body could not be read or decoded (reqwest only: the plain
    /// client keeps what arrived).
    Read(String),
}

/// Failure of one attempt on one connection.
enum Attempt {
    /// The connection closed or reset before any byte of a response, with
    /// the error text. On a reused connection this means that the server
    /// closed it while it was idle, and the request goes again.
    Closed(String),
    Failed(Failure),
}

/// Rule that finds the end of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Fields read from the head of a response.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Bytes of the head, including the blank line that ends it.
    len: usize,
    framing: Framing,
    keep_alive: bool,
    location: Option<String>,
}

/// One response read from a connection.
struct Exchange {
    head: Head,
    body: Vec<u8>,
    at: StdInstant,
}

/// A GET request for one URL, built once and sent as often as needed, so
/// that a probe task does not build the same bytes every second.
#[derive(Debug)]
pub(super) struct Request {
    url: Url,
    /// `host:port`, the key of the idle connections to the URL.
    origin: String,
    /// The `Authorization` value for the URL's userinfo, sent on every
    /// redirect that is followed too.
    authorization: Option<String>,
    bytes: Vec<u8>,
}

impl Request {
    /// Builds the GET request for `url`, an `http://` URL.
    pub(super) fn new(url: &Url) -> Request {
        Request::with_authorization(url.clone(), authorization(url))
    }

    fn with_authorization(url: Url, authorization: Option<String>) -> Request {
        Request {
            origin: origin_key(&url),
            bytes: request_bytes(&url, authorization.as_deref()),
            authorization,
            url,
        }
    }
}

impl Client {
    /// Sends a GET for `url`, an `http://` URL, as [`Client::send`] does.
    #[cfg(test)]
    pub(super) async fn get(&self, url: &Url, timeout: Duration) -> Result<Response, Failure> {
        self.send(&Request::new(url), timeout).await
    }

    /// Sends `request` and follows at most [`MAX_REDIRECTS`] redirects that
    /// keep its scheme, host and port.
    ///
    /// `timeout` covers connecting, every redirect and the response heads.
    /// A body that is still arriving when it runs out is cut there.
    pub(super) async fn send(
        &self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        let started = StdInstant::now();
        let deadline = deadline_after(timeout);
        let mut redirected: Option<Request> = None;
        let mut followed = 0;

        loop {
            let current = redirected.as_ref().unwrap_or(request);
            let exchange = self.exchange(current, deadline).await?;
            let next = match &exchange.head.location {
                Some(location) if is_redirect(exchange.head.status) => {
                    current.url.join(location).ok()
                }
                _ => None,
            };
            let Some(next) = next else {
                return Ok(Response {
                    status: exchange.head.status,
                    body: exchange.body,
                    latency: exchange.at.duration_since(started),
                });
            };
            if followed == MAX_REDIRECTS {
                return Err(Failure::Redirect("too many redirects".to_owned()));
            }
            if next.origin() != current.url.origin() {
                return Ok(Response {
                    status: exchange.head.status,
                    body: exchange.body,
                    latency: exchange.at.duration_since(started),
                });
            }
            followed += 1;
            self.recycle(exchange.body);
            redirected = Some(Request::with_authorization(
                next,
                request.authorization.clone(),
            ));
        }
    }

    /// Returns the reqwest client for URLs that are not `http://`, built at
    /// its first use so that a dashboard probing only plain HTTP never loads
    /// TLS roots.
    pub(super) fn tls(&self) -> &reqwest::Client {
        self.inner.tls.get_or_init(super::probe::reqwest_client)
    }

    /// Number of idle connections kept for `host:port`.
    #[cfg(test)]
    pub(super) fn idle_count(&self, origin: &str) -> usize {
        let pool = self.inner.idle.lock().unwrap();
        pool.connections.get(origin).map_or(0, Vec::len)
    }

    /// Sends `request` once and reads its response, on an idle
    /// connection when there is one that is still open. When that connection
    /// turns out closed before any response byte, the request goes once
    /// more on a new connection, even when the server may have received it:
    /// a GET is idempotent, so sending it twice is allowed.
    async fn exchange(&self, request: &Request, deadline: Instant) -> Result<Exchange, Failure> {
        if let Some(stream) = self.take_idle(&request.origin) {
            match self.attempt(stream, request, deadline).await {
                Ok(exchange) => return Ok(exchange),
                Err(Attempt::Failed(failure)) => return Err(failure),
                Err(Attempt::Closed(_)) => {}
            }
        }

        let stream = connect(&request.url, deadline).await?;
        match self.attempt(stream, request, deadline).await {
            Ok(exchange) => Ok(exchange),
            Err(Attempt::Failed(failure)) => Err(failure),
            Err(Attempt::Closed(text)) => Err(Failure::Request(text)),
        }
    }

    /// Writes `request` on `stream`, reads the response and keeps the
    /// connection for reuse when the response ended cleanly and the server
    /// allows it.
    async fn attempt(
        &self,
        mut stream: TcpStream,
        request: &Request,
        deadline: Instant,
    ) -> Result<Exchange, Attempt> {
        let url = &request.url;
        match time::timeout_at(deadline, stream.write_all(&request.bytes)).await {
            Err(_) => return Err(Attempt::Failed(Failure::TimedOut)),
            Ok(Err(error)) if is_closed(&error) => {
                return Err(Attempt::Closed(error.to_string().to_lowercase()));
            }
            Ok(Err(error)) => return Err(Attempt::Failed(request_failed(&error))),
            Ok(Ok(())) => {}
        }

        let mut raw = self.buffer();
        let head = read_head(&mut stream, &mut raw, deadline).await?;
        let at = StdInstant::now();
        // A redirect that will be followed needs no body, so only what has
        // arrived with its head is read.
        let follows = is_redirect(head.status)
            && head
                .location
                .as_deref()
                .and_then(|location| url.join(location).ok())
                .is_some_and(|next| next.origin() == url.origin());
        let (body, reusable) = if follows {
            raw.drain(..head.len);
            // With the connection treated as closed, this always returns.
            finished_body(&mut raw, head.framing, &mut Dechunker::default(), false)
                .unwrap_or_default()
        } else {
            read_body(&mut stream, raw, &head, deadline).await
        };
        if reusable && head.keep_alive {
            self.put_idle(&request.origin, stream);
        }
        Ok(Exchange { head, body, at })
    }

    /// Returns an empty read buffer, a spare one when there is one.
    fn buffer(&self) -> Vec<u8> {
        let spare = self
            .inner
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        spare.unwrap_or_else(|| Vec::with_capacity(READ_BUFFER))
    }

    /// Keeps `buffer`, such as a [`Response`] body that has been read, for
    /// the next request, unless it is larger than [`MAX_SPARE_BUFFER`] or
    /// [`MAX_SPARE_BUFFERS`] are already kept.
    pub(super) fn recycle(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > MAX_SPARE_BUFFER {
            return;
        }
        buffer.clear();
        let mut spare = self
            .inner
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if spare.len() < MAX_SPARE_BUFFERS {
            spare.push(buffer);
        }
    }

    /// Returns the number of read buffers kept for reuse.
    #[cfg(test)]
    pub(super) fn spare_buffers(&self) -> usize {
        self.inner
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Takes the newest idle connection to `origin` that is still open and
    /// younger than [`IDLE_TIMEOUT`], closing the others it passes.
    fn take_idle(&self, origin: &str) -> Option<TcpStream> {
        loop {
            let idle = {
                let mut pool = self.pool();
                pool.connections.get_mut(origin)?.pop()?
            };
            if idle.since.elapsed() < IDLE_TIMEOUT && is_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    /// Keeps `stream` for the next request to `origin`, unless
    /// [`MAX_IDLE_PER_ORIGIN`] connections already wait there.
    fn put_idle(&self, origin: &str, stream: TcpStream) {
        let mut pool = self.pool();
        // A lookup by `&str` first, so that the key is copied only for an
        // origin seen for the first time.
        if !pool.connections.contains_key(origin) {
            pool.connections.insert(origin.to_owned(), Vec::new());
        }
        let Some(list) = pool.connections.get_mut(origin) else {
            return;
        };
        list.retain(|idle| idle.since.elapsed() < IDLE_TIMEOUT);
        if list.len() < MAX_IDLE_PER_ORIGIN {
            list.push(Idle {
                stream,
                since: StdInstant::now(),
            });
        }
    }

    /// Locks the idle connections, first closing the expired ones of every
    /// host when [`SWEEP_EVERY`] has passed since the last sweep.
    ///
    /// NOTE: sweeps happen only while the client sends requests, so a client
    /// that stops, such as the one a finished rollback used, keeps its last
    /// connections until it is dropped: at most two per host.
    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        let mut pool = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool
            .swept
            .is_none_or(|swept| swept.elapsed() >= SWEEP_EVERY)
        {
            pool.swept = Some(StdInstant::now());
            pool.connections.retain(|_, list| {
                list.retain(|idle| idle.since.elapsed() < IDLE_TIMEOUT);
                !list.is_empty()
            });
        }
        pool
    }
}

/// Tells whether an idle connection is still open with nothing to read.
/// A closed one reads end of file; one with unread bytes cannot be reused.
fn is_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}

/// Tells whether `error` means the peer had closed the connection.
fn is_closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn request_failed(error: &io::Error) -> Failure {
    Failure::Request(error.to_string().to_lowercase())
}

/// Returns the instant `timeout` from now, or one far in the future when
/// that instant cannot be represented.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Opens a TCP connection to the host and port of `url`, trying each
/// address of the host in turn within [`CONNECT_TIMEOUT`] and `deadline`.
/// Each address gets an equal share of the time that is left, so an
/// address that drops the connection attempt does not use it all.
async fn connect(url: &Url, deadline: Instant) -> Result<TcpStream, Failure> {
    let port = url.port_or_known_default().unwrap_or(80);
    let connect_deadline = Instant::now() + CONNECT_TIMEOUT;
    // The request timeout, when it ends first, is reported as such.
    let (connect_deadline, timed_out) = if connect_deadline < deadline {
        (connect_deadline, Failure::ConnectTimedOut)
    } else {
        (deadline, Failure::TimedOut)
    };

    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match time::timeout_at(connect_deadline, lookup).await {
                Err(_) => return Err(timed_out),
                Ok(Err(error)) => {
                    let cause = error.to_string().to_lowercase();
                    return Err(Failure::Connect(format!("dns error: {cause}")));
                }
                Ok(Ok(found)) => found.collect(),
            }
        }
        None => return Err(Failure::Connect("the url has no host".to_owned())),
    };

    let mut last_error = None;
    for (index, address) in addresses.iter().enumerate() {
        let left = addresses.len() - index;
        let share = connect_deadline.saturating_duration_since(Instant::now()) / left as u32;
        let attempt = time::timeout(share, TcpStream::connect(address)).await;
        match attempt {
            Err(_) if left == 1 => return Err(timed_out),
            Err(_) => {}
            Ok(Ok(stream)) => {
                // The request goes out in one write, so nothing waits to merge.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last_error = Some(error),
        }
    }
    match last_error {
        None if addresses.is_empty() => {
            Err(Failure::Connect("dns error: no addresses found".to_owned()))
        }
        None => Err(timed_out),
        Some(error) if error.kind() == io::ErrorKind::ConnectionRefused => Err(Failure::Refused),
        Some(error) => Err(Failure::Connect(error.to_string().to_lowercase())),
    }
}

/// Reads into `raw` until it contains a whole final response head,
/// skipping informational (1xx) responses, and returns that head.
async fn read_head(
    stream: &mut TcpStream,
    raw: &mut Vec<u8>,
    deadline: Instant,
) -> Result<Head, Attempt> {
    let mut received = false;
    // A head ends with a line feed, so it is parsed again only once one
    // arrives past the bytes already parsed.
    let mut parsed = 0;
    loop {
        let has_new_line = raw[parsed..].contains(&b'\n');
        parsed = raw.len();
        if has_new_line {
            match parse_head(raw) {
                Err(text) => return Err(Attempt::Failed(Failure::Request(text))),
                Ok(Some(head)) if (100..200).contains(&head.status) && head.status != 101 => {
                    raw.drain(..head.len);
                    parsed = 0;
                    continue;
                }
                Ok(Some(head)) if head.len > MAX_HEAD_BYTES => return Err(head_too_large()),
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
            }
        }
        if raw.len() >= MAX_HEAD_BYTES {
            return Err(head_too_large());
        }

        raw.reserve(1024);
        match time::timeout_at(deadline, stream.read_buf(raw)).await {
            Err(_) => return Err(Attempt::Failed(Failure::TimedOut)),
            Ok(Ok(0)) if !received => {
                return Err(Attempt::Closed(
                    "connection closed before a response".to_owned(),
                ));
            }
            Ok(Err(error)) if !received && is_closed(&error) => {
                return Err(Attempt::Closed(error.to_string().to_lowercase()));
            }
            Ok(Ok(0)) => {
                let text = "connection closed in the middle of the response head".to_owned();
                return Err(Attempt::Failed(Failure::Request(text)));
            }
            Ok(Err(error)) => return Err(Attempt::Failed(request_failed(&error))),
            Ok(Ok(_)) => received = true,
        }
    }
}

/// Returns the failure for a response head over [`MAX_HEAD_BYTES`].
fn head_too_large() -> Attempt {
    let text = format!("response head is larger than {} KiB", MAX_HEAD_BYTES / 1024);
    Attempt::Failed(Failure::Request(text))
}

/// Reads the body that follows `head` in `raw` and on `stream`, up to
/// [`BODY_READ_LIMIT`] bytes. Returns the body and whether the response
/// ended exactly at its end, so that the connection can carry another
/// request. A read error, a cut body or the deadline ends the read and
/// keeps what arrived.
async fn read_body(
    stream: &mut TcpStream,
    mut raw: Vec<u8>,
    head: &Head,
    deadline: Instant,
) -> (Vec<u8>, bool) {
    raw.drain(..head.len);
    let mut chunks = Dechunker::default();
    let mut open = true;
    loop {
        if let Some(done) = finished_body(&mut raw, head.framing, &mut chunks, open) {
            return done;
        }
        raw.reserve(1024);
        match time::timeout_at(deadline, stream.read_buf(&mut raw)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => open = false,
            Ok(Ok(_)) => {}
        }
    }
}

/// Returns the body in `raw` and whether the connection can carry another
/// request, or `None` while the body needs more bytes and the connection
/// is `open`. `chunks` keeps a chunked body's progress between calls.
fn finished_body(
    raw: &mut Vec<u8>,
    framing: Framing,
    chunks: &mut Dechunker,
    open: bool,
) -> Option<(Vec<u8>, bool)> {
    match framing {
        Framing::Empty => Some((Vec::new(), raw.is_empty())),
        Framing::Length(length) => {
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if raw.len() >= length {
                let exact = raw.len() == length;
                raw.truncate(length.min(BODY_READ_LIMIT));
                return Some((std::mem::take(raw), exact && length <= BODY_READ_LIMIT));
            }
            if raw.len() >= BODY_READ_LIMIT || !open {
                raw.truncate(BODY_READ_LIMIT);
                return Some((std::mem::take(raw), false));
            }
            None
        }
        Framing::UntilClose => {
            if raw.len() >= BODY_READ_LIMIT || !open {
                raw.truncate(BODY_READ_LIMIT);
                return Some((std::mem::take(raw), false));
            }
            None
        }
        Framing::Chunked => match chunks.advance(raw, BODY_READ_LIMIT) {
            Chunks::Ended { used } => Some((std::mem::take(&mut chunks.body), used == raw.len())),
            Chunks::Cut => Some((std::mem::take(&mut chunks.body), false)),
            Chunks::Partial if !open || raw.len() > MAX_FRAMING_BYTES => {
                Some((chunks.take_partial(raw, BODY_READ_LIMIT), false))
            }
            Chunks::Partial => None,
        },
    }
}

/// Progress of decoding a chunked body.
#[derive(Debug, PartialEq, Eq)]
enum Chunks {
    /// The last chunk and the trailers arrived, and the first `used` bytes
    /// of the input were the body.
    Ended { used: usize },
    /// The body reached the limit, or its framing is malformed.
    Cut,
    /// More input is needed.
    Partial,
}

/// Decoder of a chunked body that resumes where the last call stopped.
#[derive(Debug, Default)]
struct Dechunker {
    /// Offset in the input of the next chunk size line.
    at: usize,
    /// Data of the whole chunks decoded so far, at most the limit.
    body: Vec<u8>,
}

impl Dechunker {
    /// Decodes the chunks of `raw` from where the last call stopped,
    /// keeping at most `limit` bytes of body.
    fn advance(&mut self, raw: &[u8], limit: usize) -> Chunks {
        loop {
            let rest = &raw[self.at..];
            let Some(line_end) = find_crlf(rest) else {
                return if rest.len() > MAX_CHUNK_LINE {
                    Chunks::Cut
                } else {
                    Chunks::Partial
                };
            };
            let Some(size) = chunk_size(&rest[..line_end]) else {
                return Chunks::Cut;
            };
            let data = self.at + line_end + 2;

            if size == 0 {
                return trailer_end(&raw[data..]).map_or(Chunks::Partial, |end| {
                    if end > MAX_TRAILER_BYTES {
                        Chunks::Cut
                    } else {
                        Chunks::Ended { used: data + end }
                    }
                });
            }

            let room = limit - self.body.len();
            let available = raw.len() - data;
            if available < size {
                if available >= room {
                    self.body.extend_from_slice(&raw[data..data + room]);
                    return Chunks::Cut;
                }
                return Chunks::Partial;
            }
            // `size <= available`, so these sums stay within `raw.len() + 2`.
            let chunk_end = data + size;
            let data = &raw[data..data + size.min(room)];
            match raw.get(chunk_end..chunk_end + 2) {
                // The chunk is added once, when its CRLF has arrived, unless
                // it fills the body anyway.
                None if size < room => return Chunks::Partial,
                None => {
                    self.body.extend_from_slice(data);
                    return Chunks::Cut;
                }
                Some(b"\r\n") => {
                    self.body.extend_from_slice(data);
                    if self.body.len() >= limit {
                        return Chunks::Cut;
                    }
                    self.at = chunk_end + 2;
                }
                Some(_) => {
                    self.body.extend_from_slice(data);
                    return Chunks::Cut;
                }
            }
        }
    }

    /// Returns the body decoded so far followed by the data of the chunk
    /// that is still arriving, at most `limit` bytes.
    fn take_partial(&mut self, raw: &[u8], limit: usize) -> Vec<u8> {
        let mut body = std::mem::take(&mut self.body);
        let rest = &raw[self.at..];
        if let Some(line_end) = find_crlf(rest)
            && let Some(size) = chunk_size(&rest[..line_end])
        {
            let data = &rest[line_end + 2..];
            let take = data.len().min(size).min(limit - body.len());
            body.extend_from_slice(&data[..take]);
        }
        body
    }
}

/// Parses a chunk size line: hexadecimal digits, then optional extensions
/// after `;`.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.split(|&byte| byte == b';').next()?.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Returns the length of the trailer section at the start of `raw`, lines
/// ending in CRLF up to an empty one, or `None` when it has not all arrived.
fn trailer_end(raw: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let end = find_crlf(&raw[at..])?;
        at += end + 2;
        if end == 0 {
            return Some(at);
        }
    }
}

/// Position of the first CRLF in `bytes`.
fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\r\n")
}

/// Parses the response head at the start of `raw`: `None` when it is not
/// complete yet, an error text when it is not an HTTP/1.x response head.
fn parse_head(raw: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            let cause = error.to_string().to_lowercase();
            return Err(format!("invalid http response: {cause}"));
        }
    };
    let status = response.code.unwrap_or_default();
    if status < 100 {
        return Err(format!(
            "invalid http response: status {status:03} is below 100"
        ));
    }
    let http_11 = response.version == Some(1);

    // The first `Content-Length` (`None` inside when it is not a number),
    // and whether every later one equals it.
    let mut length: Option<Option<u64>> = None;
    let mut lengths_agree = true;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive = false;
    let mut location = None;
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        if header.name.eq_ignore_ascii_case("content-length") {
            let digits = value.trim();
            let all_digits = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
            let parsed = all_digits.then(|| digits.parse::<u64>().ok()).flatten();
            match length {
                None => length = Some(parsed),
                Some(first) => lengths_agree &= first == parsed,
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides how the body ends.
            let last = value.rsplit(',').next().unwrap_or_default();
            chunked = Some(last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                close |= token.trim().eq_ignore_ascii_case("close");
                keep_alive |= token.trim().eq_ignore_ascii_case("keep-alive");
            }
        } else if header.name.eq_ignore_ascii_case("location") {
            location = std::str::from_utf8(header.value).ok().map(str::to_owned);
        }
    }

    let framing = if matches!(status, 101 | 204 | 304) {
        Framing::Empty
    } else if let Some(chunked) = chunked {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(first) = length {
        match first {
            Some(length) if lengths_agree => Framing::Length(length),
            _ => return Err("invalid http response: content-length is not one number".to_owned()),
        }
    } else {
        Framing::UntilClose
    };

    // A response with both framings, or chunked in HTTP/1.0, may have
    // been framed differently by the server, so its connection is closed.
    let ambiguous = chunked.is_some() && (length.is_some() || !http_11);
    Ok(Some(Head {
        status,
        len,
        framing,
        keep_alive: status != 101 && !close && !ambiguous && (http_11 || keep_alive),
        location,
    }))
}

/// Tells whether `status` is a redirect status.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Returns `host:port`, the key of the idle connections to `url`.
fn origin_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    format!("{host}:{port}")
}

/// Returns the `Authorization` value for the userinfo of `url`, if any.
fn authorization(url: &Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut credentials = decode(url.username());
    credentials.push(':');
    if let Some(password) = url.password() {
        credentials.push_str(&decode(password));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    Some(format!("Basic {encoded}"))
}

/// Builds the GET request for `url`.
fn request_bytes(url: &Url, authorization: Option<&str>) -> Vec<u8> {
    let target = match &url[Position::BeforePath..Position::AfterQuery] {
        "" => "/",
        target => target,
    };
    let host = url.host_str().unwrap_or_default();
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}");
    if let Some(port) = url.port() {
        request.push_str(&format!(":{port}"));
    }
    request.push_str(concat!(
        "\r\nUser-Agent: rewind/",
        env!("CARGO_PKG_VERSION"),
        "\r\nAccept: */*\r\n"
    ));
    if let Some(authorization) = authorization {
        request.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::engine::health::test_support::TestServer;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// Action of the scripted server on a request.
    #[derive(Clone, Copy)]
    enum Reply {
        /// Writes the bytes and waits for the next request.
        Send(&'static [u8]),
        /// Writes the bytes and closes the connection.
        SendClose(&'static [u8]),
        /// Closes the connection without a response.
        Close,
        /// Writes each piece, pausing [`PIECE_PAUSE`] between pieces, and
        /// waits for the next request.
        Pieces(&'static [&'static [u8]]),
        /// Writes the bytes one at a time, pausing [`BYTE_PAUSE`] after each,
        /// and waits for the next request.
        Bytewise(&'static [u8]),
        /// Writes the first bytes, then the second ones again and again until
        /// the client closes the connection.
        Flood(&'static [u8], &'static [u8]),
        /// Writes nothing and waits until the client closes the connection.
        Silent,
    }

    /// A server on 127.0.0.1 that responds to the requests on its n-th
    /// connection with the n-th script (the last script for later
    /// connections), closes a connection when its script ends, and records
    /// every request.
    struct Scripted {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        requests: Arc<Mutex<Vec<String>>>,
        task: JoinHandle<()>,
    }

    impl Scripted {
        async fn start(scripts: Vec<Vec<Reply>>) -> Scripted {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let task = tokio::spawn({
                let accepted = Arc::clone(&accepted);
                let requests = Arc::clone(&requests);
                async move {
                    loop {
                        let (stream, _) = listener.accept().await.unwrap();
                        let index = accepted.fetch_add(1, Ordering::SeqCst);
                        let script = scripts[index.min(scripts.len() - 1)].clone();
                        tokio::spawn(serve(stream, script, Arc::clone(&requests)));
                    }
                }
            });
            Scripted {
                addr,
                accepted,
                requests,
                task,
            }
        }

        fn url(&self, rest: &str) -> Url {
            Url::parse(&format!("http://{}{rest}", self.addr)).unwrap()
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }
    }

    impl Drop for Scripted {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve(mut stream: TcpStream, script: Vec<Reply>, requests: Arc<Mutex<Vec<String>>>) {
        for reply in script {
            let mut request = Vec::new();
            while find_crlf_crlf(&request).is_none() {
                let mut chunk = [0u8; 1024];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&chunk[..read]),
                }
            }
            requests
                .lock()
                .unwrap()
                .push(String::from_utf8(request).unwrap());
            match reply {
                Reply::Send(bytes) => stream.write_all(bytes).await.unwrap(),
                Reply::SendClose(bytes) => {
                    stream.write_all(bytes).await.unwrap();
                    return;
                }
                Reply::Close => return,
                Reply::Pieces(pieces) => {
                    stream.set_nodelay(true).unwrap();
                    for (index, piece) in pieces.iter().enumerate() {
                        if index > 0 {
                            tokio::time::sleep(PIECE_PAUSE).await;
                        }
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                    }
                }
                Reply::Bytewise(bytes) => {
                    stream.set_nodelay(true).unwrap();
                    for byte in bytes.chunks(1) {
                        if stream.write_all(byte).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(BYTE_PAUSE).await;
                    }
                }
                Reply::Flood(first, repeated) => {
                    if stream.write_all(first).await.is_err() {
                        return;
                    }
                    while stream.write_all(repeated).await.is_ok() {}
                    return;
                }
                Reply::Silent => {
                    let mut chunk = [0u8; 1024];
                    while let Ok(1..) = stream.read(&mut chunk).await {}
                    return;
                }
            }
        }
        // Records one more request, if the client sends one, and closes.
        let mut chunk = [0u8; 1024];
        if let Ok(read @ 1..) = stream.read(&mut chunk).await {
            let request = String::from_utf8_lossy(&chunk[..read]).into_owned();
            requests.lock().unwrap().push(request);
        }
    }

    fn find_crlf_crlf(bytes: &[u8]) -> Option<usize> {
        bytes.windows(4).position(|window| window == b"\r\n\r\n")
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Sends two GETs for `/` to `server` with one new client and returns
    /// both responses.
    async fn get_twice(server: &Scripted) -> (Response, Response) {
        let client = Client::default();
        let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
        let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();
        (first, second)
    }

    #[tokio::test]
    async fn reuses_keep_alive_connection() {
        let server = Scripted::start(vec![vec![Reply::Send(OK); 3]]).await;
        let client = Client::default();

        for _ in 0..3 {
            let response = client.get(&server.url("/health"), TIMEOUT).await.unwrap();
            assert_eq!(
                (response.status, response.body.as_slice()),
                (200, &b"ok"[..])
            );
        }

        assert_eq!(server.accepted(), 1);
        assert_eq!(client.idle_count(&server.addr.to_string()), 1);
    }

    #[tokio::test]
    async fn recycled_buffer_serves_next_request() {
        let server = Scripted::start(vec![vec![Reply::Send(OK); 2]]).await;
        let client = Client::default();

        let first = client.get(&server.url("/health"), TIMEOUT).await.unwrap();
        let address = first.body.as_ptr();
        assert_eq!(first.body.capacity(), READ_BUFFER);
        client.recycle(first.body);
        assert_eq!(client.spare_buffers(), 1);

        let second = client.get(&server.url("/health"), TIMEOUT).await.unwrap();
        assert_eq!(client.spare_buffers(), 0);
        assert_eq!(second.body, b"ok");
        assert_eq!(second.body.as_ptr(), address);
    }

    #[test]
    fn keeps_small_buffers_up_to_limit() {
        let client = Client::default();
        client.recycle(Vec::new());
        client.recycle(Vec::with_capacity(MAX_SPARE_BUFFER + 1));
        assert_eq!(client.spare_buffers(), 0);

        for _ in 0..MAX_SPARE_BUFFERS + 3 {
            client.recycle(b"left over".to_vec());
        }
        assert_eq!(client.spare_buffers(), MAX_SPARE_BUFFERS);
        let buffer = client.buffer();
        assert_eq!((buffer.len(), buffer.capacity()), (0, 9));
    }

    #[tokio::test]
    async fn reconnects_after_connection_close_header() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(close)]]).await;
        let client = Client::default();

        for _ in 0..2 {
            let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            assert_eq!(response.status, 200);
        }

        assert_eq!(server.accepted(), 2);
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn retries_closed_idle_connection_once() {
        // The first connection responds once and closes at the next request.
        let server = Scripted::start(vec![vec![Reply::Send(OK)], vec![Reply::Send(OK)]]).await;
        let (first, second) = get_twice(&server).await;

        assert_eq!((first.status, second.status), (200, 200));
        assert_eq!(server.accepted(), 2);
        assert_eq!(server.requests.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn new_connection_closed_without_response_fails() {
        let server = Scripted::start(vec![vec![Reply::Close]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("connection closed before a response".to_owned())
        );
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn reads_chunked_body_and_keeps_connection() {
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n6;note=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(chunked)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.status, 503);
        assert_eq!(response.body, b"hello world");
        assert_eq!(client.idle_count(&server.addr.to_string()), 1);
    }

    #[tokio::test]
    async fn reads_body_until_close() {
        let reply = b"HTTP/1.0 503 Service Unavailable\r\n\r\ndatabase down";
        let server = Scripted::start(vec![vec![Reply::SendClose(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.status, 503);
        assert_eq!(response.body, b"database down");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn keeps_partial_body_at_timeout() {
        let reply = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nhello";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
        let client = Client::default();

        let response = client
            .get(&server.url("/"), Duration::from_millis(200))
            .await
            .unwrap();

        assert_eq!(response.status, 500);
        assert_eq!(response.body, b"hello");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn skips_informational_response() {
        let reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 204);
        assert_eq!(response.body, b"");
    }

    #[tokio::test]
    async fn rejects_response_that_is_not_http() {
        let server = Scripted::start(vec![vec![Reply::Send(b"SSH-2.0-OpenSSH_9.6\r\n")]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("invalid http response: invalid http version".to_owned())
        );
    }

    #[tokio::test]
    async fn rejects_head_larger_than_limit() {
        let head: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nX-Padding: {}",
                "a".repeat(MAX_HEAD_BYTES)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let server = Scripted::start(vec![vec![Reply::Send(head)]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("response head is larger than 64 KiB".to_owned())
        );
    }

    #[tokio::test]
    async fn rejects_conflicting_content_lengths() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("invalid http response: content-length is not one number".to_owned())
        );
    }

    #[tokio::test]
    async fn sends_path_host_and_basic_authentication() {
        let server = Scripted::start(vec![vec![Reply::Send(OK)]]).await;
        let mut url = server.url("/health?probe=1#top");
        url.set_username("admin").unwrap();
        url.set_password(Some("hunter 2")).unwrap();

        Client::default().get(&url, TIMEOUT).await.unwrap();

        let expected = format!(
            "GET /health?probe=1 HTTP/1.1\r\nHost: {}\r\nUser-Agent: rewind/{}\r\n\
             Accept: */*\r\nAuthorization: Basic YWRtaW46aHVudGVyIDI=\r\n\r\n",
            server.addr,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(*server.requests.lock().unwrap(), [expected]);
    }

    #[tokio::test]
    async fn resolves_host_names() {
        let server = TestServer::start().await;
        let url = Url::parse(&format!("http://localhost:{}/health", server.addr.port())).unwrap();

        let response = Client::default().get(&url, TIMEOUT).await.unwrap();

        assert_eq!(response.status, 200);
    }

    #[tokio::test]
    async fn reports_refused_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/")).unwrap();

        let result = Client::default().get(&url, TIMEOUT).await;

        assert_eq!(result.unwrap_err(), Failure::Refused);
    }

    #[tokio::test]
    async fn follows_redirect_without_its_body() {
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 100\r\n\r\n";
        let server =
            Scripted::start(vec![vec![Reply::Send(redirect)], vec![Reply::Send(OK)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(server.accepted(), 2);
        let requests = server.requests.lock().unwrap();
        assert!(
            requests[1].starts_with("GET /next HTTP/1.1\r\n"),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn request_sent_again_and_redirected_keeps_authentication() {
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /next\r\nConnection: close\r\n\r\n";
        let server = Scripted::start(vec![
            vec![Reply::Send(redirect)],
            vec![Reply::Send(OK), Reply::Send(OK)],
        ])
        .await;
        let mut url = server.url("/health");
        url.set_username("admin").unwrap();
        url.set_password(Some("pw")).unwrap();
        let request = Request::new(&url);
        let client = Client::default();

        let first = client.send(&request, TIMEOUT).await.unwrap();
        let second = client.send(&request, TIMEOUT).await.unwrap();

        assert_eq!((first.status, second.status), (200, 200));
        let head = |target: &str| {
            format!(
                "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rewind/{}\r\n\
                 Accept: */*\r\nAuthorization: Basic YWRtaW46cHc=\r\n\r\n",
                server.addr,
                env!("CARGO_PKG_VERSION")
            )
        };
        // The second send reuses the connection kept after `/next`.
        assert_eq!(server.accepted(), 2);
        assert_eq!(
            *server.requests.lock().unwrap(),
            [head("/health"), head("/next"), head("/health")]
        );
    }

    #[tokio::test]
    async fn rejects_status_below_100() {
        let server = Scripted::start(vec![vec![Reply::Send(b"HTTP/1.1 099 Odd\r\n\r\n")]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("invalid http response: status 099 is below 100".to_owned())
        );
    }

    #[tokio::test]
    async fn rejects_signed_content_length() {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("invalid http response: content-length is not one number".to_owned())
        );
    }

    #[tokio::test]
    async fn closes_connection_with_two_framings() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n\
            2\r\nok\r\n0\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.body, b"ok");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[test]
    fn deadline_survives_huge_timeout() {
        let deadline = deadline_after(Duration::MAX);

        assert!(deadline > Instant::now() + Duration::from_secs(50 * 365 * 24 * 3600));
    }

    #[test]
    fn dechunker_waits_for_more_input() {
        let mut cut_short = Dechunker::default();
        let mut no_trailer = Dechunker::default();

        assert_eq!(cut_short.advance(b"5\r\nhel", 100), Chunks::Partial);
        assert_eq!(cut_short.take_partial(b"5\r\nhel", 100), b"hel");
        assert_eq!(
            no_trailer.advance(b"5\r\nhello\r\n0\r\n", 100),
            Chunks::Partial
        );
        assert_eq!(no_trailer.body, b"hello");
    }

    #[test]
    fn dechunker_resumes_after_whole_chunks() {
        let raw = b"2\r\nok\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut chunks = Dechunker::default();

        assert_eq!(chunks.advance(&raw[..12], 100), Chunks::Partial);
        assert_eq!(chunks.at, 7);
        assert_eq!(chunks.advance(raw, 100), Chunks::Ended { used: raw.len() });
        assert_eq!(chunks.body, b"okabc");
    }

    #[test]
    fn dechunker_cuts_at_limit() {
        let mut chunks = Dechunker::default();

        assert_eq!(chunks.advance(b"5\r\nhello\r\n0\r\n\r\n", 3), Chunks::Cut);
        assert_eq!(chunks.body, b"hel");
    }

    #[test]
    fn dechunker_stops_at_malformed_framing() {
        for (raw, body) in [
            (&b"zz\r\nhello\r\n"[..], &b""[..]),
            (b"+5\r\nhello\r\n", b""),
            (b"2\r\nhello\r\n", b"he"),
        ] {
            let mut chunks = Dechunker::default();

            assert_eq!(chunks.advance(raw, 100), Chunks::Cut, "{raw:?}");
            assert_eq!(chunks.body, body, "{raw:?}");
        }
    }

    #[test]
    fn dechunker_survives_huge_chunk_size() {
        let raw = b"ffffffffffffffed\r\nabc";
        let mut waiting = Dechunker::default();
        let mut full = Dechunker::default();

        assert_eq!(waiting.advance(raw, 100), Chunks::Partial);
        assert_eq!(full.advance(raw, 2), Chunks::Cut);
        assert_eq!(full.body, b"ab");
    }

    #[test]
    fn dechunker_reports_bytes_used() {
        let raw = b"2\r\nok\r\n0\r\nx-trailer: 1\r\n\r\nextra";
        let mut chunks = Dechunker::default();

        assert_eq!(
            chunks.advance(raw, 100),
            Chunks::Ended {
                used: raw.len() - 5
            }
        );
        assert_eq!(chunks.body, b"ok");
    }

    /// Pause between the pieces of a [`Reply::Pieces`] response.
    const PIECE_PAUSE: Duration = Duration::from_millis(20);

    /// Pause after each byte of a [`Reply::Bytewise`] response.
    const BYTE_PAUSE: Duration = Duration::from_millis(1);

    /// Request timeout of the tests that expect the client to time out.
    const SHORT: Duration = Duration::from_millis(200);

    /// Upper bound on a request that must end by its own timeout, so that a
    /// hang fails the test instead of blocking the suite.
    const HANG_GUARD: Duration = Duration::from_secs(10);

    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    fn leak_pieces(pieces: Vec<&'static [u8]>) -> &'static [&'static [u8]] {
        Box::leak(pieces.into_boxed_slice())
    }

    /// Returns a complete head of `status_line`, `headers` and the blank
    /// line, padded with an `X-Padding` header to exactly `len` bytes.
    fn padded_head(status_line: &str, headers: &str, len: usize) -> Vec<u8> {
        let fixed = format!("{status_line}\r\n{headers}X-Padding: \r\n\r\n");
        let padding = "a".repeat(len - fixed.len());
        format!("{status_line}\r\n{headers}X-Padding: {padding}\r\n\r\n").into_bytes()
    }

    #[tokio::test]
    async fn bytewise_length_response_is_read() {
        let reply = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown";
        let server = Scripted::start(vec![vec![Reply::Bytewise(reply), Reply::Send(OK)]]).await;
        let (first, second) = get_twice(&server).await;

        assert_eq!(first.status, 503);
        assert_eq!(first.body, b"down");
        assert_eq!(second.status, 200);
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn bytewise_chunked_response_is_read() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n6;note=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Bytewise(reply), Reply::Send(OK)]]).await;
        let (first, second) = get_twice(&server).await;

        assert_eq!(first.status, 200);
        assert_eq!(first.body, b"hello world");
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn split_responses_are_read() {
        // Each case splits a response where a parser could lose its place:
        // inside CRLFs of the head, between head and chunks, inside a chunk
        // size line, and inside chunk and trailer terminators.
        let cases: [(&[&[u8]], &[u8]); 4] = [
            (
                &[
                    b"HTTP/1.1 200 OK\r",
                    b"\nContent-Length: 2\r",
                    b"\n\r",
                    b"\nok",
                ],
                b"ok",
            ),
            (
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"2\r\nok\r\n0\r\n\r\n",
                ],
                b"ok",
            ),
            (
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1",
                    b"0;ext",
                    b"=1\r",
                    b"\n0123456789abcdef\r\n0\r\n\r\n",
                ],
                b"0123456789abcdef",
            ),
            (
                &[
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r",
                    b"\n0\r\nx-t",
                    b"railer: 1\r\n\r",
                    b"\n",
                ],
                b"hello",
            ),
        ];
        for (pieces, body) in cases {
            let server = Scripted::start(vec![vec![Reply::Pieces(pieces), Reply::Send(OK)]]).await;
            let (first, second) = get_twice(&server).await;

            assert_eq!(first.status, 200, "{pieces:?}");
            assert_eq!(first.body, body, "{pieces:?}");
            assert_eq!(second.body, b"ok", "{pieces:?}");
            assert_eq!(server.accepted(), 1, "{pieces:?}");
        }
    }

    #[tokio::test]
    async fn extra_bytes_after_body_drop_connection() {
        let replies: [&'static [u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nx",
        ];
        for reply in replies {
            let server =
                Scripted::start(vec![vec![Reply::Send(reply)], vec![Reply::Send(OK)]]).await;
            let client = Client::default();

            let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            let idle = client.idle_count(&server.addr.to_string());
            let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

            assert_eq!(first.body, b"ok", "{reply:?}");
            assert_eq!(idle, 0, "{reply:?}");
            assert_eq!(second.body, b"ok", "{reply:?}");
            assert_eq!(server.accepted(), 2, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn late_extra_bytes_drop_idle_connection() {
        // The extra bytes form a whole response, so a reused connection
        // would return "junk" as the body of the second request.
        let pieces: &[&[u8]] = &[OK, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunk"];
        let server =
            Scripted::start(vec![vec![Reply::Pieces(pieces)], vec![Reply::Send(OK)]]).await;
        let client = Client::default();

        let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
        // Leaves the server ample time to write its late piece.
        tokio::time::sleep(PIECE_PAUSE * 25).await;
        let idle = client.idle_count(&server.addr.to_string());
        let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(first.body, b"ok");
        assert_eq!(idle, 1);
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 2);
        assert_eq!(client.idle_count(&server.addr.to_string()), 1);
    }

    #[tokio::test]
    async fn connection_close_any_case_not_reused() {
        for value in [
            "close",
            "Close",
            "CLOSE",
            "cLoSe",
            " close ",
            "keep-alive, close",
            "Upgrade,CLOSE",
        ] {
            let reply = leak(
                format!("HTTP/1.1 200 OK\r\nConnection: {value}\r\nContent-Length: 2\r\n\r\nok")
                    .into_bytes(),
            );
            let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
            let client = Client::default();

            let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            let idle = client.idle_count(&server.addr.to_string());
            let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

            assert_eq!(first.body, b"ok", "{value}");
            assert_eq!(idle, 0, "{value}");
            assert_eq!(second.body, b"ok", "{value}");
            assert_eq!(server.accepted(), 2, "{value}");
        }
    }

    #[tokio::test]
    async fn close_among_connection_headers_wins() {
        let reply = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nCONNECTION: Close\r\n\
            Content-Length: 2\r\n\r\nok";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.body, b"ok");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn keep_alive_responses_reused() {
        // HTTP/1.1 keeps the connection unless `Connection` lists `close`
        // as a whole token. HTTP/1.0 keeps it only with `keep-alive`.
        let cases = [
            ("HTTP/1.1", "keep-alive"),
            ("HTTP/1.1", "closed"),
            ("HTTP/1.1", "xclose"),
            ("HTTP/1.1", "Upgrade"),
            ("HTTP/1.0", "keep-alive"),
            ("HTTP/1.0", "Keep-Alive"),
            ("HTTP/1.0", "KEEP-ALIVE"),
        ];
        for (version, value) in cases {
            let reply = leak(
                format!("{version} 200 OK\r\nConnection: {value}\r\nContent-Length: 2\r\n\r\nok")
                    .into_bytes(),
            );
            let server = Scripted::start(vec![vec![Reply::Send(reply), Reply::Send(OK)]]).await;
            let client = Client::default();

            let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            let idle = client.idle_count(&server.addr.to_string());
            let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

            assert_eq!(first.body, b"ok", "{version} {value}");
            assert_eq!(idle, 1, "{version} {value}");
            assert_eq!(second.body, b"ok", "{version} {value}");
            assert_eq!(server.accepted(), 1, "{version} {value}");
        }
    }

    #[tokio::test]
    async fn http10_without_keep_alive_not_reused() {
        for headers in [
            "",
            "Connection: keep-alive, close\r\n",
            "Keep-Alive: timeout=5\r\n",
        ] {
            let reply = leak(
                format!("HTTP/1.0 200 OK\r\n{headers}Content-Length: 2\r\n\r\nok").into_bytes(),
            );
            let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
            let client = Client::default();

            let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            let idle = client.idle_count(&server.addr.to_string());
            let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

            assert_eq!(first.status, 200, "{headers:?}");
            assert_eq!(first.body, b"ok", "{headers:?}");
            assert_eq!(idle, 0, "{headers:?}");
            assert_eq!(second.body, b"ok", "{headers:?}");
            assert_eq!(server.accepted(), 2, "{headers:?}");
        }
    }

    #[tokio::test]
    async fn http10_keep_alive_until_close_not_reused() {
        let reply = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok";
        let server = Scripted::start(vec![vec![Reply::SendClose(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.body, b"ok");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn no_content_body_bytes_dropped() {
        for status in [204, 304] {
            let reply = leak(
                format!("HTTP/1.1 {status} Empty\r\nContent-Length: 5\r\n\r\nhello").into_bytes(),
            );
            let server =
                Scripted::start(vec![vec![Reply::Send(reply)], vec![Reply::Send(OK)]]).await;
            let client = Client::default();

            let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
            let idle = client.idle_count(&server.addr.to_string());
            let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

            assert_eq!(first.status, status);
            assert_eq!(first.body, b"", "{status}");
            assert_eq!(idle, 0, "{status}");
            assert_eq!(second.body, b"ok", "{status}");
            assert_eq!(server.accepted(), 2, "{status}");
        }
    }

    #[tokio::test]
    async fn no_content_late_body_drops_connection() {
        let pieces: &[&[u8]] = &[b"HTTP/1.1 204 No Content\r\n\r\n", b"hello"];
        let server =
            Scripted::start(vec![vec![Reply::Pieces(pieces)], vec![Reply::Send(OK)]]).await;
        let client = Client::default();

        let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
        // Leaves the server ample time to write its late piece.
        tokio::time::sleep(PIECE_PAUSE * 25).await;
        let idle = client.idle_count(&server.addr.to_string());
        let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(first.status, 204);
        assert_eq!(first.body, b"");
        assert_eq!(idle, 1);
        assert_eq!(second.status, 200);
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 2);
    }

    #[tokio::test]
    async fn gzip_without_chunked_reads_until_close() {
        let reply =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::SendClose(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"\x1f\x8b\x08\x00\r\n0\r\n\r\n");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn last_transfer_coding_decides_framing() {
        let cases: [(&'static [u8], &[u8]); 3] = [
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                b"ok",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                b"2\r\nok\r\n0\r\n\r\n",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\nok",
                b"ok",
            ),
        ];
        for (reply, body) in cases {
            let server = Scripted::start(vec![vec![Reply::SendClose(reply)]]).await;

            let response = Client::default()
                .get(&server.url("/"), TIMEOUT)
                .await
                .unwrap();

            assert_eq!(response.body, body, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn many_informational_responses_skipped() {
        let mut reply = Vec::new();
        for index in 0..1000 {
            let status = [100, 102, 103][index % 3];
            reply.extend_from_slice(
                format!("HTTP/1.1 {status} Info\r\nLink: </style.css>; rel=preload\r\n\r\n")
                    .as_bytes(),
            );
        }
        reply.extend_from_slice(OK);
        let server = Scripted::start(vec![vec![Reply::Send(leak(reply)), Reply::Send(OK)]]).await;
        let (first, second) = get_twice(&server).await;

        assert_eq!(first.status, 200);
        assert_eq!(first.body, b"ok");
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn informational_responses_split_are_skipped() {
        let pieces: &[&[u8]] = &[
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Ea",
            b"rly Hints\r\n\r",
            b"\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ];
        let server = Scripted::start(vec![vec![Reply::Pieces(pieces)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
    }

    #[tokio::test]
    async fn informational_flood_times_out() {
        let repeated = leak(b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100));
        let server = Scripted::start(vec![vec![Reply::Flood(b"", repeated)]]).await;

        let result = time::timeout(HANG_GUARD, Client::default().get(&server.url("/"), SHORT))
            .await
            .expect("the request outlived its timeout");

        assert_eq!(result.unwrap_err(), Failure::TimedOut);
    }

    #[tokio::test]
    async fn informational_then_silence_times_out() {
        let reply = b"HTTP/1.1 100 Continue\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let result = Client::default().get(&server.url("/"), SHORT).await;

        assert_eq!(result.unwrap_err(), Failure::TimedOut);
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let server = Scripted::start(vec![vec![Reply::Silent]]).await;

        let result = Client::default().get(&server.url("/"), SHORT).await;

        assert_eq!(result.unwrap_err(), Failure::TimedOut);
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn partial_head_then_silence_times_out() {
        let server =
            Scripted::start(vec![vec![Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Le")]]).await;

        let result = Client::default().get(&server.url("/"), SHORT).await;

        assert_eq!(result.unwrap_err(), Failure::TimedOut);
    }

    #[tokio::test]
    async fn endless_body_cut_at_read_limit() {
        let head = b"HTTP/1.1 200 OK\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Flood(head, &[b'x'; 1024])]]).await;
        let client = Client::default();

        let response = time::timeout(HANG_GUARD, client.get(&server.url("/"), TIMEOUT))
            .await
            .expect("the request outlived its timeout")
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, [b'x'; BODY_READ_LIMIT]);
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn endless_trailers_cut_after_framing_limit() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n";
        let repeated = leak(b"x-padding: 1\r\n".repeat(100));
        let server = Scripted::start(vec![vec![Reply::Flood(head, repeated)]]).await;
        let client = Client::default();

        let response = time::timeout(HANG_GUARD, client.get(&server.url("/"), TIMEOUT))
            .await
            .expect("the request outlived its timeout")
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn switching_protocols_is_final() {
        let reply = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
            Upgrade: websocket\r\n\r\n\x81\x05hello";
        let server = Scripted::start(vec![vec![Reply::Send(reply)], vec![Reply::Send(OK)]]).await;
        let client = Client::default();

        let first = client.get(&server.url("/"), TIMEOUT).await.unwrap();
        let idle = client.idle_count(&server.addr.to_string());
        let second = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(first.status, 101);
        assert_eq!(first.body, b"");
        assert_eq!(idle, 0);
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 2);
    }

    #[tokio::test]
    async fn non_utf8_location_not_followed() {
        let reply = b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 5\r\n\r\nmoved";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), TIMEOUT).await.unwrap();

        assert_eq!(response.status, 302);
        assert_eq!(response.body, b"moved");
        assert_eq!(server.requests.lock().unwrap().len(), 1);
        assert_eq!(client.idle_count(&server.addr.to_string()), 1);
    }

    #[tokio::test]
    async fn relative_location_resolves_against_path() {
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: next?step=2\r\nContent-Length: 0\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(redirect), Reply::Send(OK)]]).await;

        let response = Client::default()
            .get(&server.url("/dir/page"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
        // A redirect with an empty body leaves its connection reusable.
        assert_eq!(server.accepted(), 1);
        let requests = server.requests.lock().unwrap();
        assert_eq!(requests.len(), 2);
        assert!(
            requests[1].starts_with("GET /dir/next?step=2 HTTP/1.1\r\n"),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn cross_port_redirect_is_returned() {
        let other = Scripted::start(vec![vec![Reply::Send(OK)]]).await;
        let reply = leak(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{}/health\r\nContent-Length: 5\r\n\r\nmoved",
                other.addr
            )
            .into_bytes(),
        );
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 302);
        assert_eq!(response.body, b"moved");
        assert_eq!(server.accepted(), 1);
        assert_eq!(other.accepted(), 0);
    }

    #[tokio::test]
    async fn cross_port_redirect_late_body_kept() {
        let other = Scripted::start(vec![vec![Reply::Send(OK)]]).await;
        let head = leak(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{}/health\r\nContent-Length: 5\r\n\r\n",
                other.addr
            )
            .into_bytes(),
        );
        let pieces = leak_pieces(vec![head, b"moved"]);
        let server = Scripted::start(vec![vec![Reply::Pieces(pieces)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 302);
        assert_eq!(response.body, b"moved");
        assert_eq!(other.accepted(), 0);
    }

    #[tokio::test]
    async fn redirect_loop_stops_after_limit() {
        let redirect = b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n";
        let server = Scripted::start(vec![vec![Reply::Send(redirect); MAX_REDIRECTS + 1]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Redirect("too many redirects".to_owned())
        );
        assert_eq!(server.requests.lock().unwrap().len(), MAX_REDIRECTS + 1);
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn headers_at_count_limit_accepted() {
        let mut reply = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
        for index in 1..MAX_HEADERS {
            reply.push_str(&format!("X-Header-{index}: {index}\r\n"));
        }
        reply.push_str("\r\nok");
        let server = Scripted::start(vec![vec![Reply::Send(leak(reply.into_bytes()))]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
    }

    #[tokio::test]
    async fn headers_over_count_limit_rejected() {
        let mut reply = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
        for index in 0..MAX_HEADERS {
            reply.push_str(&format!("X-Header-{index}: {index}\r\n"));
        }
        reply.push_str("\r\nok");
        let server = Scripted::start(vec![vec![Reply::Send(leak(reply.into_bytes()))]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("invalid http response: too many headers".to_owned())
        );
    }

    #[tokio::test]
    async fn head_at_size_limit_accepted() {
        let mut reply = padded_head("HTTP/1.1 200 OK", "Content-Length: 2\r\n", MAX_HEAD_BYTES);
        assert_eq!(reply.len(), MAX_HEAD_BYTES);
        reply.extend_from_slice(b"ok");
        let server = Scripted::start(vec![vec![Reply::Send(leak(reply)), Reply::Send(OK)]]).await;
        let (first, second) = get_twice(&server).await;

        assert_eq!(first.status, 200);
        assert_eq!(first.body, b"ok");
        assert_eq!(second.body, b"ok");
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn head_over_size_limit_rejected() {
        let head = padded_head(
            "HTTP/1.1 200 OK",
            "Content-Length: 2\r\n",
            MAX_HEAD_BYTES + 1024,
        );
        let (first, rest) = head.split_at(MAX_HEAD_BYTES);
        let pieces = leak_pieces(vec![leak(first.to_vec()), leak(rest.to_vec()), b"ok"]);
        let server = Scripted::start(vec![vec![Reply::Pieces(pieces)]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("response head is larger than 64 KiB".to_owned())
        );
    }

    #[tokio::test]
    async fn head_over_limit_after_pause_rejected() {
        let head = padded_head(
            "HTTP/1.1 200 OK",
            "Content-Length: 2\r\n",
            MAX_HEAD_BYTES + 4096,
        );
        let (first, rest) = head.split_at(MAX_HEAD_BYTES - 1000);
        let pieces = leak_pieces(vec![leak(first.to_vec()), leak(rest.to_vec()), b"ok"]);
        let server = Scripted::start(vec![vec![Reply::Pieces(pieces)]]).await;

        let result = Client::default().get(&server.url("/"), TIMEOUT).await;

        assert_eq!(
            result.unwrap_err(),
            Failure::Request("response head is larger than 64 KiB".to_owned())
        );
    }

    #[test]
    fn dechunker_waits_for_chunk_crlf() {
        let raw = b"5\r\nhello\r\n0\r\n\r\n";
        let mut chunks = Dechunker::default();

        assert_eq!(chunks.advance(&raw[..8], 100), Chunks::Partial);
        assert_eq!(chunks.advance(&raw[..9], 100), Chunks::Partial);
        assert_eq!(chunks.advance(raw, 100), Chunks::Ended { used: raw.len() });
        assert_eq!(chunks.body, b"hello");
    }

    #[tokio::test]
    async fn unterminated_chunk_kept_once() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;
        let client = Client::default();

        let response = client.get(&server.url("/"), SHORT).await.unwrap();

        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        assert_eq!(client.idle_count(&server.addr.to_string()), 0);
    }

    #[tokio::test]
    async fn location_on_other_statuses_ignored() {
        for status in [200, 300, 304] {
            let reply = leak(
                format!("HTTP/1.1 {status} Other\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n")
                    .into_bytes(),
            );
            let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

            let response = Client::default()
                .get(&server.url("/"), TIMEOUT)
                .await
                .unwrap();

            assert_eq!(response.status, status);
            assert_eq!(response.body, b"", "{status}");
            assert_eq!(server.requests.lock().unwrap().len(), 1, "{status}");
        }
    }

    #[tokio::test]
    async fn status_line_without_reason_accepted() {
        let reply = b"HTTP/1.1 503\r\nContent-Length: 4\r\n\r\ndown";
        let server = Scripted::start(vec![vec![Reply::Send(reply)]]).await;

        let response = Client::default()
            .get(&server.url("/"), TIMEOUT)
            .await
            .unwrap();

        assert_eq!(response.status, 503);
        assert_eq!(response.body, b"down");
    }
}
