//! Health: rewind's monitor probing N HTTP endpoints on 127.0.0.1 every
//! second, alone and while the dashboard folds the events and draws. Beside
//! it run the floor loop (one tokio interval per target, one shared reqwest
//! client) and prometheus-blackbox-exporter driven at the same rate.
//!
//! One server process on core 1 serves every endpoint; each client runs
//! alone on core 0. Every run warms up, then measures CPU time, resident
//! memory, probe lateness (start minus due time) and probes per target
//! over the window. The configurations alternate order between rounds.
//!
//! It takes about 25 minutes, so it runs only with `REWIND_BENCH_LONG=1`:
//! `REWIND_BENCH_LONG=1 cargo bench --bench health`. Parameters
//! (environment): `TARGETS` (1000), `MEASURE_SECONDS` (60),
//! `WARMUP_SECONDS` (5), `RUNS` (5), `CONFIGS` (comma-separated subset of
//! `rewind,rewind+dashboard,floor,blackbox`), `BLACKBOX` (path of the
//! exporter, default `prometheus-blackbox-exporter`).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use support::targets::ROLE_ENV;
use support::{LONG_ENV, Summary, number};

const CONFIGS: [&str; 4] = ["rewind", "rewind+dashboard", "floor", "blackbox"];

/// Core of the clients; the server takes the other one.
const CLIENT_CORE: usize = 0;
const SERVER_CORE: usize = 1;

fn main() {
    if support::targets::run_role() {
        return;
    }
    if !support::is_bench_run() {
        println!("health: skipped; run it with `REWIND_BENCH_LONG=1 cargo bench --bench health`");
        return;
    }
    if std::env::var_os(LONG_ENV).is_none() {
        println!(
            "health: skipped, it takes about 25 minutes; \
             run it with `REWIND_BENCH_LONG=1 cargo bench --bench health`"
        );
        return;
    }

    let settings = Settings::from_env();
    let machine = support::machine();
    let mut results: BTreeMap<&str, Vec<RunResult>> = BTreeMap::new();
    for round in 0..settings.runs {
        let mut order: Vec<&str> = settings.configs.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for config in order {
            let started = Instant::now();
            let result = run_once(&settings, config);
            eprintln!(
                "health: round {} {config}: {result:?} ({:.0} s)",
                round + 1,
                started.elapsed().as_secs_f64()
            );
            results.entry(config).or_default().push(result);
        }
    }
    support::record("health", &report(&settings, &machine, &results));
}

struct Settings {
    targets: usize,
    measure: u64,
    warmup: u64,
    runs: usize,
    configs: Vec<&'static str>,
    blackbox: String,
}

impl Settings {
    fn from_env() -> Settings {
        let requested = std::env::var("CONFIGS").unwrap_or_default();
        let configs = CONFIGS
            .into_iter()
            .filter(|config| {
                requested.is_empty() || requested.split(',').any(|name| name == *config)
            })
            .collect();
        Settings {
            targets: support::param("TARGETS", 1_000),
            measure: support::param("MEASURE_SECONDS", 60),
            warmup: support::param("WARMUP_SECONDS", 5),
            runs: support::param("RUNS", 5),
            configs,
            blackbox: std::env::var("BLACKBOX")
                .unwrap_or_else(|_| "prometheus-blackbox-exporter".to_owned()),
        }
    }
}

/// Measurements of one run.
#[derive(Debug, Default, Clone)]
struct RunResult {
    probes: f64,
    cpu_seconds: f64,
    rss_kib: f64,
    late_p50_us: f64,
    late_p99_us: f64,
    late_max_us: f64,
    per_target_min: f64,
    per_target_max: f64,
}

impl RunResult {
    fn cpu_per_1000(&self) -> f64 {
        self.cpu_seconds / self.probes * 1000.0
    }
}

/// Parses a `result key=value …` line.
fn parse_result(line: &str) -> BTreeMap<String, f64> {
    line.trim_start_matches("result")
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
        .collect()
}

/// A running server process with its ports.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    ports: String,
}

impl Server {
    fn start(targets: usize, blackbox: Option<&str>) -> Server {
        let exe = std::env::current_exe().expect("current executable");
        let mut command = support::pinned(SERVER_CORE, exe);
        command
            .env(ROLE_ENV, "server")
            .env("TARGETS", targets.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(address) = blackbox {
            command.env("BLACKBOX_ADDR", address);
        }
        let mut child = command.spawn().expect("start the server");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("server stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the ports");
        let ports = line
            .trim()
            .strip_prefix("ports ")
            .expect("the server prints its ports")
            .to_owned();
        Server {
            child,
            stdin,
            stdout,
            ports,
        }
    }

    fn start_measuring(&mut self) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "measure");
        }
    }

    /// Closes stdin and returns the server's result line.
    fn finish(mut self) -> BTreeMap<String, f64> {
        drop(self.stdin.take());
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("result") {
                break;
            }
            line.clear();
        }
        let _ = self.child.wait();
        parse_result(&line)
    }
}

