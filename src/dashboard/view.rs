//! `view`: draws the whole dashboard from the state. It reads the state and
//! changes nothing: header, the unfinished-run banner, the panes, the
//! footer, then any dialog.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::app::{App, Mode, Pane};
use super::keymap;
use super::panes;
use super::theme;
use crate::engine::health::HealthState;
use crate::engine::rollback::journal::{RecoveryMode, RunKind};
use crate::engine::rollback::{Plan, RecoveryPlan};

/// Terminals narrower than this stack the panes in one column.
const TWO_COLUMNS_MIN_WIDTH: u16 = 70;

/// Draws the state into the frame.
pub fn view(app: &App, frame: &mut Frame) {
    let banner_height = u16::from(!app.unfinished.is_empty());
    let [header, banner, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    render_header(frame, header, app);
    render_banner(frame, banner, app);
    render_panes(frame, body, app);
    render_footer(frame, footer, app);

    match &app.mode {
        Mode::Confirm(plan) | Mode::Reason(plan) => render_confirm(frame, app, plan),
        Mode::ConfirmRecovery(recovery) => render_recovery(frame, recovery),
        Mode::Planning { service, .. } => render_notice_box(
            frame,
            "Planning",
            &format!("building the plan for `{service}`…"),
        ),
        Mode::ConfirmQuit => {
            let service = app.running().map_or("", |run| run.service.as_str());
            render_notice_box(
                frame,
                "Quit?",
                &format!(
                    "A rollback of `{service}` is running. Quitting stops it at its current \
                     step without a revert; `rewind recover {service}` resumes or aborts it \
                     later. Quit anyway?"
                ),
            );
        }
        Mode::Help => render_help(frame, app.read_only),
        Mode::Normal | Mode::Filter => {}
    }
}

fn render_panes(frame: &mut Frame, body: Rect, app: &App) {
    let (services, versions, health, run) = if body.width >= TWO_COLUMNS_MIN_WIDTH {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        let [services, versions] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
        let [health, run] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(bottom);
        (services, versions, health, run)
    } else {
        let [services, versions, health, run] = Layout::vertical([
            Constraint::Percentage(35),
            Constraint::Percentage(20),
            Constraint::Percentage(15),
            Constraint::Percentage(30),
        ])
        .areas(body);
        (services, versions, health, run)
    };
    panes::services::render(frame, services, app, app.focus == Pane::Services);
    // Versions and backups share an area; the backups show while they have focus.
    if app.focus == Pane::Backups {
        panes::backups::render(frame, versions, app, true);
    } else {
        panes::versions::render(frame, versions, app, app.focus == Pane::Versions);
    }
    panes::health::render(frame, health, app, app.focus == Pane::Health);
    // Run and history share an area; the history shows while it has focus.
    if app.focus == Pane::History {
        panes::history::render(frame, run, app, true);
    } else {
        panes::run::render(frame, run, app, app.focus == Pane::Run);
    }
}

fn render_header(frame: &mut Frame, area: Rect, app: &App) {
    let [healthy, unhealthy, down, unknown] = app.counts();
    // Narrow terminals get the counts without the state names.
    let wide = area.width >= 110;
    let count = |state: HealthState, n: usize| {
        let text = if wide {
            format!("{} {n} {}  ", theme::health_symbol(state), state.as_str())
        } else {
            format!("{} {n}  ", theme::health_symbol(state))
        };
        Span::styled(
            text,
            if n == 0 {
                theme::muted()
            } else {
                theme::health_count(state)
            },
        )
    };
    let newest = app.newest_sample.map_or_else(
        || "no sample yet".to_owned(),
        |at| format!("newest sample {} UTC", panes::clock(at)),
    );
    let mut counts = vec![
        count(HealthState::Healthy, healthy),
        count(HealthState::Unhealthy, unhealthy),
        count(HealthState::Down, down),
        count(HealthState::Unknown, unknown),
        Span::styled(newest, theme::muted()),
    ];
    if app.read_only {
        counts.push(Span::styled("  read-only", theme::key()));
    }
    let counts_width: usize = counts.iter().map(|span| span.width()).sum();

    // The config path gets what is left and loses its start first.
    let room = (area.width as usize).saturating_sub(counts_width + 10);
    let path = shorten_path(&app.config_path, room);
    let mut spans = vec![
        Span::styled(" rewind ", theme::key()),
        Span::styled(path, theme::muted()),
        Span::raw("  "),
    ];
    spans.extend(counts);
    frame.render_widget(Line::from(spans), area);
}

/// Shows the first unfinished run and how to recover it.
fn render_banner(frame: &mut Frame, area: Rect, app: &App) {
    let Some((_, summary)) = app.unfinished.first() else {
        return;
    };
    let more = match app.unfinished.len() {
        1 => String::new(),
        n => format!(" (+{} more)", n - 1),
    };
    let keys = if app.read_only {
        String::new()
    } else {
        " · select it, R resume, A abort".to_owned()
    };
    let text = format!(" ⚠ {summary}{more}{keys}");
    let line = Line::styled(panes::truncate(&text, area.width as usize), theme::error());
    frame.render_widget(line, area);
}

fn shorten_path(path: &str, width: usize) -> String {
    let length = path.chars().count();
    if length <= width {
        return path.to_owned();
    }
    if width < 2 {
        return String::new();
    }
    let tail: String = path.chars().skip(length - (width - 1)).collect();
    format!("…{tail}")
}

fn render_footer(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = Vec::new();
    if app.mode == Mode::Filter {
        spans.push(Span::styled(" filter: ", theme::key()));
        spans.push(Span::raw(app.filter.value().to_owned()));
        spans.push(Span::styled("▏  ", theme::key()));
    }
    if let Some(notice) = &app.notice {
        spans.push(Span::styled(format!(" {notice}"), theme::error()));
        frame.render_widget(Line::from(spans), area);
        return;
    }
    for binding in keymap::bindings(&app.mode, app.focus, app.read_only) {
        // Bindings without a footer text are listed only in the help, and
        // cancel shows only while there is a run to cancel.
        let idle_cancel = binding.action == keymap::Action::CancelRun && app.running().is_none();
        if binding.short.is_empty() || idle_cancel {
            continue;
        }
        spans.push(Span::styled(
            format!(" {}", footer_label(binding.label)),
            theme::key(),
        ));
        spans.push(Span::raw(format!(" {} ", binding.short)));
    }
    frame.render_widget(Line::from(spans), area);
}

/// Returns the key label for the footer: `Tab/S-Tab` and `q/C-c` show only
/// their first key there, to fit 80 columns; the help lists both.
fn footer_label(label: &str) -> &str {
    match label.split_once('/') {
        Some((first, _)) if first.chars().count() > 1 || label.ends_with("C-c") => first,
        _ => label,
    }
}

/// Returns a centred area of at most `width` x `height` inside `area`.
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

fn render_notice_box(frame: &mut Frame, title: &str, text: &str) {
    let area = centred(frame.area(), 60, 7);
    frame.render_widget(Clear, area);
    let block = panes::block(title.to_owned(), true);
    let text = Paragraph::new(text.to_owned())
        .wrap(Wrap { trim: true })
        .block(block);
    frame.render_widget(text, area);
}

/// Returns the dialog title for a plan: undo, roll back or roll forward.
fn plan_title(kind: RunKind, plan: &Plan) -> String {
    match kind {
        RunKind::Undo => format!("Undo the last rollback of {}?", plan.service),
        RunKind::Restore => format!("Restore the data of {}?", plan.service),
        RunKind::Rollback if plan.undone.is_empty() && !plan.applied.is_empty() => {
            format!("Roll {} forward?", plan.service)
        }
        RunKind::Rollback => format!("Roll back {}?", plan.service),
    }
}

/// Draws the plan dialog: from and to, the commits undone, the steps, the
/// reason line.
fn render_confirm(frame: &mut Frame, app: &App, plan: &Plan) {
    let area = centred(frame.area(), 76, 21);
    frame.render_widget(Clear, area);
    let block = panes::block(plan_title(app.pending_kind, plan), true);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let width = inner.width as usize;
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("{} ", plan.service)),
        Span::styled(
            format!("{} ({})", plan.from.label, plan.from.short),
            theme::error(),
        ),
        Span::raw(" → "),
        Span::styled(
            format!("{} ({})", plan.to.label, plan.to.short),
            theme::success(),
        ),
    ])];
    let mut list = |title: &str, entries: &[crate::engine::versions::HistoryEntry]| {
        if entries.is_empty() {
            return;
        }
        lines.push(Line::styled(
            format!("{title} ({}):", entries.len()),
            theme::muted(),
        ));
        for entry in entries.iter().take(4) {
            let text = format!("  {} {}", entry.short, entry.subject);
            lines.push(Line::raw(panes::truncate(&text, width)));
        }
        if entries.len() > 4 {
            lines.push(Line::styled(
                format!("  … and {} more", entries.len() - 4),
                theme::muted(),
            ));
        }
    };
    list("undoes", &plan.undone);
    list("applies", &plan.applied);
    if !plan.dirty.is_empty() {
        let text = format!(
            "⚠ uncommitted changes will stop the run: {}",
            plan.dirty.join(", ")
        );
        lines.push(Line::styled(panes::truncate(&text, width), theme::error()));
    }
    lines.push(Line::styled("steps:", theme::muted()));
    for (number, step) in plan.steps.iter().enumerate() {
        let text = format!("  {}. {}", number + 1, step.description);
        lines.push(Line::raw(panes::truncate(&text, width)));
    }
    lines.push(Line::styled(
        "  on failure or c: check out the original again and restart",
        theme::muted(),
    ));

    let [body, reason, keys] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(lines), body);

    let editing = matches!(app.mode, Mode::Reason(_));
    let reason_line = match (app.reason.value(), editing) {
        (text, true) => Line::from(vec![
            Span::styled("reason: ", theme::key()),
            Span::raw(text.to_owned()),
            Span::styled("▏", theme::key()),
        ]),
        ("", false) => Line::styled("reason: none (w to write one)", theme::muted()),
        (text, false) => Line::from(vec![
            Span::styled("reason: ", theme::muted()),
            Span::raw(panes::truncate(text, width.saturating_sub(8))),
        ]),
    };
    frame.render_widget(reason_line, reason);
    render_dialog_keys(frame, keys, app);
}

