//! Fixtures made in temporary folders: a git working tree that passes the
//! configuration checks, a `services.toml` for N services, and a dashboard
//! state that looks like a session that has run for a while.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rewind::config::Config;
use rewind::dashboard::app::{App, RunView, StepStatus};
use rewind::dashboard::update::{Msg, update};
use rewind::engine::event::EngineEvent;
use rewind::engine::health::{HISTORY_LEN, HealthState, ProbeOutcome, Sample};
use rewind::engine::rollback::{StepKind, build_plan};
use rewind::engine::versions::{HistoryEntry, VersionInfo};

/// History entries per service, as many as the dashboard reads.
pub const HISTORY_ENTRIES: usize = 50;

/// Creates a git repository with two commits in `dir`, so that the folder
/// passes the `deploy_dir` check and has a version to roll back to.
pub fn tiny_repository(dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the repository folder");
    let repository = git2::Repository::init(dir).expect("init a repository");
    let signature = git2::Signature::now("Bench", "bench@example.invalid").expect("signature");
    let mut parent: Option<git2::Oid> = None;
    for (number, text) in ["first\n", "second\n"].into_iter().enumerate() {
        std::fs::write(dir.join("README"), text).expect("write a file");
        let mut index = repository.index().expect("open the index");
        index
            .add_path(Path::new("README"))
            .expect("add the file to the index");
        let tree_id = index.write_tree().expect("write the tree");
        index.write().expect("write the index");
        let tree = repository.find_tree(tree_id).expect("find the tree");
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|id| repository.find_commit(*id).expect("find the parent"))
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        let message = format!("commit {}", number + 1);
        let id = repository
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                &message,
                &tree,
                &parents,
            )
            .expect("commit");
        parent = Some(id);
    }
}

/// Settings of the services written by [`services_toml`].
pub struct ServicesSpec<'a> {
    pub count: usize,
    pub state_dir: &'a Path,
    /// Deploy directory of service `i`.
    pub deploy_dir: &'a dyn Fn(usize) -> PathBuf,
    /// Health URL of service `i`.
    pub url: &'a dyn Fn(usize) -> String,
    pub interval: &'a str,
    pub restart: &'a [&'a str],
}

/// Returns the name of service `i`: zero-padded so the configuration,
/// which sorts services by name, keeps them in index order.
pub fn service_name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// Returns a `services.toml` text for `spec.count` services.
pub fn services_toml(spec: &ServicesSpec) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "state_dir = {:?}",
        spec.state_dir.display().to_string()
    );
    let restart: Vec<String> = spec.restart.iter().map(|arg| format!("{arg:?}")).collect();
    for i in 0..spec.count {
        let name = service_name(i);
        let deploy_dir = (spec.deploy_dir)(i).display().to_string();
        let url = (spec.url)(i);
        let _ = write!(
            text,
            "\n[services.{name}]\ndeploy_dir = {deploy_dir:?}\n\
             [services.{name}.health]\nurl = {url:?}\ninterval = {:?}\ntimeout = \"1s\"\n\
             [services.{name}.restart]\ncommand = [{}]\n",
            spec.interval,
            restart.join(", "),
        );
    }
    text
}

/// Builds a checked configuration of `count` services that all deploy from
/// one tiny repository in `dir`, with health URLs on closed ports.
pub fn config(dir: &Path, count: usize) -> Config {
    let repository = dir.join("repo");
    if !repository.exists() {
        tiny_repository(&repository);
    }
    let text = services_toml(&ServicesSpec {
        count,
        state_dir: &dir.join("state"),
        deploy_dir: &|_| repository.clone(),
        url: &|i| format!("http://127.0.0.1:{}/health", 20_000 + i % 40_000),
        interval: "1s",
        restart: &["true"],
    });
    let path = dir.join("services.toml");
    rewind::config::parse(&path, &text).expect("the generated configuration is valid")
}

