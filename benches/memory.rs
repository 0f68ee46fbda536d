//! Memory: resident memory of the dashboard binary with N services probed
//! every second, in a 200x60 pseudo-terminal, sampled every 10 s for ten
//! minutes, beside the floor loop of the health benchmark probing the same
//! endpoints. Each service deploys from a repository of 60 commits, so the
//! dashboard also keeps 50 history entries per service. Growth is reported
//! twice: the sample at the end minus the one halfway, and the least-squares
//! trend of every sample in the second half.
//!
//! It takes ten minutes per run, so it runs only with `REWIND_BENCH_LONG=1`:
//! `REWIND_BENCH_LONG=1 cargo bench --bench memory`. Parameters
//! (environment): `TARGETS` (1000), `MEMORY_MINUTES` (10), `MEMORY_RUNS`
//! (1), `MEMORY_WRAPPER` (the command the dashboard runs under, default
//! `taskset -c 0`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rewind::engine::health::{HISTORY_LEN, History};

use support::targets::ROLE_ENV;
use support::{LONG_ENV, fixture, number};

/// Time between two memory samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

fn main() {
    if support::targets::run_role() {
        return;
    }
    if !support::is_bench_run() {
        println!("memory: skipped; run it with `REWIND_BENCH_LONG=1 cargo bench --bench memory`");
        return;
    }
    if std::env::var_os(LONG_ENV).is_none() {
        println!(
            "memory: skipped, it takes ten minutes; \
             run it with `REWIND_BENCH_LONG=1 cargo bench --bench memory`"
        );
        return;
    }
    let targets: usize = support::param("TARGETS", 1_000);
    let minutes: u64 = support::param("MEMORY_MINUTES", 10);
    let runs: usize = support::param("MEMORY_RUNS", 1);

    let mut report = format!(
        "# memory\n\nmachine: {}\n{targets} services, 1 s interval, {minutes} minutes per run, \
         {runs} run(s); resident memory (VmRSS) sampled every {} s\n",
        support::machine(),
        SAMPLE_EVERY.as_secs()
    );
    for run in 0..runs {
        report.push_str(&format!("\n## run {}\n\n", run + 1));
        report.push_str(&run_once(targets, minutes));
    }
    let sample_bytes = History::SAMPLE_BYTES;
    let raw = targets * HISTORY_LEN * sample_bytes;
    report.push_str(&format!(
        "\nRaw bytes of the health history: {targets} services x {HISTORY_LEN} samples x \
         {sample_bytes} B (`History::SAMPLE_BYTES`) = {} MiB, kept once, in the dashboard \
         state; twice that is {} MiB.\n",
        number(raw as f64 / 1_048_576.0),
        number(2.0 * raw as f64 / 1_048_576.0)
    ));
    support::record("memory", &report);
}