fn render_dialog_keys(frame: &mut Frame, area: Rect, app: &App) {
    let mut spans = Vec::new();
    for binding in keymap::bindings(&app.mode, app.focus, app.read_only) {
        spans.push(Span::styled(binding.label, theme::key()));
        spans.push(Span::raw(format!(" {}   ", binding.short)));
    }
    frame.render_widget(Line::from(spans).centered(), area);
}

/// Draws the recovery dialog: the unfinished run, where the tree is now
/// and the steps of the recovery.
fn render_recovery(frame: &mut Frame, recovery: &RecoveryPlan) {
    let area = centred(frame.area(), 76, 16);
    frame.render_widget(Clear, area);
    let plan = &recovery.plan;
    let title = match recovery.mode {
        RecoveryMode::Resume => format!("Resume the run of {}?", recovery.service),
        RecoveryMode::Abort => format!("Abort the run of {}?", recovery.service),
    };
    let block = panes::block(title, true);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let width = inner.width as usize;
    let goal = match recovery.mode {
        RecoveryMode::Resume => format!("finish the move to {}", plan.to.label),
        RecoveryMode::Abort => format!("return to {}", plan.from.label),
    };
    let mut lines = vec![
        Line::raw(panes::truncate(&recovery.summary, width)),
        Line::styled(goal, theme::success()),
        Line::styled(
            format!("now at {}", &recovery.head[..7.min(recovery.head.len())]),
            theme::muted(),
        ),
        Line::styled("steps:", theme::muted()),
    ];
    for (number, step) in recovery.steps.iter().enumerate() {
        let text = format!("  {}. {}", number + 1, step.description);
        lines.push(Line::raw(panes::truncate(&text, width)));
    }
    let [body, keys] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), body);
    let keys_line = Line::from(vec![
        Span::styled("y/Enter", theme::key()),
        Span::raw(" run   "),
        Span::styled("n/Esc", theme::key()),
        Span::raw(" cancel"),
    ]);
    frame.render_widget(keys_line.centered(), keys);
}

fn render_help(frame: &mut Frame, read_only: bool) {
    let mut lines = Vec::new();
    let mut section = |title: &str, table: &[keymap::Binding]| {
        lines.push(Line::styled(title.to_owned(), theme::muted()));
        for binding in table
            .iter()
            .filter(|binding| !(read_only && binding.changes))
        {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<10}", binding.label), theme::key()),
                Span::raw(binding.description),
            ]));
        }
    };
    section("dashboard", keymap::NORMAL);
    let inline = |title: &str, table: &[keymap::Binding]| {
        let keys: Vec<String> = table
            .iter()
            .map(|binding| format!("{} {}", binding.label, binding.short))
            .collect();
        Line::from(vec![
            Span::styled(format!("{title}: "), theme::muted()),
            Span::raw(keys.join(" · ")),
        ])
    };
    lines.push(inline("plan dialog", keymap::CONFIRM));
    lines.push(inline("filter", keymap::FILTER));
    if read_only {
        lines.push(Line::styled(
            "read-only mode: keys that change a service are off",
            theme::key(),
        ));
    }
    lines.push(Line::styled("? or Esc closes this help", theme::muted()));

    let area = centred(frame.area(), 64, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    let block = panes::block("Keys".to_owned(), true);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
