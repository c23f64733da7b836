//! `TerminalGuard`: puts the terminal in raw/alternate-screen mode and restores it when dropped — on quit,
//! on error and on panic (ratatui's `init` installs a panic hook that restores first).

use ratatui::DefaultTerminal;

pub struct TerminalGuard {
    pub terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen.
    pub fn enter() -> TerminalGuard {
        TerminalGuard {
            terminal: ratatui::init(),
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
