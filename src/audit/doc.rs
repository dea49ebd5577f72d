//! The audit's input parser: a YAML (or JSON) stream read into documents whose every node knows
//! the line it starts on, so findings can point at `file:line`.
//!
//! Built on the event parser that serde-saphyr (and so kube) uses. Scalars keep their text and
//! whether they were plain; numbers are resolved only where a rule needs one ([`Node::as_int`]),
//! the way kubectl reads Kubernetes YAML (YAML 1.1: `0400` is octal). Anchors, aliases and `<<`
//! merge keys are expanded, within a node budget so an alias bomb is an error, not an outage.
//! Scalar text is wiped when a node is dropped: documents hold Secret values.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;
use zeroize::Zeroize;

/// Most nodes one input may expand to (aliases included) before it is refused.
pub const MAX_NODES: usize = 4_000_000;

/// One node of a document and the line (1-based) it starts on; 0 when it has no source line
/// (objects read from the cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line, or 0.
    pub line: u32,
    /// The value.
    pub value: Value,
}

/// A node's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A scalar's text after escape processing, and whether it was written plain (unquoted).
    Scalar(Text, bool),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order; keys are scalars' text (complex keys are rendered empty).
    Map(Vec<(Text, Node)>),
}

/// Scalar text that is zeroized when dropped.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text(Box<str>);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.into())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s.into_boxed_str())
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Text {
    // Text can be a Secret value: Debug shows its length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Text(<{} bytes>)", self.0.len())
    }
}

static NULL: Node = Node {
    line: 0,
    value: Value::Null,
};

impl Node {
    /// A node without a source line.
    pub fn new(value: Value) -> Self {
        Node { line: 0, value }
    }

    /// The value under `key` of a mapping (the last one if a key repeats, as JSON readers do).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_str() == key)
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at a path of mapping keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |node, key| node.get(key))
    }

    /// A scalar's text (`None` for null, sequences and mappings).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(t, _) => Some(t.as_str()),
            _ => None,
        }
    }

    /// The text at a path, if it is a scalar.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Node::as_str)
    }

    /// A sequence's items (empty for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// A mapping's entries (empty for anything else).
    pub fn entries(&self) -> &[(Text, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// Whether this is a mapping.
    pub fn is_map(&self) -> bool {
        matches!(self.value, Value::Map(_))
    }

    /// Whether this is null (or missing, via [`Node::get_or_null`]).
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The value under `key`, or a shared null node.
    pub fn get_or_null(&self, key: &str) -> &Node {
        self.get(key).unwrap_or(&NULL)
    }

    /// An integer, read like kubectl reads Kubernetes YAML: decimal, `0o`/`0x`, and YAML 1.1
    /// octal with a leading zero (`0400` = 256). Quoted scalars are not numbers.
    pub fn as_int(&self) -> Option<i64> {
        let Value::Scalar(t, true) = &self.value else {
            return None;
        };
        parse_int(t.as_str())
    }

    /// A YAML 1.1 boolean (`true`, `yes`, `on`, ... in any case); quoted text too, since env
    /// values and chart values are often quoted.
    pub fn as_bool(&self) -> Option<bool> {
        parse_bool(self.as_str()?)
    }
}

/// Parses an integer the YAML 1.1 way (see [`Node::as_int`]).
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim().replace('_', "");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let value = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if neg { -value } else { value })
}

/// Parses a YAML 1.1 / Go `strconv.ParseBool` boolean.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" | "1" | "t" => Some(true),
        "false" | "no" | "n" | "off" | "0" | "f" => Some(false),
        _ => None,
    }
}

/// Where and why an input could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, without quoting the input.
    pub problem: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.problem, self.line, self.column
        )
    }
}

/// Reads documents one at a time from a YAML or JSON stream; empty documents are skipped.
///
/// After an error the iterator ends: the documents before it were good and stay usable.
pub struct Documents<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    budget: usize,
    done: bool,
}

/// Starts reading `text`.
pub fn documents(text: &str) -> Documents<'_> {
    Documents {
        parser: Parser::new_from_str(text),
        budget: MAX_NODES,
        done: false,
    }
}

/// Reads every document of `text` (tests and small inputs).
pub fn parse_all(text: &str) -> Result<Vec<Node>, ParseError> {
    documents(text).collect()
}

