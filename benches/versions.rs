//! Versions: rewind's git2 reads (HEAD, describe, dirty check and 50
//! entries of first-parent history) on N generated repositories, beside
//! the git program doing the same (`rev-parse HEAD`, `describe --tags
//! --always`, `status --porcelain=v2`, `log --first-parent -50`), with
//! clean working trees and with 20 modified and 5 untracked files each.
//! Then the time to refresh every repository warm, with the dashboard's
//! four readers against git two repositories at a time, and the time from
//! starting the dashboard binary on N services to its first frame.
//!
//! `cargo bench --bench versions`. Parameters (environment):
//! `VERSIONS_REPOS` (200), `VERSIONS_COMMITS` (1000), `VERSIONS_FILES`
//! (2000), `VERSIONS_ROUNDS` (5), `STARTS` (7). For profiling,
//! `VERSIONS_PROFILE=read|dirty|head|refs` only runs that operation 50 times on
//! one repository (with callgrind, `--toggle-collect=*run_many*`), and
//! `VERSIONS_SHOW_SCREEN=1` prints the dashboard's screen as it is judged.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;

use rewind::engine::versions;

use support::{Summary, fixture, millis, number};

/// Entries of history read per repository, as the dashboard reads.
const HISTORY: usize = 50;

/// Repositories the dashboard reads at once.
const DASHBOARD_READERS: usize = 4;

/// Repositories the git comparison reads at once.
const GIT_READERS: usize = 2;

/// Files changed and created for the dirty case.
const MODIFIED: usize = 20;
const UNTRACKED: usize = 5;

fn main() {
    if !support::is_bench_run() {
        println!("versions: skipped; run it with `cargo bench --bench versions`");
        return;
    }
    let repos: usize = support::param("VERSIONS_REPOS", 200);
    let commits: usize = support::param("VERSIONS_COMMITS", 1_000);
    let files: usize = support::param("VERSIONS_FILES", 2_000);
    let rounds: usize = support::param("VERSIONS_ROUNDS", 5);

    if let Ok(operation) = std::env::var("VERSIONS_PROFILE") {
        profile(&operation, commits, files);
        return;
    }

    let dir = tempfile::tempdir().expect("create a temporary folder");
    let started = Instant::now();
    let paths = build_repositories(dir.path(), repos, commits, files);
    eprintln!(
        "versions: built {repos} repositories of {commits} commits and {files} files in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("versions_clean");
    group.bench_function("read", |b| {
        b.iter(|| versions::read(&paths[0], Some("main"), HISTORY).expect("read"))
    });
    group.bench_function("dirty_files", |b| {
        b.iter(|| versions::dirty_files(&paths[0]).expect("status"))
    });
    group.bench_function("head", |b| {
        b.iter(|| versions::head(&paths[0]).expect("head"))
    });
    // The periodic refresh of a service that is not selected reads the
    // deployed entry alone, or only takes the stamp when nothing changed.
    group.bench_function("read_deployed", |b| {
        b.iter(|| versions::read_deployed(&paths[0], Some("main")).expect("read"))
    });
    group.bench_function("stamp", |b| b.iter(|| versions::stamp(&paths[0])));
    group.bench_function("read_without_status", |b| {
        b.iter(|| versions::read_without_status(&paths[0], Some("main"), HISTORY).expect("read"))
    });
    group.finish();
    criterion.final_summary();

    let mut report = format!(
        "# versions\n\nmachine: {}\n{repos} repositories of {commits} commits and {files} files; \
         dirty = {MODIFIED} modified and {UNTRACKED} untracked files each\n",
        support::machine()
    );
    report.push_str(&per_operation(&paths, rounds, "clean"));
    report.push_str(&refresh_all(&paths, rounds, "clean"));
    for path in &paths {
        make_dirty(path, files);
    }
    report.push_str(&per_operation(&paths, rounds, "dirty"));
    report.push_str(&refresh_all(&paths, rounds, "dirty"));
    report.push_str(&first_frame(dir.path(), &paths));
    support::record("versions", &report);
}

/// Runs `git` with `args` in `dir` and returns its stdout; panics when it fails.
fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed in {}",
        dir.display()
    );
    output.stdout
}

