//! YAML in and out. Output is written by a small emitter of our own so that multi-line values
//! (known_hosts, PEM, armored age) come out as `|` block scalars and the text can be built straight
//! into a zeroizing buffer; input is read with serde-saphyr, the parser kube itself uses, with
//! error snippets switched off so a parse error can never echo a secret value.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Renders a stream of documents, separated by `---`.
pub fn to_yaml_stream(docs: &[Value]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(16 * 1024));
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        write_document(&mut out, doc);
    }
    out
}

/// Renders one document.
pub fn to_yaml(doc: &Value) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(8 * 1024));
    write_document(&mut out, doc);
    out
}

fn write_document(out: &mut String, doc: &Value) {
    match doc {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        // A root string is always quoted: unindented, a block scalar's `---` line would end the
        // document.
        Value::String(s) => {
            push_double_quoted(out, s);
            out.push('\n');
        }
        other => {
            write_scalar(out, other, 0);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, m: &Map<String, Value>, level: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        write_key(out, k);
        write_value_after_key(out, v, level);
    }
}

fn write_value_after_key(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Object(c) if !c.is_empty() => {
            out.push('\n');
            indent(out, level + 2);
            write_map(out, c, level + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            // Sequences under a key are indented by two, like kubectl's output.
            out.push('\n');
            indent(out, level + 2);
            write_seq(out, a, level + 2);
        }
        other => {
            out.push(' ');
            write_scalar(out, other, level + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], level: usize) {
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            indent(out, level);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, level + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, level + 2),
            other => {
                write_scalar(out, other, level + 2);
                out.push('\n');
            }
        }
    }
}

fn write_key(out: &mut String, k: &str) {
    if is_plain_safe(k) {
        out.push_str(k);
    } else {
        push_double_quoted(out, k);
    }
    out.push(':');
}

/// Writes a scalar; `block_indent` is the indentation of a block scalar's content lines.
fn write_scalar(out: &mut String, v: &Value, block_indent: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, block_indent),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Integers as they are; floats always with a `.` and a signed exponent (`1.0e+300`), the only
/// float shape YAML 1.1 parsers (PyYAML) read as a float rather than a string.
fn write_number(out: &mut String, n: &serde_json::Number) {
    let text = n.to_string();
    if !n.is_f64() {
        out.push_str(&text);
        return;
    }
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text.as_str(), None),
    };
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    if let Some(e) = exponent {
        out.push('e');
        if !e.starts_with(['+', '-']) {
            out.push('+');
        }
        out.push_str(e);
    }
}

fn write_string(out: &mut String, s: &str, block_indent: usize) {
    if s.contains('\n') && literal_block_ok(s) {
        let body = s.trim_end_matches('\n');
        let trailing = s.len() - body.len();
        out.push_str(match trailing {
            0 => "|-",
            1 => "|",
            _ => "|+",
        });
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(out, block_indent);
                out.push_str(line);
            }
        }
        // `|+` keeps the extra trailing newlines as empty lines; the caller writes the last one.
        for _ in 1..trailing.max(1) {
            out.push('\n');
        }
    } else if is_plain_safe(s) {
        out.push_str(s);
    } else {
        push_double_quoted(out, s);
    }
}

fn literal_block_ok(s: &str) -> bool {
    !s.starts_with(' ')
        && !s.starts_with('\n')
        && !s.chars().any(|c| c == '\t' || is_unsafe_char(c))
        && !s.lines().any(|l| l.ends_with(' '))
}

/// Whether `c` must never appear raw in emitted YAML: anything outside YAML's printable set
/// (C0 but tab and newline, DEL, C1, U+FFFE/U+FFFF), the byte-order mark, and the characters a
/// YAML 1.1 parser (PyYAML, gopkg.in/yaml, sigs.k8s.io/yaml: kubectl, kustomize, Flux) reads as
/// a line break: U+0085, U+2028, U+2029. Written raw, a line break inside a value starts a new line
/// for those parsers, and a comment can become `---` and a whole new object.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// Writes `s` as a one-line double-quoted scalar. Every character that is not plainly printable
/// is escaped (`\uXXXX`), so the line means the same to YAML 1.1 and 1.2 parsers alike.
fn push_double_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a string can be written unquoted and still read back as the same string.
fn is_plain_safe(s: &str) -> bool {
    if s.is_empty() || s.len() > 1024 {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    // An indicator character cannot start a plain scalar, except `-` followed by a non-space
    // (`-foo`), which is not a sequence entry.
    let dash_word = first == '-' && s.len() > 1 && !s.starts_with("- ") && !looks_like_number(s);
    if ("-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace()) && !dash_word {
        return false;
    }
    if s.starts_with("---")
        || s.starts_with("...")
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.contains('\t')
    {
        return false;
    }
    if s.chars().any(|c| c.is_control() || is_unsafe_char(c)) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "<<", "=",
    ];
    if RESERVED.contains(&lower.as_str()) {
        return false;
    }
    !looks_like_number(s) && !looks_like_timestamp(s)
}

