//! Helpers of the backup benchmark: a throwaway PostgreSQL server, a
//! generated folder, external commands, CPU pinning and summary
//! statistics.

pub mod files;
pub mod postgres;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Tells whether the process runs under `cargo bench`. Cargo passes
/// `--bench` there, while `cargo test --all-targets` runs bench targets
/// without it, and the benchmark then does nothing.
pub fn is_bench_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Returns the value of environment variable `name` parsed, or `default`.
pub fn param<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Sets the CPU affinity of the calling thread to `core`. Threads and
/// processes it starts afterwards inherit the affinity.
pub fn pin_thread(core: usize) {
    // SAFETY: `set` is a plain bit set owned by this frame, and
    // `sched_setaffinity` only reads it.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        eprintln!(
            "warning: running unpinned, sched_setaffinity to core {core} failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Pins every thread of process `pid` to `core` with `taskset -a -p`.
pub fn pin_process(pid: u32, core: usize) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("warning: process {pid} runs unpinned, `taskset -a -p` failed");
    }
}

/// Runs `command` and panics with its stderr when it fails.
pub fn run(command: &mut Command) {
    let output = command
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `script` with `bash -c` and panics when it fails.
pub fn shell(script: &str) {
    run(Command::new("bash").args(["-c", script]));
}

/// Returns how long `work` took.
pub fn time(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

/// Median, 99th percentile and extremes of a set of measurements in
/// seconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `values`. The median of an even count is the mean of the
    /// two middle values, and the 99th percentile uses the nearest-rank
    /// method, so it equals the maximum below 100 values.
    pub fn of(values: &[Duration]) -> Summary {
        let mut sorted: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len();
        assert!(count > 0, "no measurements to summarise");
        let median = if count % 2 == 1 {
            sorted[count / 2]
        } else {
            (sorted[count / 2 - 1] + sorted[count / 2]) / 2.0
        };
        let p99_index = ((0.99 * count as f64).ceil() as usize).clamp(1, count) - 1;
        Summary {
            count,
            min: sorted[0],
            median,
            p99: sorted[p99_index],
            max: sorted[count - 1],
        }
    }
}

/// Returns the load averages from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
