//! Runs external programs from an argv array, never through a shell, with a
//! timeout. Output lines stream to a callback as they arrive, and the whole
//! process group is killed on timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// How long output is still read after the program exits. A program that
/// leaves a background child holding its stdout open would otherwise keep
/// the caller waiting until that child exits.
const OUTPUT_GRACE: Duration = Duration::from_millis(300);

/// Errors of running an external program.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{program}` in `{}`", cwd.display())]
    Spawn {
        program: String,
        cwd: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` timed out after {}", humantime::format_duration(*timeout))]
    TimedOut { program: String, timeout: Duration },
    #[error("`{program}` failed with {status}")]
    Failed { program: String, status: ExitStatus },
    #[error("cannot wait for `{program}`")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            ProcessError::Spawn {
                source, program, ..
            } if source.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "`{program}` was not found: use an absolute path or add its folder to PATH"
            )),
            ProcessError::TimedOut { .. } => {
                Some("raise `timeout` in the `restart` table if the command needs longer".into())
            }
            _ => None,
        }
    }
}

/// Runs `argv` in `cwd` and calls `on_line` with each line it prints on
/// stdout or stderr. Succeeds only when the program exits with status 0
/// within `timeout`; on timeout its process group is killed.
pub async fn run(
    argv: &[String],
    cwd: &Path,
    timeout: Duration,
    on_line: impl FnMut(String),
) -> Result<(), ProcessError> {
    run_with_env(argv, &BTreeMap::new(), cwd, timeout, on_line).await
}

/// Runs `argv` like [`run`], with the variables of `env` added to the
/// environment it inherits.
pub async fn run_with_env(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    timeout: Duration,
    mut on_line: impl FnMut(String),
) -> Result<(), ProcessError> {
    let program = argv.first().cloned().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(argv.get(1..).unwrap_or_default())
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: program.clone(),
            cwd: cwd.to_path_buf(),
            source,
        })?;
    let group = child.id();

    // Both pipes feed one channel so lines keep their arrival order.
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        forward_lines(stdout, lines_tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward_lines(stderr, lines_tx.clone());
    }
    drop(lines_tx);

    let deadline = tokio::time::Instant::now() + timeout;
    let status = loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => on_line(line),
                None => break child.wait().await,
            },
            status = child.wait() => break status,
            () = tokio::time::sleep_until(deadline) => {
                kill_group(group);
                let _ = child.wait().await;
                return Err(ProcessError::TimedOut { program, timeout });
            }
        }
    };
    let status = status.map_err(|source| ProcessError::Wait {
        program: program.clone(),
        source,
    })?;

    let grace = tokio::time::sleep(OUTPUT_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => on_line(line),
                None => break,
            },
            () = &mut grace => break,
        }
    }

    if status.success() {
        Ok(())
    } else {
        Err(ProcessError::Failed { program, status })
    }
}

/// Maximum length of an output line passed on. The rest of a longer line is dropped
/// and replaced by a mark, so a runaway line cannot flood the run pane.
const MAX_LINE: usize = 4096;

/// Reads `stream` line by line and sends each line, with invalid UTF-8
/// replaced and overlong lines cut, until the stream ends.
fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    tx: mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let (cut, ended) = match read_line_capped(&mut reader, &mut buffer).await {
                Ok(result) => result,
                Err(_) => break,
            };
            if buffer.is_empty() && ended {
                break;
            }
            let mut line = String::from_utf8_lossy(&buffer).into_owned();
            if cut {
                line.push_str(" … (line cut at 4096 bytes)");
            }
            if tx.send(line).is_err() || ended {
                break;
            }
        }
    });
}

/// Reads one line into `buffer`, keeping at most [`MAX_LINE`] bytes of it.
/// Returns whether the line was cut and whether the stream ended.
async fn read_line_capped(
    reader: &mut (impl AsyncBufReadExt + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<(bool, bool)> {
    let mut cut = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok((cut, true));
        }
        let (take, found) = match chunk.iter().position(|&byte| byte == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let content = if found {
            &chunk[..take - 1]
        } else {
            &chunk[..take]
        };
        let room = MAX_LINE.saturating_sub(buffer.len());
        if content.len() > room {
            cut = true;
        }
        buffer.extend_from_slice(&content[..content.len().min(room)]);
        reader.consume(take);
        if found {
            if buffer.last() == Some(&b'\r') {
                buffer.pop();
            }
            return Ok((cut, false));
        }
    }
}

fn kill_group(group: Option<u32>) {
    let Some(pid) = group.and_then(|id| rustix::process::Pid::from_raw(id as i32)) else {
        return;
    };
    if let Err(error) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::warn!(%error, pid = pid.as_raw_nonzero().get(), "cannot kill process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    #[tokio::test]
    async fn output_lines_stream_in_order() {
        let mut lines = Vec::new();
        let script = argv(&["sh", "-c", "echo one; echo two >&2; sleep 0.1; echo three"]);
        run(&script, Path::new("/"), Duration::from_secs(5), |line| {
            lines.push(line)
        })
        .await
        .unwrap();

        assert_eq!(lines, ["one", "two", "three"]);
    }

    #[tokio::test]
    async fn env_reaches_the_program() {
        let env = BTreeMap::from([("REWIND_TEST_VALUE".to_owned(), "42".to_owned())]);
        let script = argv(&["sh", "-c", "echo value=$REWIND_TEST_VALUE"]);
        let mut lines = Vec::new();
        run_with_env(
            &script,
            &env,
            Path::new("/"),
            Duration::from_secs(5),
            |line| lines.push(line),
        )
        .await
        .unwrap();

        assert_eq!(lines, ["value=42"]);
    }

    #[tokio::test]
    async fn binary_output_is_replaced_not_dropped() {
        let script = argv(&["sh", "-c", "printf 'ok\\377\\376bytes\\nnext\\n'"]);
        let mut lines = Vec::new();
        run(&script, Path::new("/"), Duration::from_secs(5), |line| {
            lines.push(line)
        })
        .await
        .unwrap();

        assert_eq!(lines, ["ok\u{fffd}\u{fffd}bytes", "next"]);
    }

    #[tokio::test]
    async fn huge_line_is_cut() {
        // 10 MB on one line, then a short line that must still arrive.
        let script = argv(&[
            "sh",
            "-c",
            "head -c 10000000 /dev/zero | tr '\\0' x; echo; echo after",
        ]);
        let mut lines = Vec::new();
        run(&script, Path::new("/"), Duration::from_secs(20), |line| {
            lines.push(line)
        })
        .await
        .unwrap();

        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 4096 + " … (line cut at 4096 bytes)".len());
        assert!(lines[0].starts_with("xxxx"));
        assert_eq!(lines[1], "after");
    }

    #[tokio::test]
    async fn nonzero_exit_is_failure() {
        let error = run(
            &argv(&["false"]),
            Path::new("/"),
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();

        assert!(matches!(error, ProcessError::Failed { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("`false` failed with exit status: 1")
        );
    }

    #[tokio::test]
    async fn missing_program_names_it() {
        let error = run(
            &argv(&["/no/such/tool"]),
            Path::new("/"),
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();

        assert!(matches!(error, ProcessError::Spawn { .. }), "{error}");
        assert!(
            error
                .hint()
                .unwrap()
                .contains("`/no/such/tool` was not found")
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let marker = tempfile::tempdir().unwrap();
        let file = marker.path().join("survived");
        // The grandchild would create the file if the group survived the kill.
        let script = format!("(sleep 1; touch {}) & sleep 10", file.display());
        let error = run(
            &argv(&["sh", "-c", &script]),
            Path::new("/"),
            Duration::from_millis(200),
            |_| {},
        )
        .await
        .unwrap_err();
        tokio::time::sleep(Duration::from_millis(1500)).await;

        assert!(matches!(error, ProcessError::TimedOut { .. }), "{error}");
        assert!(
            !file.exists(),
            "a process of the group outlived the timeout"
        );
    }

    #[tokio::test]
    async fn background_child_does_not_hold_the_caller() {
        // The child keeps stdout open for 5 s after its parent exits.
        let script = argv(&["sh", "-c", "sleep 5 & echo started"]);
        let mut lines = Vec::new();
        let started = std::time::Instant::now();
        run(&script, Path::new("/"), Duration::from_secs(10), |line| {
            lines.push(line)
        })
        .await
        .unwrap();

        assert_eq!(lines, ["started"]);
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