enum Frame {
    Seq {
        line: u32,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: u32,
        anchor: usize,
        entries: Vec<(Text, Node)>,
        /// The pending key, whether it was plain, and its line.
        key: Option<(Text, bool, u32)>,
        first_key_line: Option<u32>,
    },
}

fn line_of(span: &Span) -> u32 {
    u32::try_from(span.start.line()).unwrap_or(u32::MAX)
}

fn node_count(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(_, v)| 1 + node_count(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

impl Documents<'_> {
    fn error_at(&mut self, span_line: usize, col: usize, problem: &str) -> ParseError {
        self.done = true;
        ParseError {
            line: span_line.max(1),
            column: col + 1,
            problem: problem.to_string(),
        }
    }

    /// Reads the next document's root, or `None` at the end of the stream.
    fn next_document(&mut self) -> Option<Result<Node, ParseError>> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, Node> = HashMap::new();
        let mut root: Option<Node> = None;
        loop {
            let (event, span) = match self.parser.next_event()? {
                Ok(ev) => ev,
                Err(e) => {
                    let m = *e.marker();
                    return Some(Err(self.error_at(m.line(), m.col(), "not valid YAML")));
                }
            };
            let line = line_of(&span);
            let complete: Option<(Node, usize)> = match event {
                Event::StreamStart => None,
                Event::StreamEnd => return None,
                Event::DocumentStart(..) => {
                    stack.clear();
                    anchors.clear();
                    root = None;
                    None
                }
                Event::DocumentEnd => match root.take() {
                    Some(node) if !node.is_null() => return Some(Ok(node)),
                    _ => None,
                },
                Event::Alias(id) => match anchors.get(&id) {
                    Some(node) => {
                        let n = node_count(node);
                        if n > self.budget {
                            return Some(Err(self.error_at(
                                span.start.line(),
                                span.start.col(),
                                "aliases expand to too many nodes",
                            )));
                        }
                        self.budget -= n;
                        Some((node.clone(), 0))
                    }
                    None => {
                        return Some(Err(self.error_at(
                            span.start.line(),
                            span.start.col(),
                            "alias to an unknown anchor",
                        )))
                    }
                },
                Event::Scalar(text, style, anchor, _tag) => {
                    let plain = style == ScalarStyle::Plain;
                    let value = if plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar(Text::from(&*text), plain)
                    };
                    Some((Node { line, value }, anchor))
                }
                Event::SequenceStart(_, anchor, _) => {
                    stack.push(Frame::Seq {
                        line,
                        anchor,
                        items: Vec::new(),
                    });
                    None
                }
                Event::MappingStart(_, anchor, _) => {
                    stack.push(Frame::Map {
                        line,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        first_key_line: None,
                    });
                    None
                }
                Event::SequenceEnd => match stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                    }) => Some((
                        Node {
                            line,
                            value: Value::Seq(items),
                        },
                        anchor,
                    )),
                    _ => {
                        return Some(Err(self.error_at(
                            span.start.line(),
                            span.start.col(),
                            "unbalanced sequence",
                        )))
                    }
                },
                Event::MappingEnd => match stack.pop() {
                    Some(Frame::Map {
                        line,
                        anchor,
                        entries,
                        first_key_line,
                        ..
                    }) => Some((
                        Node {
                            // A mapping is where its first key is (`{` may sit on a line of its own).
                            line: first_key_line.unwrap_or(line),
                            value: Value::Map(entries),
                        },
                        anchor,
                    )),
                    _ => {
                        return Some(Err(self.error_at(
                            span.start.line(),
                            span.start.col(),
                            "unbalanced mapping",
                        )))
                    }
                },
                // Comments, anchor metadata and unresolved-alias events are off by default.
                #[allow(unreachable_patterns)]
                _ => None,
            };
            let Some((node, anchor)) = complete else {
                continue;
            };
            if self.budget == 0 {
                return Some(Err(self.error_at(
                    span.start.line(),
                    span.start.col(),
                    "document has too many nodes",
                )));
            }
            self.budget -= 1;
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map {
                    entries,
                    key,
                    first_key_line,
                    ..
                }) => match key.take() {
                    None => {
                        let (k, plain) = match &node.value {
                            Value::Scalar(t, plain) => (t.clone(), *plain),
                            Value::Null => (Text::from(""), true),
                            // Complex keys never occur in Kubernetes objects.
                            _ => (Text::from(""), false),
                        };
                        first_key_line.get_or_insert(node.line);
                        *key = Some((k, plain, node.line));
                    }
                    Some((k, plain, key_line)) => {
                        if plain && k.as_str() == "<<" {
                            merge_into(entries, node);
                        } else {
                            // A value is where its key is: `volumes:` rather than the line
                            // of its first item, `key: |` rather than the block's first line.
                            let mut node = node;
                            node.line = key_line;
                            entries.push((k, node));
                        }
                    }
                },
            }
        }
    }
}

