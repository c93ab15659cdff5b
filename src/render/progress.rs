//! A terminal progress bar (indicatif) for long calls, drawn on stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Stage};

/// Draws each stage of a long call as a bar on stderr (when `bars` is set) and prints
/// its notes there (unless `quiet`).
pub struct TerminalProgress {
    bars: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl TerminalProgress {
    /// Bars only when `bars` (the CLI sets it when stderr is a terminal); notes unless
    /// `quiet`.
    pub fn new(bars: bool, quiet: bool) -> Self {
        TerminalProgress {
            bars: bars && !quiet,
            quiet,
            bar: None,
        }
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, stage: Stage, total: u64, done: u64) {
        if let Some(old) = self.bar.take() {
            old.finish_and_clear();
        }
        if !self.bars || stage == Stage::Search {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = format!(
            "{} {{bar:30}} {{human_pos}}/{{human_len}} {}  {{per_sec}}  ETA {{eta}}",
            stage.name(),
            stage.unit()
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.set_position(done);
        bar.reset_eta();
        self.bar = Some(bar);
    }

    fn advance(&mut self, units: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(units);
        }
    }

    fn finish(&mut self, _stage: Stage, _elapsed: Duration) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn note(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}
