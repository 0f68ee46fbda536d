//! Rollback: a code rollback of a demo service whose start takes a fixed
//! time, from confirming it (`rewind rollback --yes`) to the service
//! reported healthy. Beside it, `benches/scripts/rollback.sh` does the same
//! steps: checkout, the restart command, then polling the health URL every
//! 0.1 s, or every 1 s.
//!
//! Everything runs on core 0: rewind or the script, the restart command and
//! the service it starts. Each round runs the three in a rotating order,
//! and each run switches the service between two releases.
//!
//! `cargo bench --bench rollback`. Parameters (environment):
//! `ROLLBACK_RUNS` (7 per subject), `STARTUP_MS` (500, the service's start
//! time).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Summary, millis, number};

/// Core that every process of a run is pinned to.
const CORE: usize = 0;

/// The two releases the service switches between.
const RELEASES: [&str; 2] = ["v1.0.0", "v1.1.0"];

fn main() {
    if !support::is_bench_run() {
        println!("rollback: skipped; run it with `cargo bench --bench rollback`");
        return;
    }
    let runs: usize = support::param("ROLLBACK_RUNS", 7);
    let startup_ms: u64 = support::param("STARTUP_MS", 500);

    let dir = tempfile::tempdir().expect("create a temporary folder");
    let fixture = Fixture::build(dir.path(), startup_ms);
    fixture.start_service();

    let subjects = ["rewind", "script 0.1 s", "script 1 s"];
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut overheads = Vec::new();
    let mut restarts = Vec::new();
    let mut step = 0;
    for round in 0..runs {
        for offset in 0..subjects.len() {
            let subject = (round + offset) % subjects.len();
            let target = RELEASES[step % 2];
            step += 1;
            let total = match subject {
                0 => {
                    let run = fixture.rollback_with_rewind(target);
                    restarts.push(run.restart_ms);
                    overheads.push(run.healthy_ms - run.restart_ms - startup_ms as f64);
                    run.healthy_ms
                }
                1 => fixture.rollback_with_script(target, "0.1"),
                _ => fixture.rollback_with_script(target, "1"),
            };
            totals[subject].push(total);
        }
    }
    fixture.stop_service();

    let mut report = format!(
        "# rollback\n\nmachine: {}\nservice start time {startup_ms} ms, {runs} runs per subject, \
         order rotating, every process on core {CORE}\n\n",
        support::machine()
    );
    let rewind = Summary::of(&totals[0]);
    for (index, subject) in subjects.iter().enumerate() {
        let summary = Summary::of(&totals[index]);
        report.push_str(&format!(
            "{subject}: confirm to healthy {}; rewind / this: {}x\n",
            summary.show("ms"),
            number(rewind.median / summary.median)
        ));
    }
    report.push_str(&format!(
        "\nrewind's restart step (the restart command): {}\nrewind's overhead (confirm to \
         healthy, minus the restart step, minus the {startup_ms} ms start time): {}\n",
        Summary::of(&restarts).show("ms"),
        Summary::of(&overheads).show("ms")
    ));
    support::record("rollback", &report);
}

/// The deploy directory, its configuration and the service's port.
struct Fixture {
    deploy_dir: PathBuf,
    config: PathBuf,
    pid_file: PathBuf,
    url: String,
    restart: Vec<String>,
}

/// One run of rewind: the time until the verify step passed, and the time
/// the restart step took.
struct RewindRun {
    healthy_ms: f64,
    restart_ms: f64,
}

