//! The processes of the health and memory scenarios. A benchmark binary
//! re-executes itself with `REWIND_BENCH_ROLE` set to run one of them:
//!
//! - `server`: N HTTP endpoints on 127.0.0.1, one port each, that return
//!   200 to `GET /health`. With `BLACKBOX_ADDR` it also drives a
//!   prometheus-blackbox-exporter at one probe per target per interval and
//!   measures, per probe, the time from its due time to its arrival here.
//! - `floor`: the floor loop, one tokio interval per target and one shared
//!   reqwest client, nothing else.
//! - `rewind`: rewind's health monitor on the same targets, the events
//!   drained as the CLI would; with `DASHBOARD=1` the events are folded into
//!   the dashboard state and drawn at the dashboard's frame rate.
//!
//! Clients print one `result key=value …` line on stdout when done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::time::{self, Instant};

use super::{Summary, fixture};

/// Environment variable that names the role of a re-executed process.
pub const ROLE_ENV: &str = "REWIND_BENCH_ROLE";

/// Lateness of each probe in microseconds, filled by the observer.
static LATENESS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Becomes true when the warm-up is over and lateness counts.
static MEASURING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn record_lateness(lateness: Duration) {
    if MEASURING.load(Ordering::Relaxed) {
        let micros = u32::try_from(lateness.as_micros()).unwrap_or(u32::MAX);
        LATENESS.lock().expect("lateness lock").push(micros);
    }
}

/// Runs the role named by [`ROLE_ENV`] and returns true, or returns false
/// when the variable is unset.
pub fn run_role() -> bool {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return false;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    match role.as_str() {
        "server" => runtime.block_on(serve()),
        "floor" | "rewind" => runtime.block_on(client(&role)),
        other => panic!("unknown role `{other}`"),
    }
    runtime.shutdown_background();
    true
}

/// Settings of a client role, from the environment.
struct ClientSettings {
    ports: Vec<u16>,
    warmup: Duration,
    measure: Duration,
    dashboard: bool,
}

impl ClientSettings {
    fn from_env() -> ClientSettings {
        let ports = std::env::var("TARGET_PORTS")
            .expect("TARGET_PORTS lists the server's ports")
            .split(',')
            .map(|port| port.parse().expect("a port number"))
            .collect();
        ClientSettings {
            ports,
            warmup: Duration::from_secs(super::param("WARMUP_SECONDS", 5)),
            measure: Duration::from_secs(super::param("MEASURE_SECONDS", 60)),
            dashboard: std::env::var("DASHBOARD").is_ok_and(|value| value == "1"),
        }
    }
}

/// Runs the floor loop or rewind's monitor, then prints the result line.
async fn client(role: &str) {
    let settings = ClientSettings::from_env();
    let count = settings.ports.len();
    let per_target: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let dir = tempfile::tempdir().expect("create a temporary folder");

    // The rewind client folds and draws in this future, on the thread that
    // runs `block_on`, as the dashboard's event loop does. The monitor runs
    // its probes on a thread of its own.
    let mut work: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match role {
        "floor" => Box::pin(floor(settings.ports.clone(), Arc::clone(&per_target))),
        _ => Box::pin(rewind_monitor(
            dir.path().to_path_buf(),
            settings.ports.clone(),
            settings.dashboard,
            Arc::clone(&per_target),
        )),
    };
    tokio::select! {
        () = &mut work => panic!("the {role} client stopped during the warm-up"),
        () = time::sleep(settings.warmup) => {}
    }
    let pid = std::process::id();
    let snapshot = |counts: &[AtomicU64]| -> Vec<u64> {
        counts.iter().map(|n| n.load(Ordering::Relaxed)).collect()
    };
    let cpu_before = super::cpu_time(pid).unwrap_or_default();
    let before = snapshot(&per_target);
    // The memory benchmark turns the lateness record off: it keeps 4 bytes
    // per probe, which would count as the floor loop's growth.
    let record = std::env::var("RECORD_LATENESS").map_or(true, |value| value != "0");
    MEASURING.store(record, Ordering::Relaxed);
    tokio::select! {
        () = &mut work => panic!("the {role} client stopped while measured"),
        () = time::sleep(settings.measure) => {}
    }
    MEASURING.store(false, Ordering::Relaxed);
    let cpu_after = super::cpu_time(pid).unwrap_or_default();
    let after = snapshot(&per_target);
    let (rss, hwm) = super::rss_kib(pid).unwrap_or_default();
    drop(work);

    let lateness: Vec<f64> = LATENESS
        .lock()
        .expect("lateness lock")
        .iter()
        .map(|&micros| f64::from(micros))
        .collect();
    let summary = Summary::of(&lateness);
    // Probes per target within the window: one per interval means each
    // target has the window's length in seconds, give or take one.
    let window: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    println!(
        "result probes={} cpu_s={:.3} rss_kib={rss} hwm_kib={hwm} late_p50_us={} \
         late_p99_us={} late_max_us={} late_n={} per_target_min={} per_target_max={}",
        window.iter().sum::<u64>(),
        (cpu_after - cpu_before).as_secs_f64(),
        summary.median,
        summary.p99,
        summary.max,
        summary.count,
        window.iter().min().copied().unwrap_or(0),
        window.iter().max().copied().unwrap_or(0),
    );
}

