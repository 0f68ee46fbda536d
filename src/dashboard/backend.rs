//! A ratatui backend that keeps the escape sequences of each frame short.
//!
//! ratatui's crossterm backend moves the cursor with absolute positions,
//! sets both colours as 256-colour indices whenever either changes, and
//! resets colours, underline colour and attributes after every frame. Over
//! a slow SSH link a frame in which one service changes state should cost
//! a few dozen bytes. This backend keeps the terminal's style between the
//! cells of a frame and changes only what differs, in one escape sequence.
//! It uses the 16 ANSI colour codes where they apply and moves along a row
//! with a column-only move. It writes the cursor visibility only when it
//! differs from what ratatui requests.

use std::io::{self, Write};

use crossterm::QueueableCommand;
use crossterm::terminal::{self, Clear};
use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

/// The terminal's text style as this backend last set it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Style {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

const PLAIN: Style = Style {
    fg: Color::Reset,
    bg: Color::Reset,
    modifier: Modifier::empty(),
};

/// Writes frames to `W` with short escape sequences.
pub struct Compact<W: Write> {
    writer: W,
    /// Position where the next printed cell lands, when known.
    cursor: Option<Position>,
    /// Whether the cursor is shown, when known.
    visible: Option<bool>,
}

impl<W: Write> Compact<W> {
    pub fn new(writer: W) -> Self {
        Compact {
            writer,
            cursor: None,
            visible: None,
        }
    }

    /// Returns the writer, for counting what was written.
    pub fn writer(&self) -> &W {
        &self.writer
    }
}

/// Moves the cursor from `from`, when known, to `to`.
fn move_cursor(writer: &mut impl Write, from: Option<Position>, to: Position) -> io::Result<()> {
    match from {
        Some(at) if at == to => Ok(()),
        // Same row: a column move, `ESC [ col G`.
        Some(at) if at.y == to.y => write!(writer, "\x1b[{}G", to.x + 1),
        _ => write!(writer, "\x1b[{};{}H", to.y + 1, to.x + 1),
    }
}

/// Appends the SGR parameters that turn `from` into `to` to `params`.
fn style_change(from: Style, to: Style, params: &mut Vec<u16>) {
    let removed = from.modifier - to.modifier;
    let mut added = to.modifier - from.modifier;
    // Bold and dim share one "normal intensity" code, as do the blinks, so
    // removing one of a pair also removes the other, which is then added back.
    if removed.intersects(Modifier::BOLD | Modifier::DIM) {
        params.push(22);
        added |= to.modifier & (Modifier::BOLD | Modifier::DIM);
    }
    if removed.intersects(Modifier::SLOW_BLINK | Modifier::RAPID_BLINK) {
        params.push(25);
        added |= to.modifier & (Modifier::SLOW_BLINK | Modifier::RAPID_BLINK);
    }
    for (modifier, off) in [
        (Modifier::ITALIC, 23),
        (Modifier::UNDERLINED, 24),
        (Modifier::REVERSED, 27),
        (Modifier::HIDDEN, 28),
        (Modifier::CROSSED_OUT, 29),
    ] {
        if removed.contains(modifier) {
            params.push(off);
        }
    }
    for (modifier, on) in [
        (Modifier::BOLD, 1),
        (Modifier::DIM, 2),
        (Modifier::ITALIC, 3),
        (Modifier::UNDERLINED, 4),
        (Modifier::SLOW_BLINK, 5),
        (Modifier::RAPID_BLINK, 6),
        (Modifier::REVERSED, 7),
        (Modifier::HIDDEN, 8),
        (Modifier::CROSSED_OUT, 9),
    ] {
        if added.contains(modifier) {
            params.push(on);
        }
    }
    if from.fg != to.fg {
        color(to.fg, 30, params);
    }
    if from.bg != to.bg {
        color(to.bg, 40, params);
    }
}

