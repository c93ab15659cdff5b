//! Progress bars (indicatif), drawn on stderr only when asked and on a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` units, starting at `done`, with `template` (indicatif syntax), or a
/// hidden one when `show` is false.
pub fn progress_bar(show: bool, total: u64, done: u64, template: &str) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_position(done);
    bar
}
