//! `rewind undo SERVICE`: rolls the last successful rollback back, as a
//! plan like any other.

use crate::cli::args::UndoArgs;
use crate::config::Config;
use crate::engine::rollback::journal::RunKind;
use crate::engine::rollback::plan_undo;

use super::execution;

/// Plans the undo, confirms it and runs it. Exits 3 when there is nothing
/// to undo.
pub async fn run(config: &Config, args: &UndoArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "undo") {
        return Ok(code);
    }
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let plan = match plan_undo(spec, &config.state_dir) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint(&spec.name) {
                eprintln!("hint: {hint}");
            }
            return Ok(super::EXIT_REFUSED);
        }
    };
    if !args.json {
        print!("{}", super::plan::render(&plan));
    }
    if let Some(code) = execution::confirm(args.yes, "undo")? {
        return Ok(code);
    }

    let kind = RunKind::Undo;
    execution::run_plan(config, spec, &plan, kind, args.reason.clone(), args.json).await
}
