//! Frame: draws the whole dashboard of N services into 200x60 and 80x24
//! test buffers, with histories, a full sample history each and a running
//! rollback. Beside it, a floor fills and diffs a screen of the same size
//! and text with plain ratatui. It then counts the bytes a crossterm
//! backend writes for a full repaint and for the frame after one service
//! changes state.
//!
//! `cargo bench --bench frame` runs criterion on each case, then a paired
//! run that alternates subject and floor and prints median and p99 per
//! frame, the ratios and the byte counts. Parameters (environment):
//! `FRAME_ROUNDS` (default 15) rounds of `FRAME_BATCH` (default 200) frames.
//! For profiling, `FRAME_PROFILE=N` only draws N services 200 times at
//! 80x24 (with callgrind, `--toggle-collect=*draw_many*`), and
//! `FRAME_DUMP=1` only prints the bytes of the frames after a change.

mod support;

use std::cell::Cell;
use std::hint::black_box;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::{Terminal, TerminalOptions, Viewport};

use rewind::dashboard::app::App;
use rewind::dashboard::backend::Compact;
use rewind::dashboard::update::{Msg, update};
use rewind::dashboard::view::view;
use rewind::engine::health::{HISTORY_LEN, HealthState};

use support::{Summary, fixture, micros, number};

/// Screen sizes drawn: a large terminal and the classic 80x24.
const SIZES: [(u16, u16); 2] = [(200, 60), (80, 24)];

/// Service counts compared in pairs: each larger count against a smaller one.
const SCALING: [(usize, usize); 2] = [(1_000, 50), (10_000, 100)];

fn main() {
    if !support::is_bench_run() {
        println!("frame: skipped; run it with `cargo bench --bench frame`");
        return;
    }
    support::pin_self(0);
    if let Ok(count) = std::env::var("FRAME_PROFILE") {
        profile(count.parse().expect("a service count"));
        return;
    }
    if std::env::var_os("FRAME_DUMP").is_some() {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        println!("{}", bytes_report(dir.path()));
        return;
    }

    let dir = tempfile::tempdir().expect("create a temporary folder");
    let counts = [50, 100, 1_000, 10_000];
    let apps: Vec<(usize, App)> = counts
        .iter()
        .map(|&count| {
            let folder = dir.path().join(count.to_string());
            (count, fixture::filled_app(&folder, count))
        })
        .collect();
    let app_of = |count: usize| &apps.iter().find(|(n, _)| *n == count).expect("built").1;

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for (width, height) in SIZES {
        let mut group = criterion.benchmark_group(format!("frame_{width}x{height}"));
        for &count in &counts {
            let app = app_of(count);
            let mut terminal = test_terminal(width, height);
            group.bench_with_input(BenchmarkId::new("dashboard", count), app, |b, app| {
                b.iter(|| draw_dashboard(&mut terminal, app));
            });
        }
        let floor = floor_lines(app_of(1_000), width, height);
        let mut terminal = test_terminal(width, height);
        group.bench_function("floor", |b| b.iter(|| draw_floor(&mut terminal, &floor)));
        group.finish();
    }
    criterion.final_summary();

    let rounds = support::param("FRAME_ROUNDS", 15);
    let batch = support::param("FRAME_BATCH", 200);
    let mut report = String::new();
    report.push_str(&format!("# frame\n\nmachine: {}\n", support::machine()));
    report.push_str(&format!(
        "paired runs: {rounds} rounds of {batch} frames per case, order alternating; \
         times are per frame\n"
    ));
    for (width, height) in SIZES {
        report.push_str(&paired(&apps, width, height, rounds, batch));
    }
    report.push_str(&bytes_report(dir.path()));
    support::record("frame", &report);
}

fn test_terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).expect("create a test terminal")
}

fn draw_dashboard<B: ratatui::backend::Backend>(terminal: &mut Terminal<B>, app: &App) {
    terminal
        .draw(|frame| view(black_box(app), frame))
        .map(|_| ())
        .unwrap_or_else(|_| panic!("draw failed"));
}