/// A `<<` merge key: entries of the merged mapping(s) that the mapping does not set itself.
fn merge_into(entries: &mut Vec<(Text, Node)>, merged: Node) {
    let sources: Vec<Node> = match merged.value {
        Value::Seq(items) => items,
        other => vec![Node {
            line: merged.line,
            value: other,
        }],
    };
    for source in sources {
        if let Value::Map(src) = source.value {
            for (k, v) in src {
                if !entries.iter().any(|(existing, _)| existing == &k) {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl Iterator for Documents<'_> {
    type Item = Result<Node, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_document();
        if next.is_none() {
            self.done = true;
        }
        next
    }
}

/// Converts a JSON value (an object read from the cluster) to a node without lines.
pub fn from_json(value: &serde_json::Value) -> Node {
    use serde_json::Value as J;
    Node::new(match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Scalar(Text::from(if *b { "true" } else { "false" }), true),
        J::Number(n) => Value::Scalar(Text::from(n.to_string()), true),
        J::String(s) => Value::Scalar(Text::from(s.as_str()), false),
        J::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        J::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Text::from(k.as_str()), from_json(v)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_lines_across_documents() {
        let docs =
            parse_all("a: 1\n---\nkind: Pod\nspec:\n  containers:\n  - name: x\n    env: []\n")
                .unwrap();
        assert_eq!(docs.len(), 2);
        let c = &docs[1].at(&["spec", "containers"]).unwrap().items()[0];
        assert_eq!(c.line, 6);
        assert_eq!(c.str_at(&["name"]), Some("x"));
    }

    #[test]
    fn legacy_octal_and_decimal_modes_read_like_kubectl() {
        let d = &parse_all("a: 0400\nb: 256\nc: \"0400\"\nd: 0o440\n").unwrap()[0];
        assert_eq!(d.get("a").unwrap().as_int(), Some(256));
        assert_eq!(d.get("b").unwrap().as_int(), Some(256));
        assert_eq!(d.get("c").unwrap().as_int(), None);
        assert_eq!(d.get("d").unwrap().as_int(), Some(288));
    }

    #[test]
    fn json_input_parses() {
        let d = &parse_all("{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"x\": 420}]}")
            .unwrap()[0];
        assert_eq!(d.at(&["kind"]).unwrap().as_str(), Some("List"));
        assert_eq!(
            d.get("items").unwrap().items()[0]
                .get("x")
                .unwrap()
                .as_int(),
            Some(420)
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let d = &parse_all("base: &b {x: 1, y: 2}\nuse: *b\nm:\n  <<: *b\n  y: 3\n").unwrap()[0];
        assert_eq!(d.str_at(&["use", "x"]), Some("1"));
        assert_eq!(d.str_at(&["m", "x"]), Some("1"));
        assert_eq!(d.str_at(&["m", "y"]), Some("3"));
    }

    #[test]
    fn alias_bomb_is_an_error_not_an_outage() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_all(&text).unwrap_err();
        assert!(err.problem.contains("too many nodes"), "{err}");
    }

    #[test]
    fn error_names_line_and_keeps_earlier_documents() {
        let mut docs = documents("kind: A\n---\nkind: B\nx: [unclosed\ny: SECRETVALUE\n");
        assert_eq!(docs.next().unwrap().unwrap().str_at(&["kind"]), Some("A"));
        let err = docs.next().unwrap().unwrap_err();
        assert!(err.line >= 4, "{err}");
        assert!(!err.to_string().contains("SECRETVALUE"));
        assert!(docs.next().is_none());
    }

    #[test]
    fn debug_never_shows_scalar_text() {
        let d = &parse_all("password: CANARY-VALUE\n").unwrap()[0];
        assert!(!format!("{d:?}").contains("CANARY"));
    }
}
