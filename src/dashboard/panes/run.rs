//! The run pane: the running or last rollback, with a progress gauge, its
//! steps and the output of the restart command as it streams in.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph};

use crate::dashboard::app::{App, Pane};
use crate::dashboard::theme;
use crate::engine::rollback::RunOutcome;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let Some(run) = &app.run else {
        let block = super::block(Pane::Run, "Run".into(), focused);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let hint = Paragraph::new(vec![
            Line::styled("No rollback has run yet.", theme::muted()),
            Line::styled("Select a service and press r.", theme::muted()),
        ]);
        frame.render_widget(hint, inner);
        return;
    };
    let title = format!("Run · {} {} → {}", run.service, run.from, run.to);
    let block = super::block(Pane::Run, title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let steps_height = run.steps.len() as u16;
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
    let steps: Vec<Line> = run
        .steps
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

    // The newest output lines that fit, oldest first.
    let rows = log_area.height as usize;
    let skip = run.log.len().saturating_sub(rows);
    let log: Vec<Line> = run
        .log
        .iter()
        .skip(skip)
        .map(|line| {
            Line::styled(
                super::truncate(line, log_area.width as usize),
                theme::muted(),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(log), log_area);
}
