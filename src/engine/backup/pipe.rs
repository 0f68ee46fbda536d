//! Runs a dump or restore tool with its stdin fed from a reader and its
//! stdout written to a writer, both on blocking threads, and its stderr
//! lines passed to a callback. Like `engine::process::run`, it takes an
//! argv array, never a shell string, and kills the whole process group on
//! timeout. It also kills the group as soon as the input cannot be read or
//! the output cannot be written, so a tool never reads a cut-off input as a
//! complete one.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::engine::process::ProcessError;

/// How long stderr is still read after the program and its output ended.
const STDERR_GRACE: Duration = Duration::from_millis(300);

/// How long the copying threads may take to end once the process group
/// was killed.
const KILL_GRACE: Duration = Duration::from_secs(5);

const BUFFER_SIZE: usize = 64 * 1024;

/// One run of an external program.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set (`Some`) or removed (`None`) on top of the environment
    /// rewind runs with.
    pub env: Vec<(String, Option<OsString>)>,
    pub timeout: Duration,
}

/// An error of [`run_piped`].
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("cannot write the output of `{program}`")]
    Output {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the input for `{program}`")]
    Input {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// Runs `invocation` with `stdin` as its input (closed when `None`) and
/// `stdout` receiving its output, and calls `on_stderr_line` with each
/// line it prints on stderr. Returns `stdout` when the program exited 0
/// within the timeout and all of its output was written.
pub async fn run_piped<W>(
    invocation: &Invocation,
    stdin: Option<Box<dyn Read + Send>>,
    stdout: W,
    mut on_stderr_line: impl FnMut(String),
) -> Result<W, PipeError>
where
    W: Write + Send + 'static,
{
    let program = invocation.argv.first().cloned().unwrap_or_default();
    let mut command = Command::new(&program);
    command
        .args(invocation.argv.get(1..).unwrap_or_default())
        .current_dir(&invocation.cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (key, value) in &invocation.env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        cwd: invocation.cwd.clone(),
        source,
    })?;
    let group = child.id();

    let stdin_task = match (stdin, child.stdin.take()) {
        (Some(source), Some(pipe)) => {
            let pipe = File::from(pipe.into_owned_fd().map_err(|source| PipeError::Input {
                program: program.clone(),
                source,
            })?);
            Some(tokio::task::spawn_blocking(move || {
                feed(source, pipe, group)
            }))
        }
        _ => None,
    };
    let stdout_pipe = child.stdout.take().expect("stdout is piped");
    let stdout_pipe =
        File::from(
            stdout_pipe
                .into_owned_fd()
                .map_err(|source| PipeError::Output {
                    program: program.clone(),
                    source,
                })?,
        );
    let mut stdout_task = tokio::task::spawn_blocking(move || drain(stdout_pipe, stdout, group));
    let (lines_tx, mut lines) = mpsc::unbounded_channel();
    if let Some(stderr) = child.stderr.take() {
        forward_lines(stderr, lines_tx);
    }

    let deadline = Instant::now() + invocation.timeout;
    let mut status = None;
    let mut output = None;
    while status.is_none() || output.is_none() {
        tokio::select! {
            Some(line) = lines.recv() => on_stderr_line(line),
            exited = child.wait(), if status.is_none() => status = Some(exited),
            drained = &mut stdout_task, if output.is_none() => {
                output = Some(drained.unwrap_or_else(|error| Err(io::Error::other(error))));
            }
            () = tokio::time::sleep_until(deadline) => {
                kill_group(group);
                let _ = child.wait().await;
                // Waits for the copying threads, so the caller's writer is
                // closed when this returns.
                if output.is_none() {
                    let _ = timeout_at(Instant::now() + KILL_GRACE, &mut stdout_task).await;
                }
                if let Some(task) = stdin_task {
                    let _ = timeout_at(Instant::now() + KILL_GRACE, task).await;
                }
                return Err(ProcessError::TimedOut {
                    program,
                    timeout: invocation.timeout,
                }
                .into());
            }
        }
    }
    let grace = tokio::time::sleep(STDERR_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => on_stderr_line(line),
                None => break,
            },
            () = &mut grace => break,
        }
    }

    let input = match stdin_task {
        Some(task) => task
            .await
            .unwrap_or_else(|error| Err(io::Error::other(error))),
        None => Ok(()),
    };
    let stdout = match output.expect("the loop ends once output is set") {
        Ok(stdout) => stdout,
        Err(source) => return Err(PipeError::Output { program, source }),
    };
    if let Err(source) = input {
        return Err(PipeError::Input { program, source });
    }
    let status = status
        .expect("the loop ends once status is set")
        .map_err(|source| ProcessError::Wait {
            program: program.clone(),
            source,
        })?;
    if status.success() {
        Ok(stdout)
    } else {
        Err(ProcessError::Failed { program, status }.into())
    }
}