/// Builds one repository with `git fast-import` and clones it `count`
/// times. The first commit adds every file and each later commit changes
/// three. Every twentieth commit has a tag, the newest ten commits behind
/// HEAD.
fn build_repositories(dir: &Path, count: usize, commits: usize, files: usize) -> Vec<PathBuf> {
    let base = dir.join("base");
    std::fs::create_dir_all(&base).expect("create the base folder");
    git(&base, &["init", "-q", "-b", "main"]);
    let mut import = Command::new("git")
        .arg("-C")
        .arg(&base)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run git fast-import");
    {
        let mut stream = std::io::BufWriter::new(import.stdin.take().expect("stdin"));
        let file_path = |n: usize| format!("src/module{:02}/file{n:05}.txt", n % 40);
        let content = |n: usize, version: usize| {
            format!(
                "file {n}, version {version}\n{}\n",
                "line of text ".repeat(12)
            )
        };
        for k in 1..=commits {
            let time = 1_700_000_000 + k * 3_600;
            let message = format!("change {k}: adjust the handlers of module {:02}\n", k % 40);
            write!(
                stream,
                "commit refs/heads/main\nmark :{k}\nauthor Bench <bench@example.invalid> {time} +0000\n\
                 committer Bench <bench@example.invalid> {time} +0000\ndata {}\n{message}",
                message.len()
            )
            .expect("write the stream");
            if k > 1 {
                writeln!(stream, "from :{}", k - 1).expect("write the stream");
            }
            let changed: Vec<usize> = if k == 1 {
                (0..files).collect()
            } else {
                (0..3).map(|j| (k * 7 + j * 613) % files).collect()
            };
            for n in changed {
                let body = content(n, k);
                write!(
                    stream,
                    "M 644 inline {}\ndata {}\n{body}\n",
                    file_path(n),
                    body.len()
                )
                .expect("write the stream");
            }
            if (k + 10) % 20 == commits % 20 {
                write!(stream, "reset refs/tags/v0.{}.0\nfrom :{k}\n\n", k / 20)
                    .expect("write the stream");
            }
        }
    }
    assert!(import.wait().expect("wait for fast-import").success());
    git(&base, &["reset", "-q", "--hard", "main"]);

    let paths: Vec<PathBuf> = (0..count)
        .map(|i| dir.join(format!("repo{i:03}")))
        .collect();
    for path in &paths {
        let status = Command::new("git")
            .args(["clone", "-q"])
            .arg(&base)
            .arg(path)
            .status()
            .expect("run git clone");
        assert!(status.success(), "git clone failed");
    }
    // Files written in the same second as the index are "racily clean", so
    // both git and libgit2 would compare their contents. A refresh a second
    // later settles every index, as on a deploy host.
    std::thread::sleep(Duration::from_millis(1_100));
    for path in &paths {
        git(path, &["update-index", "-q", "--refresh"]);
    }
    paths
}

/// Modifies `MODIFIED` tracked files and adds `UNTRACKED` new ones.
fn make_dirty(path: &Path, files: usize) {
    for n in 0..MODIFIED {
        let index = (n * 97) % files;
        let file = path.join(format!("src/module{:02}/file{index:05}.txt", index % 40));
        let mut handle = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap_or_else(|error| panic!("open {}: {error}", file.display()));
        writeln!(handle, "local edit").expect("append");
    }
    for n in 0..UNTRACKED {
        std::fs::write(path.join(format!("notes{n}.txt")), "scratch\n").expect("write");
    }
}

/// One operation timed per repository.
struct Operation {
    name: &'static str,
    rewind: Vec<f64>,
    git: Vec<f64>,
}

fn time_ms(work: impl FnOnce()) -> f64 {
    let start = Instant::now();
    work();
    millis(start.elapsed())
}

