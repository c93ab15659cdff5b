//! Rendering for people: N2G graphs (algorithm step 10) as Graphviz DOT, coloured
//! terminal text and SVG pictures, top examples as token strips coloured by activation
//! (terminal and HTML), and the activation histogram as SVG.

pub mod examples;
pub mod graph;
pub mod html;
mod progress;
pub mod svg;

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

/// A string escaped for XML and HTML text and attribute values: `&`, `<`, `>`, `"` and
/// `'` become entities, and characters that XML 1.0 forbids (control characters other
/// than tab, newline and carriage return; U+FFFE, U+FFFF) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
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

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(
            xml_escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(xml_escape("a\u{1}b\u{ffff}"), "a\u{fffd}b\u{fffd}");
        assert_eq!(xml_escape("é\n"), "é\n");
    }
}