/// Copies `source` into the program's stdin. A failed read kills the
/// process group before the pipe closes, so the program never reads a
/// cut-off input as a complete one. A failed write means the program
/// stopped reading, which its exit status reports.
fn feed(mut source: Box<dyn Read + Send>, mut pipe: File, group: Option<u32>) -> io::Result<()> {
    let mut buffer = vec![0; BUFFER_SIZE];
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                kill_group(group);
                return Err(error);
            }
        };
        if pipe.write_all(&buffer[..read]).is_err() {
            return Ok(());
        }
    }
}

/// Copies the program's stdout into `sink`. A failed write kills the
/// process group at once.
fn drain<W: Write>(mut pipe: File, mut sink: W, group: Option<u32>) -> io::Result<W> {
    let mut buffer = vec![0; BUFFER_SIZE];
    let result = loop {
        let read = match pipe.read(&mut buffer) {
            Ok(0) => break sink.flush(),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(error),
        };
        if let Err(error) = sink.write_all(&buffer[..read]) {
            break Err(error);
        }
    };
    match result {
        Ok(()) => Ok(sink),
        Err(error) => {
            kill_group(group);
            Err(error)
        }
    }
}

/// Sends each line of `stream` to `tx`, replacing invalid UTF-8, so a tool
/// that prints bytes in another encoding still has its stderr drained.
fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    tx: mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
            }
        }
    });
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

    fn invocation(script: &str, timeout: Duration) -> Invocation {
        Invocation {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: PathBuf::from("/"),
            env: vec![("REWIND_PIPE_TEST".into(), Some("set".into()))],
            timeout,
        }
    }

    #[tokio::test]
    async fn input_passes_through_to_output() {
        let input: Box<dyn Read + Send> = Box::new(io::Cursor::new(vec![7u8; 300_000]));
        let mut lines = Vec::new();
        let output = run_piped(
            &invocation(
                "cat; echo \"$REWIND_PIPE_TEST\" >&2",
                Duration::from_secs(10),
            ),
            Some(input),
            Vec::new(),
            |line| lines.push(line),
        )
        .await
        .unwrap();

        assert_eq!(output, vec![7u8; 300_000]);
        assert_eq!(lines, ["set"]);
    }

    #[tokio::test]
    async fn failing_writer_kills_the_program() {
        #[derive(Debug)]
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let started = std::time::Instant::now();
        let error = run_piped(
            &invocation("echo data; sleep 30", Duration::from_secs(60)),
            None,
            Full,
            |_| {},
        )
        .await
        .unwrap_err();

        assert!(matches!(error, PipeError::Output { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn failing_reader_kills_before_eof() {
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::Error::other("damaged input"))
                } else {
                    buf[..4].copy_from_slice(b"abc\n");
                    Ok(4)
                }
            }
        }
        let marker = tempfile::tempdir().unwrap();
        let file = marker.path().join("saw-eof");
        // `cat` ends at EOF, which would create the file.
        let script = format!("cat >/dev/null && touch {}", file.display());
        let error = run_piped(
            &invocation(&script, Duration::from_secs(10)),
            Some(Box::new(Broken(false))),
            Vec::new(),
            |_| {},
        )
        .await
        .unwrap_err();
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert!(matches!(error, PipeError::Input { .. }), "{error}");
        assert!(!file.exists(), "the program saw a clean end of input");
    }

    #[tokio::test]
    async fn timeout_kills_the_group_and_returns() {
        let error = run_piped(
            &invocation("sleep 30 & sleep 30", Duration::from_millis(300)),
            None,
            Vec::new(),
            |_| {},
        )
        .await
        .unwrap_err();

        assert!(
            matches!(error, PipeError::Process(ProcessError::TimedOut { .. })),
            "{error}"
        );
    }

    #[tokio::test]
    async fn nonzero_exit_is_failure_with_stderr() {
        let mut lines = Vec::new();
        let error = run_piped(
            &invocation(
                "printf 'bad \\377 byte\\n' >&2; exit 3",
                Duration::from_secs(10),
            ),
            None,
            Vec::new(),
            |line| lines.push(line),
        )
        .await
        .unwrap_err();

        assert!(
            matches!(error, PipeError::Process(ProcessError::Failed { .. })),
            "{error}"
        );
        assert_eq!(lines, ["bad \u{fffd} byte"]);
    }
}
