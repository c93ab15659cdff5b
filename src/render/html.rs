//! Token strips as HTML: each token a `<span>` whose background is red in proportion to
//! its activation, with the value in its tooltip. Every token is escaped, so a strip can
//! be inlined into any page.

use std::fmt::Write as _;

use super::graph::{shade, RED};
use super::xml_escape;

/// A token as it reads in running text: spaces kept, newline `↵`, tab `⇥`, carriage
/// return `␍`, other control characters as `\u{..}`, the empty token as `∅`.
pub fn token_text(token: &str) -> String {
    if token.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            '\n' => out.push('↵'),
            '\t' => out.push('⇥'),
            '\r' => out.push('␍'),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The CSS colour of an activation at `x` of the maximum (clamped to 0..=1): white to
/// red.
pub fn activation_colour(x: f32) -> String {
    let (r, g, b) = shade(RED, x);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One example as a `<span class="strip">` of token spans: background by
/// `activation / scale` (negative values white), the value in each token's `title`, the
/// `argmax` token with class `max`.
pub fn token_strip(tokens: &[String], activations: &[f32], argmax: usize, scale: f32) -> String {
    let mut out = String::with_capacity(tokens.len() * 96);
    out.push_str("<span class=\"strip\">");
    for (i, (token, &a)) in tokens.iter().zip(activations).enumerate() {
        let x = if scale > 0.0 && a.is_finite() {
            a / scale
        } else {
            0.0
        };
        let ink = if x > 0.6 { ";color:#fff" } else { "" };
        let _ = write!(
            out,
            "<span class=\"tok{}\" style=\"background:{}{ink}\" title=\"{:.3}\">{}</span>",
            if i == argmax { " max" } else { "" },
            activation_colour(x),
            a,
            xml_escape(&token_text(token)),
        );
    }
    out.push_str("</span>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_escaped_and_coloured_by_value() {
        let tokens: Vec<String> = ["<b>", " &", "\n", ""].map(String::from).to_vec();
        let html = token_strip(&tokens, &[2.0, 1.0, 0.0, -1.0], 0, 2.0);
        assert!(html.contains(">&lt;b&gt;</span>"), "{html}");
        assert!(html.contains("> &amp;</span>"), "{html}");
        assert!(
            html.contains(">↵</span>") && html.contains(">∅</span>"),
            "{html}"
        );
        assert!(!html.contains("<b>"));
        // Full red with white ink at the maximum, half-way pink at half, white at 0 and below.
        assert!(html
            .contains("class=\"tok max\" style=\"background:#e60000;color:#fff\" title=\"2.000\""));
        assert!(
            html.contains("style=\"background:#f38080\" title=\"1.000\""),
            "{html}"
        );
        assert_eq!(html.matches("background:#ffffff").count(), 2, "{html}");
        assert_eq!(html.matches("<span class=\"tok").count(), 4);
    }
}
