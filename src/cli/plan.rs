//! `rewind plan SERVICE --to REV`: prints what a rollback would do.

use crate::cli::args::DataArgs;
use crate::cli::args::PlanArgs;
use crate::cli::versions::format_time;
use crate::config::Config;
use crate::config::Strategy;
use crate::engine::rollback::{Plan, PlanRequest, RollbackError, plan_rollback};

/// Prints the plan as text or JSON. Exits 3 when no plan can be built.
pub fn run(config: &Config, args: &PlanArgs) -> color_eyre::Result<i32> {
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let plan = match plan_rollback(spec, &config.state_dir, &request(&args.to, &args.data)) {
        Ok(plan) => plan,
        Err(error) => return Ok(refused(&spec.name, &error)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(super::EXIT_OK)
}

/// Turns the command-line options into a plan request.
pub fn request(to: &Option<String>, data: &DataArgs) -> PlanRequest {
    PlanRequest {
        target: to.clone(),
        strategy: data.strategy.as_deref().and_then(Strategy::parse),
        backup: data.backup.clone(),
    }
}

/// Prints why no plan could be built and returns exit code 3.
pub fn refused(service: &str, error: &RollbackError) -> i32 {
    eprintln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = error.hint(service) {
        eprintln!("hint: {hint}");
    }
    super::EXIT_REFUSED
}

/// Renders a plan as the text `plan` and `rollback` print.
pub fn render(plan: &Plan) -> String {
    let mut text = format!(
        "plan: {} {} -> {} ({} -> {})\n",
        plan.service, plan.from.label, plan.to.label, plan.from.short, plan.to.short
    );
    let mut list = |title: &str, entries: &[crate::engine::versions::HistoryEntry]| {
        if entries.is_empty() {
            return;
        }
        text.push_str(&format!("{title} ({}):\n", entries.len()));
        for entry in entries {
            let tags = if entry.tags.is_empty() {
                String::new()
            } else {
                format!(" ({})", entry.tags.join(", "))
            };
            text.push_str(&format!(
                "  {} {}  {}{tags}\n",
                entry.short,
                format_time(entry.time),
                entry.subject
            ));
        }
    };
    list("commits undone", &plan.undone);
    list("commits applied", &plan.applied);
    if let Some(backup) = &plan.restore {
        text.push_str(&format!(
            "data: restores backup {} taken at {} ({}); data written after it is discarded\n",
            backup.id, backup.created_at, backup.label
        ));
    }
    if !plan.dirty.is_empty() {
        text.push_str(&format!(
            "warning: uncommitted changes will stop the run before any change: {}\n",
            plan.dirty.join(", ")
        ));
    }
    text.push_str("steps:\n");
    for (number, step) in plan.steps.iter().enumerate() {
        text.push_str(&format!("  {}. {}\n", number + 1, step.description));
    }
    text.push_str("  on failure: check out the original version again and restart\n");
    text
}
