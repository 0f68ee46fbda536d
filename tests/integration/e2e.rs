//! The real binary in a pseudo-terminal: `rewind demo` opens the dashboard,
//! the keys select the broken service and roll it back, and the screen, read
//! through a terminal emulator, shows it healthy while git HEAD has moved.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// Maximum wait for one screen state. Generous, because the demo compiles
/// nothing but starts four processes and each takes about a second.
const WAIT: Duration = Duration::from_secs(60);

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `check` holds for the screen text, or panics with the screen.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if check(&text) {
                return text;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {what}; screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alternate(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }
}

fn row_of<'a>(text: &'a str, service: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(&format!(" {service} ")) && line.contains("ms"))
        .unwrap_or("")
}

fn head_commit(repo: &Path) -> String {
    let repo = git2::Repository::open(repo).unwrap();
    repo.head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string()
}

fn tag_commit(repo: &Path, tag: &str) -> String {
    let repo = git2::Repository::open(repo).unwrap();
    let object = repo.revparse_single(tag).unwrap();
    object.peel_to_commit().unwrap().id().to_string()
}

#[test]
fn dashboard_rolls_back_broken_service() {
    let scratch = tempfile::tempdir().unwrap();
    let demo = scratch.path().join("demo");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_rewind"));
    command.args(["demo", "--dir"]);
    command.arg(&demo);
    command.cwd(scratch.path());
    command.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(command).unwrap();
    drop(pair.slave);

    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        std::num::NonZero::new(24).unwrap(),
        std::num::NonZero::new(80).unwrap(),
        0,
    )));
    let mut reader = pair.master.try_clone_reader().unwrap();
    let feed = Arc::clone(&parser);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(read) = reader.read(&mut buffer) {
            if read == 0 {
                break;
            }
            feed.lock().unwrap().process(&buffer[..read]);
        }
    });
    let mut keys = pair.master.take_writer().unwrap();
    let mut press = |text: &str| {
        keys.write_all(text.as_bytes()).unwrap();
        keys.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    };
    let screen = Screen { parser };

    // The newest payments release fails its health check.
    // At 80 columns the table shows the state as a symbol: ▲ is unhealthy.
    screen.wait_for("payments unhealthy", |text| {
        row_of(text, "payments").contains("▲ payments")
    });
    let repo = demo.join("repos/payments");
    assert_eq!(head_commit(&repo), tag_commit(&repo, "v2.3.0"));

    // Select it with the filter, press r, read the plan, confirm.
    press("/pay");
    press("\r");
    press("r");
    let dialog = screen.wait_for("the plan", |text| text.contains("Roll back payments?"));
    assert!(dialog.contains("v2.3.0"), "{dialog}");
    assert!(dialog.contains("v2.2.0"), "{dialog}");
    press("y");

    let done = screen.wait_for("the run to finish", |text| {
        text.contains("done: payments runs v2.2.0")
            && row_of(text, "payments").contains("● payments")
    });
    assert!(row_of(&done, "payments").contains("● payments"), "{done}");
    assert!(done.contains("Health · payments"), "{done}");
    assert!(done.contains("● healthy"), "{done}");
    assert!(done.contains("✔ checkout"), "{done}");
    assert_eq!(head_commit(&repo), tag_commit(&repo, "v2.2.0"));

    // Quitting leaves the alternate screen and stops the demo's services.
    press("q");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < WAIT, "rewind did not exit after q");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!screen.alternate(), "terminal left in the alternate screen");
    let pid_files: Vec<_> = std::fs::read_dir(demo.join("run"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pid"))
        .map(|entry| entry.file_name())
        .collect();
    assert!(
        pid_files.is_empty(),
        "services still recorded: {pid_files:?}"
    );
}
