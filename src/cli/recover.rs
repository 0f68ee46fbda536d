//! `rewind recover SERVICE --resume|--abort`: finishes or reverses a run
//! that stopped without an outcome, after showing what it will do.

use crate::cli::args::RecoverArgs;
use crate::config::Config;
use crate::engine::health;
use crate::engine::rollback::journal::RecoveryMode;
use crate::engine::rollback::{RecoverError, RecoveryPlan, plan_recovery, recover};

use super::execution;

/// Plans the recovery, confirms it and runs it. Exits 3 when there is
/// nothing to recover or the tree contains changes rewind did not make.
pub async fn run(config: &Config, args: &RecoverArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "recover") {
        return Ok(code);
    }
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let mode = if args.abort {
        RecoveryMode::Abort
    } else {
        RecoveryMode::Resume
    };
    let recovery = match plan_recovery(spec, &config.state_dir, mode) {
        Ok(recovery) => recovery,
        Err(error) => return Ok(refused(&error)),
    };
    if !args.json {
        print!("{}", render(&recovery));
    }
    if let Some(code) = execution::confirm(args.yes, "recover")? {
        return Ok(code);
    }

    let (cancel, interrupts) = execution::cancel_on_interrupt()?;
    let (events, printer) = execution::print_events(args.json);
    let client = health::client();
    let result = recover(&recovery, spec, &config.state_dir, &client, &events, cancel).await;
    drop(events);
    printer.await?;
    interrupts.abort();
    match result {
        Ok(outcome) => Ok(outcome.exit_code()),
        Err(error) => Ok(refused(&error)),
    }
}

fn refused(error: &RecoverError) -> i32 {
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    super::EXIT_REFUSED
}

/// Renders a recovery plan as text.
pub fn render(recovery: &RecoveryPlan) -> String {
    let plan = &recovery.plan;
    let mode = match recovery.mode {
        RecoveryMode::Resume => format!("resume: finish the move to {}", plan.to.label),
        RecoveryMode::Abort => format!("abort: return to {}", plan.from.label),
    };
    let mut text = format!(
        "recover {}: {mode}\n{}\n",
        recovery.service, recovery.summary
    );
    text.push_str(&format!(
        "now at {}{}\n",
        &recovery.head[..7.min(recovery.head.len())],
        if recovery.dirty.is_empty() {
            String::new()
        } else {
            format!(", uncommitted: {}", recovery.dirty.join(", "))
        }
    ));
    text.push_str("steps:\n");
    for (number, step) in recovery.steps.iter().enumerate() {
        text.push_str(&format!("  {}. {}\n", number + 1, step.description));
    }
    text
}
