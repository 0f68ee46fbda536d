//! The services pane: one row per service that matches the filter, with its
//! health, latency and deployed version. Only the rows that fit are built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};

use crate::dashboard::app::{App, BackupsView, Mode, ServiceView};
use crate::dashboard::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let (visible, position) = app.visible_count();
    let filter = app.filter.value();
    let title = if filter.is_empty() && app.mode != Mode::Filter {
        format!("Services ({})", app.services.len())
    } else {
        format!("Services {}/{} /{}", visible, app.services.len(), filter)
    };
    let block = super::block(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let height = inner.height.saturating_sub(1) as usize;
    // Keep the selected row on screen: scroll so it is the last row when needed.
    let offset = position
        .unwrap_or(0)
        .saturating_sub(height.saturating_sub(1));

    let page = app.visible_page(offset, height);
    let now = std::time::SystemTime::now();
    let rows = page.iter().map(|&index| {
        let service = &app.services[index];
        let style = theme::health(service.health);
        // A probe without an HTTP response has no latency to show.
        let latency = match service.last_sample() {
            Some(sample) if sample.status.is_some() => {
                format!("{}ms", sample.latency.as_millis())
            }
            Some(_) => "—".to_owned(),
            None => String::new(),
        };
        let row = Row::new(vec![
            Line::from(vec![
                Span::styled(theme::health_symbol(service.health), style),
                Span::raw(" "),
                Span::raw(service.name.as_str()),
            ]),
            Line::styled(service.health.as_str(), style),
            Line::from(latency).right_aligned(),
            Line::from(service.version_label()),
            backup_cell(service, now),
        ]);
        if index == app.selected {
            row.style(theme::selected())
        } else {
            row
        }
    });

    // Narrow panes leave out the health word: the symbol and colour remain.
    let wide = inner.width >= 50;
    let health_width = if wide { 9 } else { 0 };
    let widths = [
        Constraint::Min(10),
        Constraint::Length(health_width),
        Constraint::Length(6),
        Constraint::Fill(1),
        Constraint::Length(4),
    ];
    let health_title = if wide { "HEALTH" } else { "" };
    let header = Row::new(["SERVICE", health_title, "LAT", "VERSION", "BAK"]).style(theme::muted());
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, inner);

    if visible == 0 {
        let empty = Line::styled("no service matches the filter", theme::muted());
        let line_area = Rect {
            y: inner.y + 1,
            height: 1,
            ..inner
        };
        frame.render_widget(empty, line_area);
    }
}

/// Returns the age of the newest backup, marked when it is overdue.
fn backup_cell(service: &ServiceView, now: std::time::SystemTime) -> Line<'static> {
    let text = match (&service.backups, service.newest_backup()) {
        (BackupsView::NotConfigured, _) => return Line::styled("—", theme::muted()),
        (_, Some(newest)) => super::backups::age(newest.age(now)),
        (BackupsView::Loaded(_), None) => "none".to_owned(),
        _ => String::new(),
    };
    if service.backup_overdue(now) {
        Line::styled(format!("{text}!"), theme::error())
    } else {
        Line::raw(text)
    }
}
