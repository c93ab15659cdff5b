//! Rendering for people: N2G graphs (algorithm step 10) as Graphviz DOT and coloured
//! terminal text, and top examples as token strips coloured by activation.

pub mod examples;
pub mod graph;
mod progress;

pub use graph::{to_dot, to_text};
pub use progress::TerminalProgress;

/// A token string made visible: space `␣`, newline `↵`, carriage return `␍`, tab `⇥`,
/// other control characters as `\u{..}`, the empty string as `∅`.
pub fn visible(token: &str) -> String {
    if token.is_empty() {
        return "∅".to_string();
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            ' ' => out.push('␣'),
            '\n' => out.push('↵'),
            '\r' => out.push('␍'),
            '\t' => out.push('⇥'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A string escaped for a double-quoted DOT id or label: `"` and `\` are backslashed.
/// (Newlines and other control characters are expected to be made [`visible`] first; any
/// left are escaped too, so the output never breaks the quoted string.)
pub fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_made_visible_and_escaped() {
        assert_eq!(visible(" ,"), "␣,");
        assert_eq!(visible("\n\n"), "↵↵");
        assert_eq!(visible(""), "∅");
        assert_eq!(visible("a\u{1}"), "a\\u{1}");
        assert_eq!(dot_escape(r#"say "hi" \o/"#), r#"say \"hi\" \\o/"#);
        assert_eq!(dot_escape("a\nb"), "a\\nb");
    }
}
