//! `rewind rollback SERVICE --to REV --yes`: runs a rollback and prints
//! each step and the restart command's output as it happens.

use crate::cli::args::RollbackArgs;
use crate::config::Config;
use crate::engine::rollback::journal::RunKind;
use crate::engine::rollback::plan_rollback;

use super::execution;

/// Runs the rollback and returns its exit code: 0 done, 1 failed and
/// reverted, 3 refused before any change.
pub async fn run(config: &Config, args: &RollbackArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "rollback") {
        return Ok(code);
    }
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let request = super::plan::request(&args.to, &args.data);
    let plan = match plan_rollback(spec, &config.state_dir, &request) {
        Ok(plan) => plan,
        Err(error) => return Ok(super::plan::refused(&spec.name, &error)),
    };
    if !args.json {
        print!("{}", super::plan::render(&plan));
    }
    if let Some(code) = execution::confirm(args.yes, "rollback")? {
        return Ok(code);
    }

    let kind = RunKind::Rollback;
    execution::run_plan(config, spec, &plan, kind, args.reason.clone(), args.json).await
}