impl Fixture {
    /// Creates a deploy directory with two releases of the demo service,
    /// each starting in `startup_ms`, and a configuration for it.
    fn build(dir: &Path, startup_ms: u64) -> Fixture {
        let deploy_dir = dir.join("service");
        std::fs::create_dir_all(&deploy_dir).expect("create the deploy directory");
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .arg("-C")
                .arg(&deploy_dir)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .expect("run git");
            assert!(status.success(), "git {args:?} failed");
        };
        git(&["init", "-q", "-b", "main"]);
        for release in RELEASES {
            let text = format!(
                "version = \"{release}\"\nhealth_status = 200\nlatency_ms = 1\n\
                 startup_ms = {startup_ms}\nmessage = \"ok\"\n"
            );
            std::fs::write(deploy_dir.join("release.toml"), text).expect("write release.toml");
            git(&["add", "release.toml"]);
            git(&[
                "-c",
                "user.name=Bench",
                "-c",
                "user.email=bench@example.invalid",
                "commit",
                "-q",
                "-m",
                &format!("release {release}"),
            ]);
            git(&["tag", release]);
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("find a free port")
            .port();
        let run_dir = dir.join("run");
        std::fs::create_dir_all(&run_dir).expect("create the run folder");
        let pid_file = run_dir.join("service.pid");
        let rewind = env!("CARGO_BIN_EXE_rewind").to_owned();
        let restart = vec![
            rewind,
            "demo-restart".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--pidfile".to_owned(),
            pid_file.display().to_string(),
        ];
        let url = format!("http://127.0.0.1:{port}/health");
        let quoted: Vec<String> = restart.iter().map(|arg| format!("{arg:?}")).collect();
        let text = format!(
            "state_dir = {:?}\n\n[services.svc]\ndeploy_dir = {:?}\n\n[services.svc.health]\n\
             url = {url:?}\ninterval = \"1s\"\ntimeout = \"1s\"\n\n[services.svc.restart]\n\
             command = [{}]\ntimeout = \"30s\"\n\n[services.svc.rollback]\n\
             verify_timeout = \"30s\"\nsettle = \"0s\"\n",
            dir.join("state").display().to_string(),
            deploy_dir.display().to_string(),
            quoted.join(", ")
        );
        let config = dir.join("services.toml");
        std::fs::write(&config, text).expect("write the configuration");
        Fixture {
            deploy_dir,
            config,
            pid_file,
            url,
            restart,
        }
    }

    /// Starts the service with its restart command and waits until healthy.
    fn start_service(&self) {
        let status = Command::new(&self.restart[0])
            .args(&self.restart[1..])
            .current_dir(&self.deploy_dir)
            .stdout(Stdio::null())
            .status()
            .expect("run the restart command");
        assert!(status.success(), "the restart command failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(&self.url) {
            assert!(Instant::now() < deadline, "the service did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the service process named by the pid file.
    fn stop_service(&self) {
        if let Ok(text) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg(text.trim()).status();
        }
    }

    /// Rolls the service to `target` with the CLI and times the events.
    fn rollback_with_rewind(&self, target: &str) -> RewindRun {
        let start = Instant::now();
        let mut child = support::pinned(CORE, env!("CARGO_BIN_EXE_rewind"))
            .arg("--config")
            .arg(&self.config)
            .args(["rollback", "svc", "--to", target, "--yes", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run rewind rollback");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut restart_started = None;
        let mut restart_ms = f64::NAN;
        let mut healthy_ms = f64::NAN;
        for line in stdout.lines() {
            let line = line.expect("read a line");
            let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
            let at = start.elapsed();
            match (event["event"].as_str(), event["step"].as_str()) {
                (Some("step_started"), Some("restart")) => restart_started = Some(at),
                (Some("step_finished"), Some("restart")) => {
                    let began = restart_started.expect("restart started first");
                    restart_ms = millis(at - began);
                }
                (Some("step_finished"), Some("verify_health")) => {
                    assert_eq!(event["ok"], true, "verification failed: {line}");
                    healthy_ms = millis(at);
                }
                _ => {}
            }
        }
        let status = child.wait().expect("wait for rewind");
        assert!(status.success(), "rewind rollback failed");
        RewindRun {
            healthy_ms,
            restart_ms,
        }
    }

    /// Rolls the service to `target` with the script polling every
    /// `poll` seconds and returns the time in milliseconds.
    fn rollback_with_script(&self, target: &str, poll: &str) -> f64 {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scripts/rollback.sh");
        let start = Instant::now();
        let status = support::pinned(CORE, "sh")
            .arg(script)
            .arg(&self.deploy_dir)
            .arg(target)
            .arg(&self.url)
            .arg(poll)
            .args(&self.restart)
            .status()
            .expect("run rollback.sh");
        let elapsed = millis(start.elapsed());
        assert!(status.success(), "rollback.sh failed");
        elapsed
    }
}

/// Tells whether the health URL returns 200 now.
fn healthy(url: &str) -> bool {
    Command::new("curl")
        .args(["-fs", "-o", "/dev/null", "--max-time", "1", url])
        .status()
        .is_ok_and(|status| status.success())
}
