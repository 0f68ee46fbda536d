//! The demo's HTTP service, `rewind demo-serve`: it serves the release
//! checked out in its working folder until a signal or the end of the demo
//! supervisor stops it. A release with a `[data]` table migrates the
//! service's data when it starts and reads it on every health check.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use color_eyre::eyre::{Result, WrapErr, bail};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};

use super::data::{self, DataSpec};
use super::process;
use crate::cli::args::DemoServeArgs;

/// Name of the release file in the root of every demo repository.
pub const RELEASE_FILE: &str = "release.toml";

/// Time between two checks that the supervisor process still exists.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The `release.toml` of one release: how the service built from it behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: String,
    /// Status code of `GET /health`.
    pub health_status: u16,
    /// Delay before each `GET /health` response, in milliseconds.
    pub latency_ms: u64,
    /// Delay between the process start and the listening socket, in
    /// milliseconds.
    pub startup_ms: u64,
    /// Text in the `GET /health` response body.
    pub message: String,
    /// The data this release reads and writes; `None` for a service
    /// without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSpec>,
}

impl Release {
    /// Reads and parses `release.toml` in `folder`.
    pub fn read(folder: &Path) -> Result<Release> {
        let path = folder.join(RELEASE_FILE);
        let text = std::fs::read_to_string(&path).wrap_err_with(|| {
            format!(
                "failed to read `{}`; run the demo service in a demo repository",
                path.display()
            )
        })?;
        let release: Release = toml::from_str(&text).wrap_err_with(|| {
            format!(
                "invalid release file `{}`; check out a release commit",
                path.display()
            )
        })?;

        if !(100..=599).contains(&release.health_status) {
            bail!(
                "invalid `health_status` {} in `{}`; use an HTTP status code from 100 to 599",
                release.health_status,
                path.display()
            );
        }
        Ok(release)
    }
}

/// State of the request handlers: the release and, when it keeps data,
/// where the data is.
pub struct Service {
    pub release: Release,
    /// The data path from `--data`, used when the release has a `[data]`
    /// table.
    pub data: Option<PathBuf>,
}

/// Builds the service's routes: `GET /` returns the version as text, and
/// `GET /health` waits `latency_ms`, reads the data, then returns
/// `health_status` with a JSON body, or 500 when the data cannot be read.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(version))
        .route("/health", get(health))
        .with_state(service)
}

async fn version(State(service): State<Arc<Service>>) -> String {
    format!("{}\n", service.release.version)
}

async fn health(State(service): State<Arc<Service>>) -> impl IntoResponse {
    let release = &service.release;
    tokio::time::sleep(Duration::from_millis(release.latency_ms)).await;

    let mut status_code = release.health_status;
    let mut message = release.message.clone();
    let mut schema = None;
    if let (Some(spec), Some(path)) = (&release.data, &service.data) {
        let spec = spec.clone();
        let path = path.clone();
        let checked = tokio::task::spawn_blocking(move || data::check(&spec, &path))
            .await
            .unwrap_or_else(|error| Err(format!("data check panicked: {error}")));
        match checked {
            Ok(version) => schema = Some(version),
            Err(error) => {
                status_code = 500;
                message = error;
            }
        }
    }

    let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "version": release.version,
        "status": status_code,
        "message": message,
        "schema": schema,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// Runs one service process: writes the pid file, waits `startup_ms`,
/// listens on 127.0.0.1:`port` and serves until SIGTERM, SIGINT or the exit
/// of the `watch_pid` process, then removes the pid file.
pub async fn serve(args: DemoServeArgs) -> Result<()> {
    // Standard error is the service's log file, because the process that
    // starts the service redirects it there.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();

    let working_dir = std::env::current_dir().wrap_err("failed to read the working folder")?;
    let release = Release::read(&working_dir)?;
    let data = match (&release.data, args.data) {
        (Some(spec), Some(path)) => {
            let schema = data::prepare(spec, &path)?;
            tracing::info!(path = %path.display(), schema, "data ready");
            Some(path)
        }
        (Some(_), None) => bail!(
            "release {} keeps data: pass `--data PATH` with its database file or folder",
            release.version
        ),
        (None, Some(path)) => {
            tracing::warn!(path = %path.display(), "release keeps no data; ignoring `--data`");
            None
        }
        (None, None) => None,
    };
    let service = Arc::new(Service { release, data });
    let release = &service.release;
    let pid = std::process::id();

    // The pid file is written before the startup delay, so that a restart
    // during startup finds and stops this process.
    process::write_pid_file(&args.pidfile, pid)?;
    let _pid_file = PidFileGuard {
        path: args.pidfile.clone(),
        pid,
    };
    tracing::info!(
        pid,
        port = args.port,
        version = %release.version,
        folder = %working_dir.display(),
        "demo service starting"
    );

    let mut stop = Box::pin(stop_signal(args.watch_pid)?);
    let startup = tokio::time::sleep(Duration::from_millis(release.startup_ms));
    tokio::select! {
        () = &mut stop => {
            tracing::info!(pid, "demo service stopped during startup");
            return Ok(());
        }
        () = startup => {}
    }

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .await
        .wrap_err_with(|| {
            format!(
                "failed to listen on 127.0.0.1:{}; stop the process that uses the port",
                args.port
            )
        })?;
    tracing::info!(pid, port = args.port, "demo service listening");

    axum::serve(listener, router(service.clone()))
        .with_graceful_shutdown(stop)
        .await
        .wrap_err_with(|| format!("demo service on port {} failed", args.port))?;
    tracing::info!(pid, port = args.port, "demo service stopped");
    Ok(())
}

/// Registers SIGTERM and SIGINT handlers and returns a future that completes
/// on either signal, or when process `watch_pid` no longer runs.
fn stop_signal(watch_pid: Option<u32>) -> Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate =
        signal(SignalKind::terminate()).wrap_err("failed to install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).wrap_err("failed to install the SIGINT handler")?;

    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            () = wait_for_exit(watch_pid) => {
                tracing::info!(supervisor = watch_pid, "supervisor process is gone");
            }
        }
    })
}

