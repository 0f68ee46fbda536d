//! Fixtures: a git repository with tagged releases, an HTTP server on
//! 127.0.0.1 that serves `/health` with the status written in the release
//! checked out right now, and a `services.toml` that ties them together.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// One release of the fixture service: its tag and the status `/health`
/// returns while it is checked out.
pub struct Release {
    pub tag: &'static str,
    pub status: u16,
}

pub const THREE_RELEASES: &[Release] = &[
    Release {
        tag: "v1.0.0",
        status: 200,
    },
    Release {
        tag: "v1.1.0",
        status: 200,
    },
    Release {
        tag: "v1.2.0",
        status: 500,
    },
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub repo: PathBuf,
    pub state: PathBuf,
    /// Commit ids of the releases, oldest first.
    pub commits: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

impl Fixture {
    /// Builds the repository, starts the server and writes the config with
    /// `restart` as the restart command and `extra` appended to the file.
    pub fn new(releases: &[Release], restart: &[&str], extra: &str) -> Fixture {
        Fixture::with_settle(releases, restart, extra, "0s")
    }

    /// Builds the fixture like [`Fixture::new`] with `settle` as the
    /// rollback's settle time.
    pub fn with_settle(
        releases: &[Release],
        restart: &[&str],
        extra: &str,
        settle: &str,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("web");
        let commits = build_repo(&repo, releases);
        let (port, stop, server) = start_server(repo.clone());
        let state = dir.path().join("state");

        let command: Vec<String> = restart.iter().map(|arg| format!("{arg:?}")).collect();
        let text = format!(
            "state_dir = \"state\"\n\
             [services.web]\n\
             deploy_dir = \"web\"\n\
             branch = \"main\"\n\
             [services.web.health]\n\
             url = \"http://127.0.0.1:{port}/health\"\n\
             interval = \"200ms\"\n\
             timeout = \"500ms\"\n\
             [services.web.restart]\n\
             command = [{}]\n\
             timeout = \"5s\"\n\
             [services.web.rollback]\n\
             verify_timeout = \"2s\"\n\
             settle = \"{settle}\"\n\
             {extra}",
            command.join(", ")
        );
        let config = dir.path().join("services.toml");
        std::fs::write(&config, text).unwrap();

        Fixture {
            dir,
            config,
            repo,
            state,
            commits,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Returns the full id of HEAD in the fixture repository.
    pub fn head(&self) -> String {
        let repo = git2::Repository::open(&self.repo).unwrap();
        repo.head()
            .unwrap()
            .peel_to_commit()
            .unwrap()
            .id()
            .to_string()
    }

    /// Leaves the journal and the tree as a run killed right after its
    /// checkout to `target` would.
    pub fn leave_unfinished_run(&self, target: &str) {
        use rewind::engine::rollback::journal::{self, Journal, Record, RunKind};
        use rewind::engine::rollback::{StepKind, build_plan};

        let config = rewind::config::load(&self.config).unwrap();
        let spec = config.require("web").unwrap();
        let plan = build_plan(spec, target).unwrap();
        let start = Record::RunStarted {
            run_id: "killed".into(),
            kind: RunKind::Rollback,
            plan: Box::new(plan),
            user: "ana".into(),
            host: "box".into(),
            pid: 1,
            reason: None,
            at: journal::now(),
        };
        let mut journal = Journal::create(&self.state, "web", &start).unwrap();
        let at = journal::now;
        journal
            .append(&Record::StepStarted {
                step: StepKind::Checkout,
                at: at(),
            })
            .unwrap();
        rewind::engine::versions::checkout(&self.repo, target, Some("main")).unwrap();
    }

    /// Returns a `rewind` command that uses the fixture's config.
    pub fn rewind(&self, args: &[&str]) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::cargo_bin("rewind").unwrap();
        command.arg("--config").arg(&self.config).args(args);
        command.env("XDG_STATE_HOME", self.dir.path().join("xdg-state"));
        command.timeout(std::time::Duration::from_secs(60));
        command
    }
}

/// Creates a repository on `main` with one commit per release, each
/// writing `release.toml`, tagged with the release's tag.
pub fn build_repo(path: &Path, releases: &[Release]) -> Vec<String> {
    let repo = git2::Repository::init_opts(
        path,
        git2::RepositoryInitOptions::new().initial_head("main"),
    )
    .unwrap();
    let mut commits = Vec::new();
    let mut parent: Option<git2::Oid> = None;
    for (number, release) in releases.iter().enumerate() {
        let text = format!(
            "version = \"{}\"\nhealth_status = {}\n",
            release.tag, release.status
        );
        std::fs::write(path.join("release.toml"), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("release.toml")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();

        let time = git2::Time::new(1_780_000_000 + number as i64 * 86_400, 0);
        let author = git2::Signature::new("Test Dev", "dev@test.invalid", &time).unwrap();
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|id| repo.find_commit(*id).unwrap())
            .collect();
        let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
        let subject = format!("release {}", release.tag);
        let id = repo
            .commit(
                Some("HEAD"),
                &author,
                &author,
                &subject,
                &tree,
                &parent_refs,
            )
            .unwrap();
        let object = repo.find_object(id, None).unwrap();
        repo.tag_lightweight(release.tag, &object, false).unwrap();
        commits.push(id.to_string());
        parent = Some(id);
    }
    commits
}

/// Starts the health server on a free loopback port. `/health` reads
/// `release.toml` from `repo` on every request.
fn start_server(
    repo: PathBuf,
) -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (port_tx, port_rx) = std_mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let app = Router::new().route(
                "/health",
                get(move || {
                    let repo = repo.clone();
                    async move { current_status(&repo) }
                }),
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let port = port_rx.recv().unwrap();
    (port, stop_tx, server)
}

fn current_status(repo: &Path) -> (StatusCode, String) {
    let text = std::fs::read_to_string(repo.join("release.toml")).unwrap_or_default();
    let status = text
        .lines()
        .find_map(|line| line.strip_prefix("health_status = "))
        .and_then(|value| value.trim().parse::<u16>().ok())
        .unwrap_or(503);
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (code, format!("status {status}"))
}

/// Returns a `[services.web.backup]` table for [`Fixture::new`]'s `extra`:
/// `driver`, `path` relative to the fixture folder, then `keys` as written.
pub fn backup_table(driver: &str, path: &str, keys: &str) -> String {
    format!("[services.web.backup]\ndriver = \"{driver}\"\npath = \"{path}\"\n{keys}")
}