/// Returns the floor's content: one line per row of the dashboard's frame,
/// with a letter wherever the frame has a non-blank cell.
fn floor_lines(app: &App, width: u16, height: u16) -> Vec<Line<'static>> {
    let mut terminal = test_terminal(width, height);
    draw_dashboard(&mut terminal, app);
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            // Every non-blank cell becomes an ASCII letter: the same text
            // density, without the cost of wide or multi-byte symbols.
            let text: String = (0..width)
                .map(|x| match buffer[(x, y)].symbol() {
                    " " => ' ',
                    _ => char::from(b'a' + (x % 26) as u8),
                })
                .collect();
            Line::raw(text.trim_end().to_owned())
        })
        .collect()
}

/// Draws the floor: one prepared line per row, through ratatui's own diff.
fn draw_floor(terminal: &mut Terminal<TestBackend>, lines: &[Line<'static>]) {
    terminal
        .draw(|frame| {
            let area = frame.area();
            for (y, line) in lines.iter().enumerate() {
                let row = Rect::new(area.x, area.y + y as u16, area.width, 1);
                frame.render_widget(black_box(line), row);
            }
        })
        .expect("draw the floor");
}

/// Times `batch` frames and appends each frame's time in microseconds.
fn time_frames(times: &mut Vec<f64>, batch: usize, mut frame: impl FnMut()) {
    for _ in 0..batch {
        let start = Instant::now();
        frame();
        times.push(micros(start.elapsed()));
    }
}

/// Runs the paired comparison at one size and returns its report section.
fn paired(apps: &[(usize, App)], width: u16, height: u16, rounds: usize, batch: usize) -> String {
    let floor = floor_lines(
        &apps.iter().find(|(n, _)| *n == 1_000).expect("built").1,
        width,
        height,
    );
    let mut floor_terminal = test_terminal(width, height);
    let mut terminals: Vec<Terminal<TestBackend>> =
        apps.iter().map(|_| test_terminal(width, height)).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); apps.len()];
    let mut floor_times = Vec::new();
    let mut round_medians: Vec<Vec<f64>> = vec![Vec::new(); apps.len() + 1];

    for round in 0..rounds {
        // Even rounds draw the floor first, odd rounds last, and the
        // service counts alternate direction as well.
        let mut order: Vec<Option<usize>> = (0..apps.len()).map(Some).collect();
        order.insert(0, None);
        if round % 2 == 1 {
            order.reverse();
        }
        for slot in order {
            let mut these = Vec::with_capacity(batch);
            match slot {
                None => time_frames(&mut these, batch, || {
                    draw_floor(&mut floor_terminal, &floor)
                }),
                Some(index) => {
                    let app = &apps[index].1;
                    let terminal = &mut terminals[index];
                    time_frames(&mut these, batch, || draw_dashboard(terminal, app));
                }
            }
            let median = Summary::of(&these).median;
            match slot {
                None => {
                    floor_times.extend(these);
                    round_medians[apps.len()].push(median);
                }
                Some(index) => {
                    times[index].extend(these);
                    round_medians[index].push(median);
                }
            }
        }
    }

    let floor_summary = Summary::of(&floor_times);
    let floor_spread = Summary::of(&round_medians[apps.len()]);
    let mut text = format!("\n## {width}x{height}\n\n");
    text.push_str(&format!(
        "floor (plain ratatui, same text): {}; round medians {}..{} µs\n",
        floor_summary.show("µs"),
        number(floor_spread.min),
        number(floor_spread.max)
    ));
    let mut medians = Vec::new();
    for (index, (count, _)) in apps.iter().enumerate() {
        let summary = Summary::of(&times[index]);
        let spread = Summary::of(&round_medians[index]);
        medians.push((*count, summary.median));
        text.push_str(&format!(
            "dashboard {count} services: {}; round medians {}..{} µs; {}x floor\n",
            summary.show("µs"),
            number(spread.min),
            number(spread.max),
            number(summary.median / floor_summary.median)
        ));
    }
    let median_of = |count: usize| {
        medians
            .iter()
            .find(|(n, _)| *n == count)
            .map_or(f64::NAN, |m| m.1)
    };
    for (large, small) in SCALING {
        text.push_str(&format!(
            "{large} services / {small} services: {}x\n",
            number(median_of(large) / median_of(small))
        ));
    }
    text
}