/// Returns the offset of target `index` of `count` within `period`, so that
/// the targets' probes spread evenly over the period.
fn phase(index: usize, count: usize, period: Duration) -> Duration {
    period.mul_f64(index as f64 / count.max(1) as f64)
}

/// Runs the floor loop: one interval per target, one shared client. The
/// intervals start spread over the period, as rewind's monitor spreads its
/// periodic probes, so that lateness compares like with like.
async fn floor(ports: Vec<u16>, per_target: Arc<Vec<AtomicU64>>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build the floor's reqwest client");
    let period = Duration::from_secs(1);
    let start = Instant::now();
    let count = ports.len();
    let mut tasks = Vec::with_capacity(count);
    for (index, port) in ports.into_iter().enumerate() {
        let client = client.clone();
        let per_target = Arc::clone(&per_target);
        let url = format!("http://127.0.0.1:{port}/health");
        let first = start + phase(index, count, period);
        tasks.push(tokio::spawn(async move {
            let mut interval = time::interval_at(first, period);
            loop {
                let due = interval.tick().await;
                record_lateness(due.elapsed());
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
                per_target[index].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Rewind's monitor on the targets; with `dashboard`, the dashboard's fold
/// and draw loop on the events.
async fn rewind_monitor(
    dir: std::path::PathBuf,
    ports: Vec<u16>,
    dashboard: bool,
    per_target: Arc<Vec<AtomicU64>>,
) {
    use rewind::dashboard::app::App;
    use rewind::dashboard::update::{Msg, update};
    use rewind::engine::event::EngineEvent;
    use rewind::engine::health::{Monitor, observe_lateness};

    observe_lateness(record_lateness);
    let repository = dir.join("repo");
    fixture::tiny_repository(&repository);
    let text = fixture::services_toml(&fixture::ServicesSpec {
        count: ports.len(),
        state_dir: &dir.join("state"),
        deploy_dir: &|_| repository.clone(),
        url: &|i| format!("http://127.0.0.1:{}/health", ports[i]),
        interval: "1s",
        restart: &["true"],
    });
    let config = rewind::config::parse(&dir.join("services.toml"), &text).expect("valid config");

    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let _monitor = Monitor::start(rewind::engine::health::client(), &config.services, sender);

    let mut app = dashboard.then(|| App::new(&config));
    let mut terminal = dashboard.then(sink_terminal);
    let mut frames = time::interval(Duration::from_millis(33));
    frames.set_missed_tick_behavior(time::MissedTickBehavior::Skip);
    let mut changed = false;
    loop {
        tokio::select! {
            _ = frames.tick() => {
                if let (Some(app), Some(terminal), true) = (&app, &mut terminal, changed) {
                    terminal
                        .draw(|frame| rewind::dashboard::view::view(app, frame))
                        .expect("draw");
                    changed = false;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                if let EngineEvent::ProbeCompleted { service, .. } = &event {
                    let index: usize = service[4..].parse().expect("service index");
                    per_target[index].fetch_add(1, Ordering::Relaxed);
                }
                if let Some(app) = &mut app {
                    update(app, Msg::Engine(event));
                    changed = true;
                }
            }
        }
    }
}

type SinkTerminal = ratatui::Terminal<rewind::dashboard::backend::Compact<std::io::Sink>>;

/// Returns a 200x60 terminal that encodes frames with the dashboard's
/// backend and drops the bytes.
fn sink_terminal() -> SinkTerminal {
    let options = ratatui::TerminalOptions {
        viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 200, 60)),
    };
    let backend = rewind::dashboard::backend::Compact::new(std::io::sink());
    ratatui::Terminal::with_options(backend, options).expect("create a terminal")
}

/// State of the server role.
struct Served {
    /// Due time of each target's current blackbox probe, in nanoseconds
    /// since `base`.
    due: Vec<AtomicU64>,
    base: std::time::Instant,
    /// Requests per target while measuring.
    requests: Vec<AtomicU64>,
    lateness: Mutex<Vec<u32>>,
    measuring: std::sync::atomic::AtomicBool,
}

/// Serves the targets until stdin closes, then prints the result line.
async fn serve() {
    let count: usize = super::param("TARGETS", 1_000);
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a port"),
        );
    }
    let ports: Vec<String> = listeners
        .iter()
        .map(|listener| listener.local_addr().expect("address").port().to_string())
        .collect();
    let served = Arc::new(Served {
        due: (0..count).map(|_| AtomicU64::new(0)).collect(),
        base: std::time::Instant::now(),
        requests: (0..count).map(|_| AtomicU64::new(0)).collect(),
        lateness: Mutex::new(Vec::new()),
        measuring: std::sync::atomic::AtomicBool::new(false),
    });
    for (index, listener) in listeners.into_iter().enumerate() {
        let router = Router::new()
            .route("/health", get(health))
            .with_state((Arc::clone(&served), index));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    println!("ports {}", ports.join(","));

    if let Ok(address) = std::env::var("BLACKBOX_ADDR") {
        let ports: Vec<u16> = ports
            .iter()
            .map(|port| port.parse().expect("port"))
            .collect();
        tokio::spawn(drive_blackbox(address, ports, Arc::clone(&served)));
    }

    // The orchestrator writes `measure` when the warm-up ends and closes
    // stdin at the end of the run.
    let reader = Arc::clone(&served);
    let _ = tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(line) if line.trim() == "measure" => {
                    reader.measuring.store(true, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    let lateness: Vec<f64> = served
        .lateness
        .lock()
        .expect("lateness lock")
        .iter()
        .map(|&micros| f64::from(micros))
        .collect();
    let summary = Summary::of(&lateness);
    let requests: Vec<u64> = served
        .requests
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    println!(
        "result requests={} per_target_min={} per_target_max={} late_p50_us={} late_p99_us={} late_max_us={} late_n={}",
        requests.iter().sum::<u64>(),
        requests.iter().min().copied().unwrap_or(0),
        requests.iter().max().copied().unwrap_or(0),
        summary.median,
        summary.p99,
        summary.max,
        summary.count
    );
}

async fn health(State((served, index)): State<(Arc<Served>, usize)>) -> &'static str {
    if !served.measuring.load(Ordering::Relaxed) {
        return "ok";
    }
    served.requests[index].fetch_add(1, Ordering::Relaxed);
    let due = served.due[index].load(Ordering::Relaxed);
    if due != 0 {
        let now = served.base.elapsed().as_nanos() as u64;
        let micros = u32::try_from(now.saturating_sub(due) / 1_000).unwrap_or(u32::MAX);
        served.lateness.lock().expect("lateness lock").push(micros);
    }
    "ok"
}

/// Asks the blackbox exporter at `address` to probe each target once per
/// second, the targets spread over the second as Prometheus spreads its
/// scrapes, and records each probe's due time for [`health`].
async fn drive_blackbox(address: String, ports: Vec<u16>, served: Arc<Served>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("build a client");
    let period = Duration::from_secs(1);
    let start = Instant::now() + Duration::from_millis(100);
    let count = ports.len();
    for (index, port) in ports.into_iter().enumerate() {
        let client = client.clone();
        let served = Arc::clone(&served);
        let url =
            format!("http://{address}/probe?module=http_2xx&target=http://127.0.0.1:{port}/health");
        tokio::spawn(async move {
            let mut interval = time::interval_at(start + phase(index, count, period), period);
            loop {
                let due = interval.tick().await;
                let due_nanos = due.into_std().duration_since(served.base).as_nanos() as u64;
                served.due[index].store(due_nanos.max(1), Ordering::Relaxed);
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
            }
        });
    }
}
