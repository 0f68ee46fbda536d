//! Parts that `rollback`, `undo` and `recover` share: the confirmation prompt,
//! SIGINT as a cancel, and printing the run's events as they arrive.

use std::io::{BufRead, IsTerminal, Write};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Config, ServiceSpec};
use crate::engine::event::EngineEvent;
use crate::engine::rollback::journal::RunKind;
use crate::engine::rollback::{Cancel, Plan, RunOptions, RunOutcome, execute};

/// Asks whether to run the plan just printed. Returns the exit code to
/// stop with, or `None` to go on.
pub fn confirm(yes: bool, command: &str) -> std::io::Result<Option<i32>> {
    if yes {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("error: `rewind {command}` needs confirmation");
        eprintln!("hint: pass `--yes` to run without a terminal");
        return Ok(Some(super::EXIT_USAGE));
    }
    eprint!("run this plan? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(None)
    } else {
        eprintln!("cancelled; nothing changed");
        Ok(Some(super::EXIT_REFUSED))
    }
}

/// Refuses a command that changes services in read-only mode. Returns the
/// exit code to stop with, or `None` to go on.
pub fn refuse_read_only(config: &Config, read_only_flag: bool, command: &str) -> Option<i32> {
    if !(read_only_flag || config.read_only) {
        return None;
    }
    let source = if read_only_flag {
        "`--read-only`".to_owned()
    } else {
        format!("`read_only = true` in `{}`", config.path.display())
    };
    eprintln!(
        "error: read-only mode: `rewind {command}` changes services and is disabled by {source}"
    );
    Some(super::EXIT_REFUSED)
}

/// Turns the first SIGINT into a cancel of the run; later ones only print
/// that the cancel is under way.
pub fn cancel_on_interrupt() -> std::io::Result<(Cancel, JoinHandle<()>)> {
    let (handle, cancel) = Cancel::pair();
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let task = tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            if handle.is_cancelled() {
                eprintln!("still cancelling: the service is being returned to where it started");
            } else {
                handle.cancel();
                eprintln!(
                    "cancelling at the next safe point, then returning the service to where it started"
                );
            }
        }
    });
    Ok((cancel, task))
}

/// Starts printing events as they arrive; the task ends when the sender drops.
pub fn print_events(json: bool) -> (mpsc::UnboundedSender<EngineEvent>, JoinHandle<()>) {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            print_event(&event, json);
        }
    });
    (events_tx, printer)
}

fn print_event(event: &EngineEvent, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
        }
        return;
    }
    match event {
        EngineEvent::StepStarted {
            step, index, total, ..
        } if index < total => println!("[{}/{}] {} ...", index + 1, total, step.as_str()),
        EngineEvent::StepStarted { step, .. } => println!("[{}] ...", step.as_str()),
        EngineEvent::StepOutput { line, .. } => println!("      | {line}"),
        EngineEvent::StepFinished {
            step, ok, detail, ..
        } => {
            let mark = if *ok { "ok" } else { "FAILED" };
            println!("      {} {mark}: {detail}", step.as_str());
        }
        EngineEvent::RunFinished { service, outcome } => match outcome {
            RunOutcome::Succeeded => {
                println!("done: {service} is on the target version and healthy")
            }
            RunOutcome::Reverted { reason } => {
                println!("failed: {reason}");
                println!("reverted: {service} is back on its original version");
            }
            RunOutcome::RevertFailed {
                reason,
                revert_error,
            } => {
                println!("failed: {reason}");
                println!("REVERT FAILED: {revert_error}");
                println!("check {service} by hand: the message above says how far the revert got");
            }
            RunOutcome::Refused { reason } => {
                println!("refused: {reason}");
                println!("nothing was changed");
            }
        },
        _ => {}
    }
    let _ = std::io::stdout().flush();
}

/// Runs a confirmed plan, printing its events, with SIGINT as a cancel.
/// Returns the run's exit code.
pub async fn run_plan(
    config: &Config,
    spec: &ServiceSpec,
    plan: &Plan,
    kind: RunKind,
    reason: Option<String>,
    json: bool,
) -> color_eyre::Result<i32> {
    let (cancel, interrupts) = cancel_on_interrupt()?;
    let (events, printer) = print_events(json);
    let options = RunOptions {
        kind,
        reason,
        cancel,
    };
    let client = crate::engine::health::client();
    let outcome = execute(plan, spec, &config.state_dir, &client, &events, options).await;
    drop(events);
    printer.await?;
    interrupts.abort();
    Ok(outcome.exit_code())
}