fn looks_like_number(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']);
    if t.is_empty() {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    if [".inf", ".nan"].contains(&lower.as_str()) {
        return true;
    }
    if lower.starts_with("0x") || lower.starts_with("0o") || lower.starts_with("0b") {
        return true;
    }
    t.chars()
        .all(|c| c.is_ascii_digit() || "._eE+-:_".contains(c))
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
}

/// YAML 1.1 timestamps start `YYYY-M` (PyYAML reads `2001-1-1t1:1:1` as one); anything that
/// starts like that is quoted.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 6 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

/// Parses a YAML (or JSON) stream into documents. Empty documents are dropped. `what` names the
/// input in errors (file name, `stdin`); errors carry a line and column, never the text.
pub fn parse_stream(text: &str, what: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, parse_options())
        .map_err(|e| parse_error(e, what))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Checks that `text` is a YAML stream with at least one non-empty document, without building
/// it (much cheaper than [`parse_stream`] for large inputs that are sealed as bytes).
pub fn has_documents(text: &str, what: &str) -> Result<bool> {
    // The parser's event stream alone: well-formedness without building (or even visiting
    // through serde) any value, about twice as fast as deserializing into `IgnoredAny`.
    use granit_parser::{Event, Parser, ScalarStyle};
    let mut any = false;
    let mut at_root = false;
    for event in Parser::new_from_str(text) {
        let (event, _) = event.map_err(|e| {
            let m = e.marker();
            Error::input(
                what,
                format!("not valid YAML at line {} column {}", m.line(), m.col() + 1),
                "fix the document (`kubectl apply --dry-run=client -f FILE` shows the same place)",
            )
        })?;
        match event {
            Event::DocumentStart(..) => at_root = true,
            // A document whose root is an empty plain scalar (`---` alone, `~`, `null`) is null.
            Event::Scalar(v, ScalarStyle::Plain, _, None)
                if at_root && matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL") =>
            {
                at_root = false
            }
            Event::Scalar(..)
            | Event::SequenceStart(..)
            | Event::MappingStart(..)
            | Event::Alias(_)
                if at_root =>
            {
                any = true;
                at_root = false;
            }
            _ => {}
        }
    }
    Ok(any)
}

fn parse_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.with_snippet = false;
    options.legacy_octal_numbers = true;
    options
}

fn parse_error(e: serde_saphyr::Error, what: &str) -> Error {
    let at = e
        .location()
        .map(|l| format!(" at line {} column {}", l.line(), l.column()))
        .unwrap_or_default();
    Error::input(
        what,
        format!("not valid YAML{at}"),
        "fix the document (`kubectl apply --dry-run=client -f FILE` shows the same place)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) {
        let text = to_yaml(v);
        let back = parse_stream(&text, "test").unwrap();
        assert_eq!(&back[0], v, "yaml was:\n{}", &*text);
    }

    #[test]
    fn tricky_scalars_survive_a_round_trip() {
        round_trip(&json!({
            "a": "true", "b": "0400", "c": "1.5", "d": "", "e": "x: y", "f": "#c", "g": "- x",
            "h": "line1\nline2\n", "i": "no newline\nat end", "j": "two\n\n", "k": " lead\nx",
            "l": "trail \nx", "m": 288, "n": true, "o": null, "p": [], "q": {}, "r": "2024-01-01T00:00:00Z",
            "s": "-----BEGIN X-----\nAAA\n-----END X-----\n", "t": "ü", "u": "a\tb", "v": "~", "w": "@x",
            "x": ["a", {"k": "v", "k2": ["n"]}, ["z"]], "y": "0x1F", "z": "-", "aa": "-1", "bb": "sealkey:acme/dags",
            "key with: colon": "v", "cc": "^(data|stringData)$", "dd": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]"
        }));
    }

    #[test]
    fn multi_line_values_are_literal_blocks() {
        let text = to_yaml(&json!({"knownHosts": "h1 k\nh2 k\n"}));
        assert_eq!(&*text, "knownHosts: |\n  h1 k\n  h2 k\n");
    }

    #[test]
    fn stream_has_separators_and_parses_back() {
        let docs = vec![
            json!({"kind": "A"}),
            json!({"kind": "B", "list": [{"x": 1}]}),
        ];
        let text = to_yaml_stream(&docs);
        assert_eq!(parse_stream(&text, "t").unwrap(), docs);
    }

    #[test]
    fn parse_error_names_input_and_line_without_content() {
        let err =
            parse_stream("a: b\nsecret: [unclosed\nzz: SECRETVALUE\n", "in.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("in.yaml: not valid YAML"), "{msg}");
        assert!(!msg.contains("SECRETVALUE"), "{msg}");
    }

    #[test]
    fn has_documents_checks_syntax_and_emptiness_without_building() {
        assert!(has_documents("a: 1\n---\nb: [2]\n", "t").unwrap());
        assert!(!has_documents("---\n# only a comment\n", "t").unwrap());
        // Agrees with the full parser on which streams hold a (non-null) document.
        for text in [
            "",
            "# c\n",
            "---\n",
            "~\n",
            "--- null\n---\n",
            "--- ~\n--- x\n",
            "[]\n",
            "{}\n",
            "'': 1\n",
            "\"\"\n",
            "''\n",
            "|\n  text\n",
            "--- &a x\n",
            "a: &x 1\nb: *x\n",
            "apiVersion: v1\nkind: Secret\n---\n---\n",
        ] {
            assert_eq!(
                has_documents(text, "t").unwrap(),
                !parse_stream(text, "t").unwrap().is_empty(),
                "{text:?}"
            );
        }
        for bad in [
            "a: b: c\n",
            "- a\nb: 1\n",
            "*undefined\n",
            "{a: 1\n",
            "\"open\n",
        ] {
            assert!(has_documents(bad, "t").is_err(), "{bad:?} accepted");
            assert!(
                parse_stream(bad, "t").is_err(),
                "{bad:?}: parse_stream disagrees"
            );
        }
        let err = has_documents("a: [unclosed\n", "in.yaml").unwrap_err();
        assert!(
            err.to_string().starts_with("in.yaml: not valid YAML"),
            "{err}"
        );
    }

    #[test]
    fn legacy_octal_modes_read_like_kubectl() {
        let docs = parse_stream("defaultMode: 0400\n", "t").unwrap();
        assert_eq!(docs[0]["defaultMode"], json!(256));
    }
}