/// Completes when process `pid` no longer runs, and never when `pid` is
/// `None`.
async fn wait_for_exit(pid: Option<u32>) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };

    let mut interval = tokio::time::interval(WATCH_INTERVAL);
    loop {
        interval.tick().await;
        if !process::is_running(pid) {
            return;
        }
    }
}

/// Removes the pid file when the service exits, unless a newer process has
/// replaced it.
struct PidFileGuard {
    path: PathBuf,
    pid: u32,
}

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Err(error) = process::remove_pid_file_if_owned(&self.path, self.pid) {
            tracing::warn!(path = %self.path.display(), "failed to remove the pid file: {error:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::repos;

    /// Serves `folder`'s release, with `data` as its data, on a free port
    /// and returns the status and body of `GET path`.
    async fn get(folder: &Path, data: Option<PathBuf>, path: &str) -> (u16, String) {
        let release = Release::read(folder).unwrap();
        let service = Arc::new(Service { release, data });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router(service)).await });

        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        server.abort();
        (status, body)
    }

    async fn status_of(folder: &Path, path: &str) -> u16 {
        get(folder, None, path).await.0
    }

    fn check_out(repository_dir: &Path, tag: &str) {
        let repository = git2::Repository::open(repository_dir).unwrap();
        let commit = repository
            .revparse_single(tag)
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let mut options = git2::build::CheckoutBuilder::new();
        options.force();
        repository
            .checkout_tree(commit.as_object(), Some(&mut options))
            .unwrap();
        repository.set_head_detached(commit.id()).unwrap();
    }

    #[tokio::test]
    async fn health_fails_on_newest_payments() {
        let root = tempfile::tempdir().unwrap();
        repos::build_all(root.path(), 1_800_000_000).unwrap();

        let status = status_of(&root.path().join("payments"), "/health").await;

        assert_eq!(status, 500);
    }

    #[tokio::test]
    async fn health_passes_on_older_payments() {
        let root = tempfile::tempdir().unwrap();
        repos::build_all(root.path(), 1_800_000_000).unwrap();
        let payments = root.path().join("payments");
        check_out(&payments, "v2.2.0");

        let status = status_of(&payments, "/health").await;

        assert_eq!(status, 200);
        assert_eq!(Release::read(&payments).unwrap().version, "v2.2.0");
    }

    #[tokio::test]
    async fn root_returns_version() {
        let root = tempfile::tempdir().unwrap();
        repos::build_all(root.path(), 1_800_000_000).unwrap();

        let (_, body) = get(&root.path().join("inventory"), None, "/").await;

        assert_eq!(body, "v1.2.0\n");
    }

    #[tokio::test]
    async fn health_reads_data_of_release() {
        let root = tempfile::tempdir().unwrap();
        repos::build_all(root.path(), 1_800_000_000).unwrap();
        let orders = root.path().join("orders");
        let database = root.path().join("data/orders.db");
        let release = Release::read(&orders).unwrap();
        data::prepare(release.data.as_ref().unwrap(), &database).unwrap();

        let (status, body) = get(&orders, Some(database), "/health").await;

        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"schema\":4"), "{body}");
    }

    #[tokio::test]
    async fn health_fails_on_newer_orders_schema() {
        let root = tempfile::tempdir().unwrap();
        repos::build_all(root.path(), 1_800_000_000).unwrap();
        let orders = root.path().join("orders");
        let database = root.path().join("data/orders.db");
        let newest = Release::read(&orders).unwrap();
        data::prepare(newest.data.as_ref().unwrap(), &database).unwrap();
        check_out(&orders, "v1.2.1");
        let older = Release::read(&orders).unwrap();
        let found = data::prepare(older.data.as_ref().unwrap(), &database).unwrap();

        let (status, body) = get(&orders, Some(database), "/health").await;

        assert_eq!(found, 4, "the older release leaves the newer schema");
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains(
                "database schema 4 is not readable by this release, which reads schema 3"
            ),
            "{body}"
        );
        assert!(body.contains("no such column: charge_id"), "{body}");
    }

    #[test]
    fn release_read_rejects_bad_status() {
        let folder = tempfile::tempdir().unwrap();
        let text = "version = \"v1.0.0\"\nhealth_status = 42\nlatency_ms = 1\nstartup_ms = 1\nmessage = \"ok\"\n";
        std::fs::write(folder.path().join(RELEASE_FILE), text).unwrap();

        let error = Release::read(folder.path()).unwrap_err().to_string();

        assert!(error.contains("invalid `health_status` 42"), "{error}");
    }

    #[test]
    fn release_read_names_missing_file() {
        let folder = tempfile::tempdir().unwrap();

        let error = Release::read(folder.path()).unwrap_err();

        let expected = format!("`{}`", folder.path().join(RELEASE_FILE).display());
        assert!(format!("{error}").contains(&expected), "{error}");
    }
}
