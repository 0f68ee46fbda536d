//! `rewind rollback SERVICE --to REV --yes`: runs a rollback and prints
//! each step and the restart command's output as it happens.

use std::io::{BufRead, IsTerminal, Write};

use tokio::sync::mpsc;

use crate::cli::args::RollbackArgs;
use crate::config::Config;
use crate::engine::event::EngineEvent;
use crate::engine::health;
use crate::engine::rollback::{RunOutcome, build_plan, execute};

/// Runs the rollback and returns its exit code: 0 done, 1 failed and
/// reverted, 3 refused before any change.
pub async fn run(config: &Config, args: &RollbackArgs) -> color_eyre::Result<i32> {
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let plan = match build_plan(spec, &args.to) {
        Ok(plan) => plan,
        Err(error) => return Ok(super::plan::refused(&spec.name, &error)),
    };
    if !args.json {
        print!("{}", super::plan::render(&plan));
    }

    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: `rewind rollback` needs confirmation");
            eprintln!("hint: pass `--yes` to run without a terminal");
            return Ok(super::EXIT_USAGE);
        }
        eprint!("run this plan? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("cancelled; nothing changed");
            return Ok(super::EXIT_REFUSED);
        }
    }

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let json = args.json;
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            print_event(&event, json);
        }
    });
    let client = health::client();
    let outcome = execute(
        &plan,
        spec,
        &config.state_dir,
        &client,
        &events_tx,
        Default::default(),
    )
    .await;
    drop(events_tx);
    printer.await?;
    Ok(outcome.exit_code())
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
            RunOutcome::Succeeded => println!("done: {service} rolled back and healthy"),
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
                println!("check {service} by hand: it may be on the target version");
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