/// Times each operation on every repository, rewind and git alternating
/// which goes first, with this thread and the git processes it starts on
/// core 0. Returns the report section.
fn per_operation(paths: &[PathBuf], rounds: usize, label: &str) -> String {
    support::pin_thread("0");
    let mut head = Operation {
        name: "HEAD",
        rewind: Vec::new(),
        git: Vec::new(),
    };
    let mut dirty = Operation {
        name: "dirty check",
        rewind: Vec::new(),
        git: Vec::new(),
    };
    let mut rest = Operation {
        name: "HEAD + describe + history",
        rewind: Vec::new(),
        git: Vec::new(),
    };
    let mut all = Operation {
        name: "all four",
        rewind: Vec::new(),
        git: Vec::new(),
    };
    let mut describe_git = Vec::new();
    let mut log_git = Vec::new();

    // rewind's describe must name what the git program names.
    for path in paths {
        let ours = versions::read(path, Some("main"), HISTORY).expect("read");
        let theirs = String::from_utf8_lossy(&git(path, &["describe", "--tags", "--always"]))
            .trim()
            .to_owned();
        assert_eq!(
            ours.describe.as_deref(),
            Some(theirs.as_str()),
            "describe differs"
        );
    }

    for round in 0..rounds {
        for (index, path) in paths.iter().enumerate() {
            let rewind_first = (round + index).is_multiple_of(2);
            let mut rewind_times = (0.0, 0.0, 0.0, 0.0);
            let mut git_times = (0.0, 0.0, 0.0, 0.0);
            let mut run_rewind = || {
                let resolve = time_ms(|| {
                    versions::head(path).expect("head");
                });
                let status = time_ms(|| {
                    versions::dirty_files(path).expect("status");
                });
                let refs = time_ms(|| {
                    versions::read_without_status(path, Some("main"), HISTORY).expect("read");
                });
                let read = time_ms(|| {
                    versions::read(path, Some("main"), HISTORY).expect("read");
                });
                rewind_times = (resolve, status, refs, read);
            };
            let mut run_git = || {
                let rev_parse = time_ms(|| {
                    git(path, &["rev-parse", "HEAD"]);
                });
                let describe = time_ms(|| {
                    git(path, &["describe", "--tags", "--always"]);
                });
                let status = time_ms(|| {
                    git(path, &["status", "--porcelain=v2"]);
                });
                let log = time_ms(|| {
                    git(path, &["log", "--first-parent", "-50"]);
                });
                git_times = (rev_parse, describe, status, log);
            };
            if rewind_first {
                run_rewind();
                run_git();
            } else {
                run_git();
                run_rewind();
            }
            let (resolve, status, refs, read) = rewind_times;
            let (rev_parse, describe, git_status, log) = git_times;
            head.rewind.push(resolve);
            head.git.push(rev_parse);
            dirty.rewind.push(status);
            dirty.git.push(git_status);
            rest.rewind.push(refs);
            rest.git.push(rev_parse + describe + log);
            all.rewind.push(read);
            all.git.push(rev_parse + describe + git_status + log);
            describe_git.push(describe);
            log_git.push(log);
        }
    }

    support::pin_thread("0-1");
    let mut text = format!(
        "\n## per repository, {label} ({} samples each: {rounds} rounds over every repository, \
         order alternating)\n\n| operation | rewind (git2) | git program | git / rewind |\n|---|---|---|---|\n",
        head.rewind.len()
    );
    for operation in [&head, &rest, &dirty, &all] {
        let ours = Summary::of(&operation.rewind);
        let theirs = Summary::of(&operation.git);
        text.push_str(&format!(
            "| {} | median {} ms, p99 {} ms | median {} ms, p99 {} ms | {}x |\n",
            operation.name,
            number(ours.median),
            number(ours.p99),
            number(theirs.median),
            number(theirs.p99),
            number(theirs.median / ours.median)
        ));
    }
    text.push_str(&format!(
        "\ngit describe alone: {}; git log alone: {}. rewind's HEAD + describe + history is \
         `read_without_status`, which opens the repository and reads all but the dirty files.\n",
        Summary::of(&describe_git).show("ms"),
        Summary::of(&log_git).show("ms")
    ));
    text
}

/// Reads every repository with `workers` threads, each taking the next
/// repository, and returns the wall time in milliseconds.
fn read_all(paths: &[PathBuf], workers: usize, read: fn(&Path)) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let next = Arc::clone(&next);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(index) else { break };
                    read(path);
                }
            });
        }
    });
    millis(start.elapsed())
}

fn read_with_rewind(path: &Path) {
    versions::read(path, Some("main"), HISTORY).expect("read");
}

fn read_with_git(path: &Path) {
    git(path, &["rev-parse", "HEAD"]);
    git(path, &["describe", "--tags", "--always"]);
    git(path, &["status", "--porcelain=v2"]);
    git(path, &["log", "--first-parent", "-50"]);
}

/// Refreshes every repository warm, both cores in use, alternating order.
fn refresh_all(paths: &[PathBuf], rounds: usize, label: &str) -> String {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // One untimed pass of each warms the page cache.
    read_all(paths, DASHBOARD_READERS, read_with_rewind);
    read_all(paths, GIT_READERS, read_with_git);
    for round in 0..rounds.max(5) {
        if round.is_multiple_of(2) {
            ours.push(read_all(paths, DASHBOARD_READERS, read_with_rewind));
            theirs.push(read_all(paths, GIT_READERS, read_with_git));
        } else {
            theirs.push(read_all(paths, GIT_READERS, read_with_git));
            ours.push(read_all(paths, DASHBOARD_READERS, read_with_rewind));
        }
    }
    let ours = Summary::of(&ours);
    let theirs = Summary::of(&theirs);
    format!(
        "\n## all {} repositories, {label}, warm\n\nrewind, {DASHBOARD_READERS} readers: {}\n\
         git program, {GIT_READERS} repositories at a time: {}\ngit / rewind: {}x\n",
        paths.len(),
        ours.show("ms"),
        theirs.show("ms"),
        number(theirs.median / ours.median)
    )
}