/// Appends the SGR parameters of a foreground (`base` 30) or background
/// (`base` 40) colour.
fn color(color: Color, base: u16, params: &mut Vec<u16>) {
    let ansi = |index: u16| {
        if index < 8 {
            base + index
        } else {
            base + 60 + index - 8
        }
    };
    match color {
        Color::Reset => params.push(base + 9),
        Color::Black => params.push(ansi(0)),
        Color::Red => params.push(ansi(1)),
        Color::Green => params.push(ansi(2)),
        Color::Yellow => params.push(ansi(3)),
        Color::Blue => params.push(ansi(4)),
        Color::Magenta => params.push(ansi(5)),
        Color::Cyan => params.push(ansi(6)),
        Color::Gray => params.push(ansi(7)),
        Color::DarkGray => params.push(ansi(8)),
        Color::LightRed => params.push(ansi(9)),
        Color::LightGreen => params.push(ansi(10)),
        Color::LightYellow => params.push(ansi(11)),
        Color::LightBlue => params.push(ansi(12)),
        Color::LightMagenta => params.push(ansi(13)),
        Color::LightCyan => params.push(ansi(14)),
        Color::White => params.push(ansi(15)),
        Color::Indexed(index) => params.extend([base + 8, 5, u16::from(index)]),
        Color::Rgb(r, g, b) => params.extend([base + 8, 2, r.into(), g.into(), b.into()]),
    }
}

fn write_sgr(writer: &mut impl Write, params: &[u16]) -> io::Result<()> {
    writer.write_all(b"\x1b[")?;
    for (index, param) in params.iter().enumerate() {
        if index > 0 {
            writer.write_all(b";")?;
        }
        write!(writer, "{param}")?;
    }
    writer.write_all(b"m")
}