/// Returns the first-parent history of service `i`, newest first, with
/// HEAD on the newest entry and a tag on every fifth entry.
pub fn versions(i: usize) -> VersionInfo {
    let name = service_name(i);
    let history: Vec<HistoryEntry> = (0..HISTORY_ENTRIES)
        .map(|n| {
            let commit = format!("{:040x}", (i as u128) << 64 | n as u128);
            HistoryEntry {
                short: commit[33..].to_owned(),
                commit,
                tags: if n.is_multiple_of(5) {
                    vec![format!("v1.{}.0", HISTORY_ENTRIES - n)]
                } else {
                    Vec::new()
                },
                subject: format!("{name}: change number {} of the request handling", 1000 - n),
                author: "Bench Author".to_owned(),
                time: 1_790_000_000 - n as i64 * 3_600,
                deployed: n == 0,
            }
        })
        .collect();
    VersionInfo {
        commit: history[0].commit.clone(),
        short: history[0].short.clone(),
        describe: Some(format!("v1.{HISTORY_ENTRIES}.0")),
        branch: Some("main".to_owned()),
        history_branch: Some("main".to_owned()),
        dirty: Vec::new(),
        history,
    }
}

/// Returns sample `n` of service `i`: every service responds, and one in
/// ten returns status 500 now and then.
pub fn sample(i: usize, n: usize) -> Sample {
    let failing = i % 10 == 3 && n.is_multiple_of(7);
    Sample {
        at: UNIX_EPOCH + Duration::from_secs(1_790_000_000 + n as u64),
        outcome: if failing {
            ProbeOutcome::BadStatus
        } else {
            ProbeOutcome::Passed
        },
        status: Some(if failing { 500 } else { 200 }),
        latency: Duration::from_micros(800 + ((i * 37 + n * 11) % 4000) as u64),
        error: failing.then(|| "status 500: upstream timed out".to_owned()),
    }
}

/// Returns the health state that service `i` ends in.
pub fn state(i: usize) -> HealthState {
    match i % 10 {
        3 => HealthState::Unhealthy,
        7 => HealthState::Down,
        _ => HealthState::Healthy,
    }
}

/// Builds the dashboard state of `count` services after a long session:
/// versions loaded, a full sample history per service, and a rollback of
/// the first service running with its log half full.
pub fn filled_app(dir: &Path, count: usize) -> App {
    let config = config(dir, count);
    let mut app = App::new(&config);
    for i in 0..count {
        let event = EngineEvent::VersionsLoaded {
            service: service_name(i),
            info: versions(i),
            complete: true,
        };
        update(&mut app, Msg::Engine(event));
    }
    for n in 0..HISTORY_LEN {
        for i in 0..count {
            let event = EngineEvent::ProbeCompleted {
                service: service_name(i).into(),
                sample: sample(i, n),
                state: state(i),
            };
            update(&mut app, Msg::Engine(event));
        }
    }
    start_run(&mut app, &config);
    app
}

/// Puts a running rollback of the first service into `app`: lock and
/// checkout done, the restart running with 200 lines of output.
fn start_run(app: &mut App, config: &Config) {
    let service = service_name(0);
    let plan = build_plan(&config.services[0], "HEAD~1").expect("plan a rollback");
    let mut run = RunView::new(&plan);
    for view in &mut run.steps {
        view.status = match view.step {
            StepKind::Lock | StepKind::CheckClean | StepKind::Checkout => StepStatus::Done,
            _ => StepStatus::Pending,
        };
    }
    app.run = Some(run);
    let started = EngineEvent::StepStarted {
        service: service.clone(),
        step: StepKind::Restart,
        index: 3,
        total: 5,
    };
    update(app, Msg::Engine(started));
    for line in 0..200 {
        let event = EngineEvent::StepOutput {
            service: service.clone(),
            line: format!("restart: worker {line} drained its queue and stopped"),
        };
        update(app, Msg::Engine(event));
    }
}

/// Returns a probe event that moves service `i` to `state`.
pub fn probe_event(i: usize, state: HealthState, second: u64) -> EngineEvent {
    let passed = state == HealthState::Healthy;
    EngineEvent::ProbeCompleted {
        service: service_name(i).into(),
        sample: Sample {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + second),
            outcome: if passed {
                ProbeOutcome::Passed
            } else {
                ProbeOutcome::Refused
            },
            status: passed.then_some(200),
            latency: Duration::from_micros(900),
            error: (!passed).then(|| "connection refused by 127.0.0.1:20001".to_owned()),
        },
        state,
    }
}
