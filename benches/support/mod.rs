//! Code shared by the benchmark targets: run gating, CPU pinning, summary
//! statistics, machine facts, process measurements and fixtures (a
//! `services.toml` for N services and a dashboard state filled like a
//! long-running session).
//!
//! Each target includes this module with `mod support;`, so some helpers
//! are unused in some targets.

#![allow(dead_code)]

pub mod fixture;
pub mod targets;

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Environment variable set on a process that is already pinned, so that
/// [`pin_self`] re-executes only once.
const PINNED_ENV: &str = "REWIND_BENCH_PINNED";

/// Environment variable that enables the long whole-process scenarios.
pub const LONG_ENV: &str = "REWIND_BENCH_LONG";

/// Tells whether the process runs under `cargo bench`. Cargo passes
/// `--bench` there; `cargo test --all-targets` runs bench targets without
/// it, and the benchmarks then do nothing, so no test measures time.
pub fn is_bench_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Re-executes the current program pinned to `core` with `taskset`, once.
/// Returns when the process already runs pinned, or when `taskset` is
/// missing (then with a warning on stderr).
pub fn pin_self(core: usize) {
    if std::env::var_os(PINNED_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = Command::new("taskset")
        .arg("-c")
        .arg(core.to_string())
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(PINNED_ENV, core.to_string())
        .exec();
    eprintln!("warning: running unpinned, `taskset` failed: {error}");
}

/// Sets the CPU affinity of the calling thread, and so of the processes it
/// starts, to `cores` (a `taskset` list such as `0` or `0-1`).
pub fn pin_thread(cores: &str) {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| {
            link.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        });
    let Some(tid) = tid else {
        eprintln!("warning: running unpinned, no /proc/thread-self");
        return;
    };
    let status = Command::new("taskset")
        .args(["-p", "-c", cores, &tid])
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("warning: running unpinned, `taskset -p` failed");
    }
}

/// Returns a command that runs `program` pinned to `core` with `taskset`.
pub fn pinned(core: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(core.to_string()).arg(program);
    command
}

/// Returns the value of environment variable `name` parsed, or `default`.
pub fn param<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Median, 99th percentile and extremes of a set of measurements.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `values`. Percentiles use the nearest-rank method.
    pub fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |share: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let index = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[index - 1]
        };
        Summary {
            count: sorted.len(),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            median: rank(0.5),
            p99: rank(0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Formats the summary with `unit` after each value.
    pub fn show(&self, unit: &str) -> String {
        format!(
            "median {} {unit}, p99 {} {unit}, min {} {unit}, max {} {unit} (n={})",
            number(self.median),
            number(self.p99),
            number(self.min),
            number(self.max),
            self.count
        )
    }
}

/// Formats a number with three significant digits or more.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Returns microseconds as a float.
pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Returns milliseconds as a float.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Describes the machine and its load: CPU model, cores, memory, kernel,
/// date and load average.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let total_cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| field_kib(&text, "MemTotal:"))
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let date = output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let kernel = output_of("uname", &["-r"]);

    let mut text = String::new();
    let _ = write!(
        text,
        "{model}, {total_cores} cores ({cores} usable by this process), {:.1} GiB memory, \
         Linux {kernel}, {date}, load average {}",
        memory_kib as f64 / 1024.0 / 1024.0,
        load.join(" ")
    );
    text
}

fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Reads a `NAME: VALUE kB` field of a `/proc` status or meminfo text.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// Resident memory of process `pid` in KiB: current (`VmRSS`) and peak
/// (`VmHWM`).
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field_kib(&text, "VmRSS:")?, field_kib(&text, "VmHWM:")?))
}

/// Returns the resident memory of process `pid` in KiB, split into anonymous pages
/// (heap and stacks) and file pages (the mapped binary and libraries),
/// from `/proc/PID/status`.
pub fn rss_parts_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((field_kib(&text, "RssAnon:")?, field_kib(&text, "RssFile:")?))
}

/// CPU time (user plus system) that process `pid` has used, summed over
/// its threads, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in brackets may contain spaces, so fields are
    // counted after the closing bracket: utime is field 14, stime 15.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks(),
    ))
}

/// Clock ticks per second of `/proc` CPU times, 100 when `getconf` fails.
fn clock_ticks() -> f64 {
    output_of("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0)
}

/// Writes `text` to `target/bench-results/NAME.txt` beside the criterion
/// reports, and to stdout.
pub fn record(name: &str, text: &str) {
    println!("{text}");
    let dir = Path::new("target").join("bench-results");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.txt")), text);
    }
}
