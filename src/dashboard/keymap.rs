//! The key table. It maps keys to actions for each mode and pane, and the
//! same table fills the footer and the help overlay, so what is shown is
//! what works.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Mode, Pane};

/// Dashboard action bound to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    MoveUp,
    MoveDown,
    MoveTop,
    MoveBottom,
    NextPane,
    PreviousPane,
    ClearSelection,
    StartRollback,
    StartFilter,
    ToggleHelp,
    Quit,
    Confirm,
    Cancel,
}

/// One row of the key table.
pub struct Binding {
    /// Keys as shown to the user.
    pub label: &'static str,
    pub action: Action,
    pub description: &'static str,
    /// Shorter description for the footer.
    pub short: &'static str,
    /// Panes where the binding works; empty means all panes.
    pub panes: &'static [Pane],
}

/// Keys of the normal mode, in the order the help lists them.
pub const NORMAL: &[Binding] = &[
    Binding {
        label: "↑/k",
        action: Action::MoveUp,
        description: "move up",
        short: "up",
        panes: &[],
    },
    Binding {
        label: "↓/j",
        action: Action::MoveDown,
        description: "move down",
        short: "down",
        panes: &[],
    },
    Binding {
        label: "g/G",
        action: Action::MoveTop,
        description: "first / last",
        short: "",
        panes: &[],
    },
    Binding {
        label: "Tab",
        action: Action::NextPane,
        description: "next pane",
        short: "pane",
        panes: &[],
    },
    Binding {
        label: "S-Tab",
        action: Action::PreviousPane,
        description: "previous pane",
        short: "",
        panes: &[],
    },
    Binding {
        label: "r",
        action: Action::StartRollback,
        description: "roll back to the selected (else previous) version",
        short: "roll back",
        panes: &[Pane::Services, Pane::Versions],
    },
    Binding {
        label: "Esc",
        action: Action::ClearSelection,
        description: "clear the version selection",
        short: "clear",
        panes: &[Pane::Versions],
    },
    Binding {
        label: "/",
        action: Action::StartFilter,
        description: "filter services",
        short: "filter",
        panes: &[Pane::Services],
    },
    Binding {
        label: "?",
        action: Action::ToggleHelp,
        description: "help",
        short: "help",
        panes: &[],
    },
    Binding {
        label: "q",
        action: Action::Quit,
        description: "quit",
        short: "quit",
        panes: &[],
    },
];

/// Keys of the confirmation dialogs.
pub const CONFIRM: &[Binding] = &[
    Binding {
        label: "y/Enter",
        action: Action::Confirm,
        description: "run",
        short: "run",
        panes: &[],
    },
    Binding {
        label: "n/Esc",
        action: Action::Cancel,
        description: "cancel",
        short: "cancel",
        panes: &[],
    },
];

/// Keys while typing a filter.
pub const FILTER: &[Binding] = &[
    Binding {
        label: "Enter",
        action: Action::Confirm,
        description: "keep filter",
        short: "keep",
        panes: &[],
    },
    Binding {
        label: "Esc",
        action: Action::Cancel,
        description: "clear filter",
        short: "clear",
        panes: &[],
    },
];

/// Keys of the help overlay.
pub const HELP: &[Binding] = &[Binding {
    label: "?/Esc",
    action: Action::Cancel,
    description: "close help",
    short: "close",
    panes: &[],
}];

/// Returns the bindings that work in `mode` with `pane` focused.
pub fn bindings(mode: &Mode, pane: Pane) -> Vec<&'static Binding> {
    let table = match mode {
        Mode::Normal | Mode::Planning { .. } => NORMAL,
        Mode::Confirm(_) | Mode::ConfirmQuit => CONFIRM,
        Mode::Filter => FILTER,
        Mode::Help => HELP,
    };
    table
        .iter()
        .filter(|binding| binding.panes.is_empty() || binding.panes.contains(&pane))
        .collect()
}

/// Maps a key press to an action in `mode` with `pane` focused.
pub fn action(mode: &Mode, pane: Pane, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    let action = match mode {
        Mode::Confirm(_) | Mode::ConfirmQuit => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Action::Confirm,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Action::Cancel,
            _ => return None,
        },
        Mode::Filter => match key.code {
            KeyCode::Enter => Action::Confirm,
            KeyCode::Esc => Action::Cancel,
            _ => return None,
        },
        Mode::Help => match key.code {
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q') => Action::Cancel,
            _ => return None,
        },
        Mode::Normal | Mode::Planning { .. } => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Action::MoveUp,
            KeyCode::Down | KeyCode::Char('j') => Action::MoveDown,
            KeyCode::Home | KeyCode::Char('g') => Action::MoveTop,
            KeyCode::End | KeyCode::Char('G') => Action::MoveBottom,
            KeyCode::Tab => Action::NextPane,
            KeyCode::BackTab => Action::PreviousPane,
            KeyCode::Char('r') => Action::StartRollback,
            KeyCode::Char('/') => Action::StartFilter,
            KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::ClearSelection,
            _ => return None,
        },
    };
    // A binding listed for some panes only works there.
    let allowed = NORMAL
        .iter()
        .filter(|binding| binding.action == action)
        .all(|binding| binding.panes.is_empty() || binding.panes.contains(&pane));
    allowed.then_some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn vim_and_arrow_keys_move() {
        for code in [KeyCode::Up, KeyCode::Char('k')] {
            assert_eq!(
                action(&Mode::Normal, Pane::Services, press(code)),
                Some(Action::MoveUp)
            );
        }
        for code in [KeyCode::Down, KeyCode::Char('j')] {
            assert_eq!(
                action(&Mode::Normal, Pane::Services, press(code)),
                Some(Action::MoveDown)
            );
        }
    }

    #[test]
    fn rollback_key_works_only_where_listed() {
        let key = press(KeyCode::Char('r'));

        assert_eq!(
            action(&Mode::Normal, Pane::Services, key),
            Some(Action::StartRollback)
        );
        assert_eq!(
            action(&Mode::Normal, Pane::Versions, key),
            Some(Action::StartRollback)
        );
        assert_eq!(action(&Mode::Normal, Pane::Run, key), None);
    }

    #[test]
    fn confirm_accepts_y_and_enter() {
        let mode = Mode::ConfirmQuit;

        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('y'))),
            Some(Action::Confirm)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Enter)),
            Some(Action::Confirm)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Esc)),
            Some(Action::Cancel)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('n'))),
            Some(Action::Cancel)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('r'))),
            None
        );
    }

    #[test]
    fn control_c_quits_in_every_mode() {
        let key = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);

        assert_eq!(
            action(&Mode::Filter, Pane::Services, key),
            Some(Action::Quit)
        );
        assert_eq!(action(&Mode::Help, Pane::Services, key), Some(Action::Quit));
    }

    #[test]
    fn footer_lists_filter_only_in_services() {
        let labels = |pane| -> Vec<&str> {
            bindings(&Mode::Normal, pane)
                .iter()
                .map(|b| b.label)
                .collect()
        };

        assert!(labels(Pane::Services).contains(&"/"));
        assert!(!labels(Pane::Health).contains(&"/"));
    }
}