impl<W: Write> Backend for Compact<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let mut style = PLAIN;
        let mut params = Vec::new();
        for (x, y, cell) in content {
            // Taken, so that a failed write leaves the cursor unknown.
            let from = self.cursor.take();
            move_cursor(&mut self.writer, from, Position { x, y })?;
            let target = Style {
                fg: cell.fg,
                bg: cell.bg,
                modifier: cell.modifier,
            };
            if target != style {
                params.clear();
                style_change(style, target, &mut params);
                write_sgr(&mut self.writer, &params)?;
                style = target;
            }
            self.writer.write_all(cell.symbol().as_bytes())?;
            let width = cell.symbol().width() as u16;
            self.cursor = Some(Position { x: x + width, y });
        }
        if style != PLAIN {
            self.writer.write_all(b"\x1b[0m")?;
        }
        Ok(())
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.visible != Some(false) {
            self.writer.queue(crossterm::cursor::Hide)?.flush()?;
            self.visible = Some(false);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.visible != Some(true) {
            self.writer.queue(crossterm::cursor::Show)?.flush()?;
            self.visible = Some(true);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        let (x, y) = crossterm::cursor::position()?;
        Ok(Position { x, y })
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let position = position.into();
        let from = self.cursor.take();
        move_cursor(&mut self.writer, from, position)?;
        self.cursor = Some(position);
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        let clear_type = match clear_type {
            ClearType::All => terminal::ClearType::All,
            ClearType::AfterCursor => terminal::ClearType::FromCursorDown,
            ClearType::BeforeCursor => terminal::ClearType::FromCursorUp,
            ClearType::CurrentLine => terminal::ClearType::CurrentLine,
            ClearType::UntilNewLine => terminal::ClearType::UntilNewLine,
        };
        self.writer.queue(Clear(clear_type))?;
        self.writer.flush()?;
        // Whatever else changed the screen may also have moved the cursor
        // or shown it.
        self.cursor = None;
        self.visible = None;
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        let (width, height) = terminal::size()?;
        Ok(Size { width, height })
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        let size = terminal::window_size()?;
        Ok(WindowSize {
            columns_rows: Size {
                width: size.columns,
                height: size.rows,
            },
            pixels: Size {
                width: size.width,
                height: size.height,
            },
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::Style as RatatuiStyle;

    use super::*;

    fn cell(symbol: &'static str, style: RatatuiStyle) -> Cell {
        let mut cell = Cell::new(symbol);
        cell.set_style(style);
        cell
    }

    fn drawn(backend: &mut Compact<Vec<u8>>, cells: &[(u16, u16, Cell)]) -> String {
        let start = backend.writer.len();
        backend
            .draw(cells.iter().map(|(x, y, cell)| (*x, *y, cell)))
            .unwrap();
        String::from_utf8(backend.writer[start..].to_vec()).unwrap()
    }

    fn params(from: Style, to: Style) -> Vec<u16> {
        let mut params = Vec::new();
        style_change(from, to, &mut params);
        params
    }

    #[test]
    fn style_changes_name_only_what_differs() {
        let bold_red = Style {
            fg: Color::Red,
            bg: Color::Reset,
            modifier: Modifier::BOLD,
        };
        assert_eq!(params(PLAIN, bold_red), [1, 31]);
        assert_eq!(params(bold_red, PLAIN), [22, 39]);

        let dim = Style {
            modifier: Modifier::DIM,
            ..bold_red
        };
        // Normal intensity clears bold and dim together, so dim comes back.
        assert_eq!(params(bold_red, dim), [22, 2]);

        let reversed_gray = Style {
            fg: Color::DarkGray,
            bg: Color::Blue,
            modifier: Modifier::REVERSED | Modifier::ITALIC,
        };
        assert_eq!(params(PLAIN, reversed_gray), [3, 7, 90, 44]);
        assert_eq!(params(reversed_gray, PLAIN), [23, 27, 39, 49]);

        let rich = Style {
            fg: Color::Indexed(208),
            bg: Color::Rgb(1, 2, 3),
            modifier: Modifier::empty(),
        };
        assert_eq!(params(PLAIN, rich), [38, 5, 208, 48, 2, 1, 2, 3]);

        let white_on_light_cyan = Style {
            fg: Color::White,
            bg: Color::LightCyan,
            modifier: Modifier::empty(),
        };
        assert_eq!(params(PLAIN, white_on_light_cyan), [97, 106]);
    }

    #[test]
    fn draw_moves_across_gaps_then_resets() {
        let mut backend = Compact::new(Vec::new());
        let red = RatatuiStyle::new().fg(Color::Red);
        let cells = [
            (2, 0, cell("a", red)),
            (3, 0, cell("b", red)),
            (7, 0, cell("c", RatatuiStyle::new())),
            (0, 4, cell("d", red)),
        ];

        assert_eq!(
            drawn(&mut backend, &cells),
            "\x1b[1;3H\x1b[31mab\x1b[8G\x1b[39mc\x1b[5;1H\x1b[31md\x1b[0m"
        );
        // The next frame starts from where the last cell left the cursor.
        let next = [(1, 4, cell("e", RatatuiStyle::new()))];
        assert_eq!(drawn(&mut backend, &next), "e");
    }

    #[test]
    fn wide_symbols_advance_the_cursor_by_their_width() {
        let mut backend = Compact::new(Vec::new());
        let plain = RatatuiStyle::new();
        let cells = [(0, 1, cell("漢", plain)), (2, 1, cell("x", plain))];

        assert_eq!(drawn(&mut backend, &cells), "\x1b[2;1H漢x");
    }

    #[test]
    fn cursor_visibility_is_written_only_when_it_changes() {
        let mut backend = Compact::new(Vec::new());
        backend.hide_cursor().unwrap();
        backend.hide_cursor().unwrap();
        backend.show_cursor().unwrap();
        backend.show_cursor().unwrap();
        assert_eq!(
            String::from_utf8(backend.writer.clone()).unwrap(),
            "\x1b[?25l\x1b[?25h"
        );
        // After a clear, the cursor position and visibility are unknown.
        backend.writer.clear();
        backend.clear().unwrap();
        backend.show_cursor().unwrap();
        let cells = [(1, 0, cell("a", RatatuiStyle::new()))];
        let written = drawn(&mut backend, &cells);
        assert_eq!(written, "\x1b[1;2Ha");
        assert_eq!(
            String::from_utf8(backend.writer.clone()).unwrap(),
            "\x1b[2J\x1b[?25h\x1b[1;2Ha"
        );
    }
}
