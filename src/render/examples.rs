//! Token strips coloured by activation, for top examples.

use std::fmt::Write;

/// How to colour terminal output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorMode {
    /// 24-bit ANSI colours.
    TrueColor,
    /// No colours: the max token is marked with brackets, others plain.
    Plain,
}

impl ColorMode {
    /// Truecolor when stdout is a terminal that announces it (`COLORTERM`), unless
    /// `NO_COLOR` is set.
    pub fn detect() -> Self {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let truecolor = std::env::var("COLORTERM")
            .map(|v| v.contains("truecolor") || v.contains("24bit"))
            .unwrap_or(false);
        if tty && truecolor && std::env::var_os("NO_COLOR").is_none() {
            ColorMode::TrueColor
        } else {
            ColorMode::Plain
        }
    }
}

/// A token as printable text: control characters escaped (`\n`, `\t`).
pub fn visible(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One example as a strip of tokens: background red in proportion to
/// `activation / scale` (positive values only), the `argmax` token underlined and
/// bold (or in `[brackets]` without colour).
pub fn token_strip(
    tokens: &[String],
    activations: &[f32],
    argmax: usize,
    scale: f32,
    mode: ColorMode,
) -> String {
    let mut out = String::new();
    for (i, (tok, &a)) in tokens.iter().zip(activations).enumerate() {
        let text = visible(tok);
        match mode {
            ColorMode::TrueColor => {
                let x = if scale > 0.0 {
                    (a / scale).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let g = (255.0 * (1.0 - x)) as u8;
                let style = if i == argmax { "\x1b[1;4m" } else { "" };
                let _ = write!(
                    out,
                    "\x1b[48;2;255;{g};{g}m\x1b[38;2;0;0;0m{style}{text}\x1b[0m"
                );
            }
            ColorMode::Plain => {
                if i == argmax {
                    let _ = write!(out, "[{text}]");
                } else {
                    out.push_str(&text);
                }
            }
        }
    }
    out
}

/// A one-line density plot of histogram counts.
pub fn sparkline(counts: &[u32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                ' '
            } else {
                let l = ((c as f64).ln_1p() / max.ln_1p() * 7.0).round() as usize;
                BARS[l.min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strip_marks_the_max_token() {
        let toks = vec!["The".to_string(), " cat".into(), "\n".into()];
        let s = token_strip(&toks, &[0.1, 2.0, 0.0], 1, 2.0, ColorMode::Plain);
        assert_eq!(s, "The[ cat]\\n");
    }
}
