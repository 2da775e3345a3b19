//! Progress of long one-shot work (a fan-out, a replay, a prune of millions of rows): a bar on
//! a terminal, nothing when output is not a terminal (README, Commands).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether and where to draw progress. Cheap to clone; every clone draws on the same terminal.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Draws nothing.
    pub fn quiet() -> Self {
        Self { visible: false }
    }

    /// Draws on stderr when it is a terminal.
    pub fn on_terminal() -> Self {
        Self {
            visible: std::io::stderr().is_terminal(),
        }
    }

    /// A bar for one piece of work of `total` steps (a spinner when unknown).
    pub fn bar(&self, label: &str, total: Option<u64>) -> Bar {
        if !self.visible {
            return Bar(None);
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg:>24} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }
}

/// One bar; does nothing when progress is quiet.
#[derive(Debug)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// Sets how many steps are done.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    /// Clears the bar when the work is done.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