/// Starts the dashboard binary in a 200x60 pseudo-terminal on a
/// configuration of every repository and measures the time to its first
/// frame and until every visible row shows a version.
fn first_frame(dir: &Path, paths: &[PathBuf]) -> String {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};

    let health_port = 9; // The discard port: nothing listens, probes are refused.
    let text = fixture::services_toml(&fixture::ServicesSpec {
        count: paths.len(),
        state_dir: &dir.join("state"),
        deploy_dir: &|i| paths[i].clone(),
        url: &|_| format!("http://127.0.0.1:{health_port}/health"),
        interval: "1s",
        restart: &["true"],
    });
    let config = dir.join("services.toml");
    std::fs::write(&config, text).expect("write the configuration");

    let starts: usize = support::param("STARTS", 7);
    let mut first = Vec::new();
    let mut filled = Vec::new();
    for _ in 0..starts {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 60,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_rewind"));
        command.arg("--config");
        command.arg(&config);
        command.arg("dashboard");
        command.env("TERM", "xterm-256color");
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let start = Instant::now();
        let mut child = pty
            .slave
            .spawn_command(command)
            .expect("start the dashboard");
        let (sender, receiver) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0
                    || sender
                        .send((Instant::now(), buffer[..read].to_vec()))
                        .is_err()
                {
                    break;
                }
            }
        });

        let mut parser = vt100::Parser::new(
            std::num::NonZeroU16::new(60).expect("rows"),
            std::num::NonZeroU16::new(200).expect("columns"),
            0,
        );
        let mut first_at = None;
        let mut filled_at = None;
        let deadline = start + Duration::from_secs(30);
        while filled_at.is_none() && Instant::now() < deadline {
            let Ok((at, bytes)) = receiver.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            parser.process(&bytes);
            let screen = parser.screen().contents();
            if first_at.is_none() && screen.contains("rewind") {
                first_at = Some(at - start);
                if std::env::var_os("VERSIONS_SHOW_SCREEN").is_some() {
                    eprintln!("{screen}");
                }
            }
            // The services pane shows `…` as the version until it is read. A
            // row counts once both borders of the focused pane (`┃`) arrived,
            // because a read can end in the middle of a frame, and only its
            // cells between the borders count.
            let rows: Vec<&str> = screen
                .lines()
                .filter(|line| line.starts_with('┃') && line.contains("svc-"))
                .collect();
            let complete = |row: &&str| {
                let mut pane = row.split('┃');
                // Before the first border, the row inside the pane, the rest.
                let (_, inside, rest) = (pane.next(), pane.next(), pane.next());
                rest.is_some() && inside.is_some_and(|cells| !cells.contains('…'))
            };
            if rows.len() >= 20 && rows.iter().all(complete) {
                filled_at = Some(at - start);
                if std::env::var_os("VERSIONS_SHOW_SCREEN").is_some() {
                    eprintln!("filled:\n{screen}");
                }
            }
        }
        if filled_at.is_none() && std::env::var_os("VERSIONS_SHOW_SCREEN").is_some() {
            eprintln!("not filled:\n{}", parser.screen().contents());
        }
        let mut writer = pty.master.take_writer().expect("pty writer");
        let _ = writer.write_all(b"q");
        let _ = writer.flush();
        let _ = child.wait();
        if let Some(at) = first_at {
            first.push(millis(at));
        }
        if let Some(at) = filled_at {
            filled.push(millis(at));
        }
    }
    format!(
        "\n## dashboard start, {} services, 200x60 pseudo-terminal ({starts} starts)\n\n\
         first frame: {}\nevery visible row shows its version: {}\n",
        paths.len(),
        Summary::of(&first).show("ms"),
        Summary::of(&filled).show("ms")
    )
}

/// Builds one repository and runs `operation` (`read`, `dirty` or `head`)
/// on it 50 times, for a profiler.
fn profile(operation: &str, commits: usize, files: usize) {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let paths = build_repositories(dir.path(), 1, commits, files);
    run_many(operation, &paths[0], 50);
}

/// Runs `operation` `times` times. A named function, so that callgrind can
/// collect only this part with `--toggle-collect=*run_many*`.
#[inline(never)]
fn run_many(operation: &str, path: &Path, times: usize) {
    for _ in 0..times {
        match operation {
            "read" => read_with_rewind(path),
            "dirty" => {
                versions::dirty_files(path).expect("status");
            }
            "head" => {
                versions::head(path).expect("head");
            }
            "refs" => {
                versions::read_without_status(path, Some("main"), HISTORY).expect("read");
            }
            other => panic!("unknown operation `{other}`"),
        }
    }
}
