//! The run pane: the running or last rollback, with a progress gauge, its
//! steps and the output of the restart command as it streams in.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph};

use crate::dashboard::app::{App, RunView, StepStatus};
use crate::dashboard::theme;
use crate::engine::rollback::RunOutcome;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let Some(run) = &app.run else {
        let block = super::block("Run".into(), focused);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let hint = Paragraph::new(vec![
            Line::styled("No rollback has run yet.", theme::muted()),
            Line::styled("Select a service and press r.", theme::muted()),
        ]);
        frame.render_widget(hint, inner);
        return;
    };
    let block = super::block(title(run), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // Short panes keep three rows for output and show the steps around the
    // newest one that started.
    const LOG_ROWS: usize = 3;
    let room = (inner.height as usize).saturating_sub(1 + LOG_ROWS).max(1);
    let shown = run.steps.len().min(room);
    let active = run
        .steps
        .iter()
        .rposition(|step| step.status != StepStatus::Pending)
        .unwrap_or(0);
    let first = (active + 1)
        .saturating_sub(shown)
        .min(run.steps.len() - shown);
    let steps_height = shown as u16;
    let [gauge_area, steps_area, log_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(steps_height),
        Constraint::Min(0),
    ])
    .areas(inner);

    let elapsed = run.finished.unwrap_or_else(std::time::Instant::now) - run.started;
    let (label, style) = match &run.outcome {
        None => (
            format!("running {:.1}s", elapsed.as_secs_f64()),
            theme::gauge(),
        ),
        Some(RunOutcome::Succeeded) => (
            format!("done in {:.1}s", elapsed.as_secs_f64()),
            theme::success(),
        ),
        Some(RunOutcome::Refused { .. }) => ("refused: nothing changed".into(), theme::error()),
        Some(RunOutcome::Reverted { .. }) => ("failed: reverted".into(), theme::error()),
        Some(RunOutcome::RevertFailed { .. }) => ("REVERT FAILED".into(), theme::error()),
    };
    let gauge = Gauge::default()
        .gauge_style(style)
        .ratio(run.progress().clamp(0.0, 1.0))
        .label(label);
    frame.render_widget(gauge, gauge_area);

    let width = steps_area.width as usize;
    let steps: Vec<Line> = run.steps[first..first + shown]
        .iter()
        .map(|step| {
            let text = if step.detail.is_empty() {
                step.description.clone()
            } else {
                format!("{}: {}", step.step.as_str(), step.detail)
            };
            Line::from(vec![
                Span::styled(
                    format!("{} ", theme::step_symbol(step.status)),
                    theme::step(step.status),
                ),
                Span::raw(super::truncate(&text, width.saturating_sub(2))),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(steps), steps_area);

    // Output lines wrapped to the width; the newest that fit, unless the
    // pane is scrolled up.
    let width = (log_area.width as usize).max(1);
    let wrapped: Vec<String> = run.log.iter().flat_map(|line| wrap(line, width)).collect();
    let rows = log_area.height as usize;
    let end = wrapped.len().saturating_sub(app.run_scroll);
    let start = end.saturating_sub(rows);
    let log: Vec<Line> = wrapped[start..end]
        .iter()
        .map(|line| Line::styled(line.clone(), theme::muted()))
        .collect();
    frame.render_widget(Paragraph::new(log), log_area);
}

/// Splits `line` into pieces of at most `width` characters.
/// Returns the pane's title for `run`: its kind and service, and the
/// versions it goes between when it has them (a backup has none).
fn title(run: &RunView) -> String {
    if run.from.is_empty() && run.to.is_empty() {
        return format!("Run · {} {}", run.kind, run.service);
    }
    format!(
        "Run · {} {} {} → {}",
        run.kind, run.service, run.from, run.to
    )
}

fn wrap(line: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_versions_only_when_known() {
        let mut run = RunView::backup("inventory");
        assert_eq!(title(&run), "Run · backup inventory");

        run.from = "v1.2.0".to_owned();
        run.to = "v1.1.0".to_owned();
        assert_eq!(title(&run), "Run · backup inventory v1.2.0 → v1.1.0");
    }
}