fn run_once(settings: &Settings, config: &str) -> RunResult {
    if config == "blackbox" {
        return run_blackbox(settings);
    }
    let server = Server::start(settings.targets, None);
    let exe = std::env::current_exe().expect("current executable");
    let role = if config == "floor" { "floor" } else { "rewind" };
    let dashboard = if config == "rewind+dashboard" {
        "1"
    } else {
        "0"
    };

    // The client measures itself; the server only serves it.
    let output = support::pinned(CLIENT_CORE, exe)
        .env(ROLE_ENV, role)
        .env("TARGET_PORTS", &server.ports)
        .env("WARMUP_SECONDS", settings.warmup.to_string())
        .env("MEASURE_SECONDS", settings.measure.to_string())
        .env("DASHBOARD", dashboard)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the client");
    let _ = server.finish();

    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with("result"))
        .unwrap_or_else(|| panic!("the {config} client printed no result: {text}"));
    let values = parse_result(line);
    let value = |key: &str| values.get(key).copied().unwrap_or(f64::NAN);
    RunResult {
        probes: value("probes"),
        cpu_seconds: value("cpu_s"),
        rss_kib: value("rss_kib"),
        late_p50_us: value("late_p50_us"),
        late_p99_us: value("late_p99_us"),
        late_max_us: value("late_max_us"),
        per_target_min: value("per_target_min"),
        per_target_max: value("per_target_max"),
    }
}

/// Kills the child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the blackbox exporter on core 0, driven from the server process,
/// and measures the exporter's CPU time and memory over the window.
fn run_blackbox(settings: &Settings) -> RunResult {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 1s\n    http:\n      \
         preferred_ip_protocol: ip4\n",
    )
    .expect("write the exporter config");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let exporter = support::pinned(CLIENT_CORE, &settings.blackbox)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={address}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-blackbox-exporter");
    let exporter = KillOnDrop(exporter);
    wait_listening(&address);

    let mut server = Server::start(settings.targets, Some(&address));
    // `taskset` execs the exporter, so the child's pid is the exporter's.
    let pid = exporter.0.id();
    std::thread::sleep(Duration::from_secs(settings.warmup));
    let cpu_before = support::cpu_time(pid).unwrap_or_default();
    server.start_measuring();
    std::thread::sleep(Duration::from_secs(settings.measure));
    let cpu_after = support::cpu_time(pid).unwrap_or_default();
    let (rss, _) = support::rss_kib(pid).unwrap_or_default();
    let values = server.finish();
    drop(exporter);
    let value = |key: &str| values.get(key).copied().unwrap_or(f64::NAN);
    RunResult {
        probes: value("requests"),
        cpu_seconds: (cpu_after - cpu_before).as_secs_f64(),
        rss_kib: rss as f64,
        late_p50_us: value("late_p50_us"),
        late_p99_us: value("late_p99_us"),
        late_max_us: value("late_max_us"),
        per_target_min: value("per_target_min"),
        per_target_max: value("per_target_max"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port")
}

fn wait_listening(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {address}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report(settings: &Settings, machine: &str, results: &BTreeMap<&str, Vec<RunResult>>) -> String {
    let mut text = format!(
        "# health\n\nmachine: {machine}\n{} targets, 1 s interval, {} s warm-up then {} s \
         measured, {} runs per configuration, order alternating; server on core {SERVER_CORE}, \
         client on core {CLIENT_CORE}\n\n",
        settings.targets, settings.warmup, settings.measure, settings.runs
    );
    text.push_str(
        "| configuration | CPU s / 1000 probes (median, p99 of runs) | RSS MiB | lateness p50 µs | \
         lateness p99 µs | lateness max µs | probes per target in window |\n|---|---|---|---|---|---|---|\n",
    );
    let floor_cpu = results.get("floor").map(|runs| {
        Summary::of(&runs.iter().map(RunResult::cpu_per_1000).collect::<Vec<_>>()).median
    });
    for config in CONFIGS {
        let Some(runs) = results.get(config) else {
            continue;
        };
        let of =
            |field: fn(&RunResult) -> f64| Summary::of(&runs.iter().map(field).collect::<Vec<_>>());
        let cpu = of(RunResult::cpu_per_1000);
        let rss = of(|run| run.rss_kib / 1024.0);
        let p50 = of(|run| run.late_p50_us);
        let p99 = of(|run| run.late_p99_us);
        let max = of(|run| run.late_max_us);
        let lowest = of(|run| run.per_target_min);
        let highest = of(|run| run.per_target_max);
        let ratio = floor_cpu.map_or(String::new(), |floor| {
            format!(" ({}x floor)", number(cpu.median / floor))
        });
        text.push_str(&format!(
            "| {config} | {}, {}{ratio} | {} | {} | {} (runs {}..{}) | {} | {}..{} |\n",
            number(cpu.median),
            number(cpu.p99),
            number(rss.median),
            number(p50.median),
            number(p99.median),
            number(p99.min),
            number(p99.max),
            number(max.max),
            lowest.min,
            highest.max,
        ));
    }
    text.push_str(
        "\nLateness is probe start minus due time, measured inside the client for rewind and \
         the floor. For the exporter it is the arrival of the probe's request at the target \
         minus its due time in the driver, so it also contains the driver's request to the \
         exporter and the exporter's connect.\n",
    );
    text
}
