//! Input-controlled text (object, container, Secret and file names, keys, images, namespaces)
//! made safe for a terminal: the table report and stderr messages go through [`printable`].

use std::borrow::Cow;

/// Whether a character could drive a terminal or reorder what it shows: C0 controls (tab and
/// newline too: they would forge table lines), DEL, C1 controls (8-bit CSI/OSC), the line and
/// paragraph separators, and the bidirectional controls (embeddings, overrides, isolates,
/// marks) behind "Trojan Source" display tricks.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every [`is_unsafe_char`] written as a visible escape (`\u{1b}`), so names stay
/// readable and nothing in them reaches the terminal raw. Borrowed when there is nothing to do.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_bidi_and_keeps_the_rest() {
        let evil = "web\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}\u{7f}\u{202e}\u{2028}\u{2066}\n\tü名";
        let shown = printable(evil);
        assert!(!shown.chars().any(is_unsafe_char), "{shown:?}");
        assert_eq!(
            shown,
            "web\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}\\u{7f}\\u{202e}\\u{2028}\\u{2066}\\u{a}\\u{9}ü名"
        );
        assert!(matches!(printable("plain-name.yaml"), Cow::Borrowed(_)));
    }
}