fn run_once(targets: usize, minutes: u64) -> String {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};

    let dir = tempfile::tempdir().expect("create a temporary folder");
    let exe = std::env::current_exe().expect("current executable");

    // The server serves every endpoint from core 1.
    let mut server = support::pinned(1, &exe)
        .env(ROLE_ENV, "server")
        .env("TARGETS", targets.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut server_out = BufReader::new(server.stdout.take().expect("server stdout"));
    let mut line = String::new();
    server_out.read_line(&mut line).expect("read the ports");
    let ports_text = line
        .trim()
        .strip_prefix("ports ")
        .expect("ports")
        .to_owned();
    let ports: Vec<u16> = ports_text
        .split(',')
        .map(|port| port.parse().expect("port"))
        .collect();

    let repository = dir.path().join("repo");
    history_repository(&repository, 60);
    let text = fixture::services_toml(&fixture::ServicesSpec {
        count: targets,
        state_dir: &dir.path().join("state"),
        deploy_dir: &|_| repository.clone(),
        url: &|i| format!("http://127.0.0.1:{}/health", ports[i]),
        interval: "1s",
        restart: &["true"],
    });
    let config = dir.path().join("services.toml");
    std::fs::write(&config, text).expect("write the configuration");

    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 60,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pty");
    // `MEMORY_WRAPPER` runs the dashboard under a profiler instead, such as
    // `valgrind --tool=massif`.
    let wrapper = std::env::var("MEMORY_WRAPPER").unwrap_or_else(|_| "taskset -c 0".to_owned());
    let mut wrapper = wrapper.split_whitespace();
    let mut command = CommandBuilder::new(wrapper.next().expect("a wrapper program"));
    command.args(wrapper);
    command.args([env!("CARGO_BIN_EXE_rewind"), "--config"]);
    command.arg(&config);
    command.arg("dashboard");
    command.env("TERM", "xterm-256color");
    let mut reader = pty.master.try_clone_reader().expect("pty reader");
    let mut dashboard = pty
        .slave
        .spawn_command(command)
        .expect("start the dashboard");
    let dashboard_pid = dashboard.process_id().expect("dashboard pid");
    // The dashboard blocks when its terminal output is not read.
    std::thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        while reader.read(&mut buffer).is_ok_and(|read| read > 0) {}
    });

    let duration = Duration::from_secs(minutes * 60);
    let mut floor = support::pinned(0, &exe)
        .env(ROLE_ENV, "floor")
        .env("TARGET_PORTS", &ports_text)
        .env("WARMUP_SECONDS", "0")
        .env("RECORD_LATENESS", "0")
        .env("MEASURE_SECONDS", (duration.as_secs() + 60).to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the floor loop");

    let start = Instant::now();
    let mut series: Vec<Sample> = Vec::new();
    while start.elapsed() < duration {
        std::thread::sleep(SAMPLE_EVERY);
        let seconds = start.elapsed().as_secs();
        let ours = support::rss_kib(dashboard_pid).map_or(0, |(rss, _)| rss);
        let theirs = support::rss_kib(floor.id()).map_or(0, |(rss, _)| rss);
        let (anonymous, file) = support::rss_parts_kib(dashboard_pid).unwrap_or_default();
        eprintln!(
            "memory: {seconds} s dashboard {ours} KiB ({anonymous} anonymous, {file} file) \
             floor {theirs} KiB"
        );
        series.push(Sample {
            seconds,
            ours,
            anonymous,
            theirs,
        });
    }
    let peak = support::rss_kib(dashboard_pid).map_or(0, |(_, hwm)| hwm);
    let ours_parts = support::rss_parts_kib(dashboard_pid).unwrap_or_default();
    let floor_parts = support::rss_parts_kib(floor.id()).unwrap_or_default();

    let mut writer = pty.master.take_writer().expect("pty writer");
    let _ = writer.write_all(b"q");
    let _ = writer.flush();
    let _ = dashboard.wait();
    let _ = floor.kill();
    let _ = floor.wait();
    drop(server.stdin.take());
    let _ = server.wait();

    let at = |minute: u64| {
        series
            .iter()
            .min_by_key(|sample| sample.seconds.abs_diff(minute * 60))
            .copied()
            .unwrap_or_default()
    };
    let mib = |kib: u64| number(kib as f64 / 1024.0);
    let mut text =
        String::from("| minute | dashboard RSS MiB | floor loop RSS MiB |\n|---|---|---|\n");
    for minute in [1, 2, minutes / 2, minutes] {
        let sample = at(minute);
        text.push_str(&format!(
            "| {minute} | {} | {} |\n",
            mib(sample.ours),
            mib(sample.theirs)
        ));
    }
    let (middle, end) = (at(minutes / 2), at(minutes));
    let growth = |from: u64, to: u64| number((to as f64 - from as f64) / 1024.0);
    text.push_str(&format!(
        "\ndashboard peak (VmHWM) {} MiB; growth from minute {} to {minutes}: {} MiB \
         ({} MiB of it anonymous pages); floor loop growth {} MiB; \
         dashboard minus floor at the end: {} MiB\n",
        mib(peak),
        minutes / 2,
        growth(middle.ours, end.ours),
        growth(middle.anonymous, end.anonymous),
        growth(middle.theirs, end.theirs),
        number((end.ours as f64 - end.theirs as f64) / 1024.0),
    ));
    // With glibc, two samples differ by up to 0.3 MiB with the phase of
    // the versions refresh, so the trend of every sample in the second
    // half is the steadier measure of growth.
    let second_half: Vec<&Sample> = series
        .iter()
        .filter(|sample| sample.seconds >= minutes / 2 * 60)
        .collect();
    let span = (minutes - minutes / 2) as f64 * 60.0;
    let trend = |value: fn(&Sample) -> u64| {
        let points: Vec<(f64, f64)> = second_half
            .iter()
            .map(|sample| (sample.seconds as f64, value(sample) as f64))
            .collect();
        number(slope(&points) * span / 1024.0)
    };
    text.push_str(&format!(
        "least-squares trend from minute {} to {minutes} ({} samples): dashboard {} MiB, \
         floor loop {} MiB\n",
        minutes / 2,
        second_half.len(),
        trend(|sample| sample.ours),
        trend(|sample| sample.theirs),
    ));
    text.push_str(&format!(
        "at the end, anonymous and file pages: dashboard {} and {} MiB, floor loop {} and {} MiB\n",
        mib(ours_parts.0),
        mib(ours_parts.1),
        mib(floor_parts.0),
        mib(floor_parts.1),
    ));
    text
}

/// Returns the least-squares slope of `points`, or 0 when there are fewer
/// than two or all share one x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let count = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / count;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / count;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

/// One sample of resident memory, in KiB.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// Seconds since sampling began, right after the dashboard started.
    seconds: u64,
    /// The dashboard's resident memory.
    ours: u64,
    /// The dashboard's anonymous resident pages (heap and stacks).
    anonymous: u64,
    /// The floor loop's resident memory.
    theirs: u64,
}

/// Creates a repository of `commits` linear commits with a tag on every
/// fifth, so each service shows a full page of history.
fn history_repository(dir: &Path, commits: usize) {
    std::fs::create_dir_all(dir).expect("create the repository folder");
    let repository = git2::Repository::init(dir).expect("init a repository");
    let mut parent: Option<git2::Oid> = None;
    for number in 0..commits {
        std::fs::write(dir.join("VERSION"), format!("{number}\n")).expect("write a file");
        let mut index = repository.index().expect("open the index");
        index
            .add_path(Path::new("VERSION"))
            .expect("add the file to the index");
        let tree_id = index.write_tree().expect("write the tree");
        index.write().expect("write the index");
        let tree = repository.find_tree(tree_id).expect("find the tree");
        let time = git2::Time::new(1_700_000_000 + number as i64 * 3_600, 0);
        let signature =
            git2::Signature::new("Bench", "bench@example.invalid", &time).expect("signature");
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|id| repository.find_commit(*id).expect("find the parent"))
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        let message = format!("release {number}: change the request handling of the service");
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
        if number.is_multiple_of(5) {
            let object = repository.find_object(id, None).expect("find the commit");
            repository
                .tag_lightweight(&format!("v1.{number}.0"), &object, false)
                .expect("tag");
        }
        parent = Some(id);
    }
}