/// A writer that counts the bytes written and drops them. The count is
/// shared because the backend keeps its writer private.
#[derive(Default, Clone)]
struct Counter {
    bytes: Rc<Cell<usize>>,
    dump: Rc<std::cell::RefCell<Vec<u8>>>,
}

impl Write for Counter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.bytes.set(self.bytes.get() + buffer.len());
        self.dump.borrow_mut().extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn crossterm_terminal(
    width: u16,
    height: u16,
    counter: &Counter,
) -> Terminal<CrosstermBackend<Counter>> {
    let options = TerminalOptions {
        viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
    };
    Terminal::with_options(CrosstermBackend::new(counter.clone()), options)
        .expect("create a crossterm terminal")
}

fn compact_terminal(width: u16, height: u16, counter: &Counter) -> Terminal<Compact<Counter>> {
    let options = TerminalOptions {
        viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
    };
    Terminal::with_options(Compact::new(counter.clone()), options)
        .expect("create a terminal on the dashboard's backend")
}

/// Returns the bytes written by the next frame.
fn frame_bytes<B: ratatui::backend::Backend>(
    terminal: &mut Terminal<B>,
    counter: &Counter,
    app: &App,
) -> usize {
    let before = counter.bytes.get();
    draw_dashboard(terminal, app);
    counter.bytes.get() - before
}

/// Counts the bytes of a full repaint and of the frame after one service
/// changes state, for an unselected row and for the selected service, on
/// the dashboard's backend and on ratatui's crossterm backend.
fn bytes_report(dir: &std::path::Path) -> String {
    let mut text = String::from("\n## bytes written per frame\n\n");
    for backend in ["dashboard (Compact)", "ratatui crossterm"] {
        for (width, height) in SIZES {
            for (label, service) in [
                ("an unselected visible service", 5),
                ("the selected service", 0),
            ] {
                let folder = dir.join(format!("bytes-{width}-{service}"));
                let mut app = fixture::filled_app(&folder, 1_000);
                let counter = Counter::default();
                let mut compact = compact_terminal(width, height, &counter);
                let mut crossterm = crossterm_terminal(width, height, &counter);
                let mut frame = |app: &App| {
                    if backend.starts_with("dashboard") {
                        frame_bytes(&mut compact, &counter, app)
                    } else {
                        frame_bytes(&mut crossterm, &counter, app)
                    }
                };
                let full = frame(&app);
                let unchanged = frame(&app);
                // The sample is one second newer than the history, as the next
                // probe would be, and turns a healthy service down.
                let event = fixture::probe_event(service, HealthState::Down, HISTORY_LEN as u64);
                update(&mut app, Msg::Engine(event));
                let changed = frame(&app);
                if std::env::var_os("FRAME_DUMP").is_some() {
                    let dump = counter.dump.borrow();
                    let tail = &dump[dump.len() - changed..];
                    eprintln!(
                        "{backend} {width}x{height} {label}: {:?}",
                        String::from_utf8_lossy(tail)
                    );
                }
                text.push_str(&format!(
                    "{backend}, {width}x{height}, 1,000 services, {label} turns down: full repaint \
                     {full} B, unchanged frame {unchanged} B, changed frame {changed} B = 1/{} of a \
                     full repaint\n",
                    number(full as f64 / changed.max(1) as f64)
                ));
            }
        }
    }
    text
}

/// Draws the 80x24 dashboard of `count` services 200 times, for a profiler.
fn profile(count: usize) {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let app = fixture::filled_app(dir.path(), count);
    let mut terminal = test_terminal(80, 24);
    draw_many(&mut terminal, &app, 200);
}

/// Draws `frames` frames. A named function, so that callgrind can collect
/// only this part with `--toggle-collect=*draw_many*`.
#[inline(never)]
fn draw_many(terminal: &mut Terminal<TestBackend>, app: &App, frames: usize) {
    for _ in 0..frames {
        draw_dashboard(terminal, app);
    }
}
