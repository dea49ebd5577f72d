//! The audit's input parser: a YAML (or JSON) stream read into documents whose every node knows
//! the line it starts on, so findings can point at `file:line`.
//!
//! Built on the event parser that serde-saphyr (and so kube) uses. Scalars keep their text and
//! whether they were plain; numbers are resolved only where a rule needs one ([`Node::as_int`]),
//! the way kubectl reads Kubernetes YAML (YAML 1.1: `0400` is octal). Anchors, aliases and `<<`
//! merge keys are expanded within a [`Budget`] (nodes, expanded bytes, nesting depth), so an
//! alias bomb is an input error, not an outage: the work and memory of one input are bounded by
//! its size plus [`MAX_EXPANDED_BYTES`], whatever its aliases say. Every step is linear in what
//! it produces (`<<` merges included), so parsing time is linear in input size plus expansion.
//! Scalar text is wiped when a node is dropped: documents hold Secret values.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::{HashMap, HashSet};
use zeroize::Zeroize;

/// Most nodes one input may expand to (aliases included) before it is refused.
pub const MAX_NODES: usize = 4_000_000;

/// Most bytes one input's anchors and aliases may copy (scalar text plus each copied node's own
/// memory, see [`Budget`]): 64 MiB, whatever the input's size. Real manifests use anchors for a
/// few shared blocks and stay far below it; an alias bomb reaches it after ~64 MiB of work.
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;

/// Deepest nesting a document may reach once aliases are expanded (the parser itself stops
/// at 256 levels of written nesting); deeper trees would exhaust the stack of recursive code.
pub const MAX_DEPTH: usize = 512;

/// What one input may cost once anchors and aliases are expanded; shared by all its documents.
///
/// An anchor's node is copied when it is defined and again at every alias to it. Each copy is
/// charged before it is made: its scalar and key text, plus `size_of::<Node>()` per node and
/// `size_of::<(Text, Node)>()` per mapping entry, so the charge is the memory the copy takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Nodes, aliases expanded.
    pub nodes: usize,
    /// Bytes copied by anchors and aliases.
    pub expanded_bytes: usize,
}

impl Default for Budget {
    /// [`MAX_NODES`] and [`MAX_EXPANDED_BYTES`].
    fn default() -> Self {
        Budget {
            nodes: MAX_NODES,
            expanded_bytes: MAX_EXPANDED_BYTES,
        }
    }
}

impl Budget {
    /// A budget proportional to a text's length, for YAML nested inside a scalar (the Airflow
    /// chart's `extraSecrets`): at most one node and four expanded bytes per byte of text, so
    /// parsing every copy of an aliased scalar stays linear in what the outer budget allowed.
    pub fn for_nested(text: &str) -> Self {
        let len = text.len().max(64);
        Budget {
            nodes: len.min(MAX_NODES),
            expanded_bytes: len.saturating_mul(4).min(MAX_EXPANDED_BYTES),
        }
    }
}

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
    /// Whether the input is over the [`Budget`] (or [`MAX_DEPTH`]) rather than malformed.
    pub over_budget: bool,
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
    budget: Budget,
    done: bool,
}

/// Starts reading `text` within the default [`Budget`].
pub fn documents(text: &str) -> Documents<'_> {
    documents_within(text, Budget::default())
}

/// Starts reading `text` within `budget`.
pub fn documents_within(text: &str, budget: Budget) -> Documents<'_> {
    Documents {
        parser: Parser::new_from_str(text),
        budget,
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
        /// Depth of the deepest item.
        deepest: usize,
    },
    Map {
        line: u32,
        anchor: usize,
        entries: Vec<(Text, Node)>,
        /// The pending key, whether it was plain, and its line.
        key: Option<(Text, bool, u32)>,
        first_key_line: Option<u32>,
        /// Depth of the deepest value.
        deepest: usize,
        /// The keys so far, built at the first `<<` merge and kept up to date after it, so
        /// merges cost the merged entries, not entries times merged entries.
        keys: Option<HashSet<Text>>,
    },
}

impl Frame {
    fn deepest(&mut self) -> &mut usize {
        match self {
            Frame::Seq { deepest, .. } | Frame::Map { deepest, .. } => deepest,
        }
    }
}

fn line_of(span: &Span) -> u32 {
    u32::try_from(span.start.line()).unwrap_or(u32::MAX)
}

/// What copying `node` costs as (nodes, bytes), walking no further than `limit` allows: the
/// walk itself is then bounded by the budget too. `None` when the copy would exceed `limit`.
fn copy_cost(node: &Node, limit: Budget) -> Option<(usize, usize)> {
    const NODE: usize = std::mem::size_of::<Node>();
    const ENTRY: usize = std::mem::size_of::<(Text, Node)>();
    let mut nodes = 0usize;
    let mut bytes = 0usize;
    let mut pending: Vec<&Node> = vec![node];
    while let Some(n) = pending.pop() {
        nodes += 1;
        bytes += NODE;
        match &n.value {
            Value::Scalar(t, _) => bytes += t.as_str().len(),
            Value::Seq(items) => pending.extend(items.iter()),
            Value::Map(entries) => {
                for (k, v) in entries {
                    bytes += ENTRY + k.as_str().len();
                    pending.push(v);
                }
            }
            Value::Null => {}
        }
        if nodes > limit.nodes || bytes > limit.expanded_bytes {
            return None;
        }
    }
    Some((nodes, bytes))
}

/// Depth of an anchored node (1 for a scalar), kept with it so an alias can be checked against
/// [`MAX_DEPTH`] without walking it.
type Anchored = (Node, usize);

impl Documents<'_> {
    fn error_at(&mut self, span_line: usize, col: usize, problem: &str) -> ParseError {
        self.done = true;
        ParseError {
            line: span_line.max(1),
            column: col + 1,
            problem: problem.to_string(),
            over_budget: false,
        }
    }

    fn over_budget_at(&mut self, span_line: usize, col: usize, problem: &str) -> ParseError {
        ParseError {
            over_budget: true,
            ..self.error_at(span_line, col, problem)
        }
    }

    /// Charges a copy of `node` to the budget; `false` (and nothing charged) when it does not fit.
    fn charge_copy(&mut self, node: &Node) -> bool {
        match copy_cost(node, self.budget) {
            Some((nodes, bytes)) => {
                self.budget.nodes -= nodes;
                self.budget.expanded_bytes -= bytes;
                true
            }
            None => false,
        }
    }

    /// Reads the next document's root, or `None` at the end of the stream.
    fn next_document(&mut self) -> Option<Result<Node, ParseError>> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, Anchored> = HashMap::new();
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
            // The completed node, its anchor id (0: none) and its depth.
            let complete: Option<(Node, usize, usize)> = match event {
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
                    Some((node, depth)) => {
                        if stack.len() + depth > MAX_DEPTH {
                            return Some(Err(self.over_budget_at(
                                span.start.line(),
                                span.start.col(),
                                &format!(
                                    "aliases expand to more than {MAX_DEPTH} levels of nesting"
                                ),
                            )));
                        }
                        if !self.charge_copy(node) {
                            return Some(Err(self.over_budget_at(
                                span.start.line(),
                                span.start.col(),
                                &format!(
                                    "aliases expand to more than the audit's budget ({} nodes, {} MiB copied); \
                                     write the repeated blocks out, or split the file",
                                    MAX_NODES,
                                    MAX_EXPANDED_BYTES >> 20
                                ),
                            )));
                        }
                        Some((node.clone(), 0, *depth))
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
                    Some((Node { line, value }, anchor, 1))
                }
                Event::SequenceStart(_, anchor, _) => {
                    stack.push(Frame::Seq {
                        line,
                        anchor,
                        items: Vec::new(),
                        deepest: 0,
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
                        deepest: 0,
                        keys: None,
                    });
                    None
                }
                Event::SequenceEnd => match stack.pop() {
                    Some(Frame::Seq {
                        line,
                        anchor,
                        items,
                        deepest,
                    }) => Some((
                        Node {
                            line,
                            value: Value::Seq(items),
                        },
                        anchor,
                        deepest + 1,
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
                        deepest,
                        ..
                    }) => Some((
                        Node {
                            // A mapping is where its first key is (`{` may sit on a line of its own).
                            line: first_key_line.unwrap_or(line),
                            value: Value::Map(entries),
                        },
                        anchor,
                        deepest + 1,
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
            let Some((node, anchor, depth)) = complete else {
                continue;
            };
            if self.budget.nodes == 0 {
                return Some(Err(self.over_budget_at(
                    span.start.line(),
                    span.start.col(),
                    "document has too many nodes",
                )));
            }
            self.budget.nodes -= 1;
            if anchor != 0 {
                // The anchor keeps its own copy: charged like an alias, or a chain of anchors
                // each holding the previous one would copy quadratically.
                if !self.charge_copy(&node) {
                    return Some(Err(self.over_budget_at(
                        span.start.line(),
                        span.start.col(),
                        &format!(
                            "anchors expand to more than the audit's budget ({} nodes, {} MiB copied); \
                             write the repeated blocks out, or split the file",
                            MAX_NODES,
                            MAX_EXPANDED_BYTES >> 20
                        ),
                    )));
                }
                anchors.insert(anchor, (node.clone(), depth));
            }
            if let Some(parent) = stack.last_mut() {
                let deepest = parent.deepest();
                *deepest = (*deepest).max(depth);
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map {
                    entries,
                    key,
                    first_key_line,
                    keys,
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
                            let keys = keys.get_or_insert_with(|| {
                                entries.iter().map(|(k, _)| k.clone()).collect()
                            });
                            merge_into(entries, keys, node);
                        } else {
                            // A value is where its key is: `volumes:` rather than the line
                            // of its first item, `key: |` rather than the block's first line.
                            let mut node = node;
                            node.line = key_line;
                            if let Some(keys) = keys {
                                keys.insert(k.clone());
                            }
                            entries.push((k, node));
                        }
                    }
                },
            }
        }
    }
}

/// A `<<` merge key: entries of the merged mapping(s) that the mapping does not set itself.
/// `keys` holds the keys of `entries`.
fn merge_into(entries: &mut Vec<(Text, Node)>, keys: &mut HashSet<Text>, merged: Node) {
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
                if keys.insert(k.clone()) {
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
        assert!(err.problem.contains("budget"), "{err}");
    }

    // Was: a budget on nodes only, so 100 aliases of a 64 KiB scalar, aliased 1000 times, were
    // 100k nodes but 6.4 GB of copies (27 s, 12.9 GB for the 69 KB file).
    #[test]
    fn aliases_of_a_large_scalar_are_budgeted_by_bytes_not_nodes() {
        let mut text = format!("s: &s \"{}\"\nl: &l [", "x".repeat(64 * 1024));
        text.push_str(&vec!["*s"; 100].join(","));
        text.push_str("]\nm: [");
        text.push_str(&vec!["*l"; 1000].join(","));
        text.push_str("]\n");
        let start = std::time::Instant::now();
        let err = parse_all(&text).unwrap_err();
        assert!(err.problem.contains("64 MiB"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // The same shape within a small budget: refused, however the budget is set.
        let small = Budget {
            nodes: MAX_NODES,
            expanded_bytes: 1 << 20,
        };
        assert!(documents_within(&text, small).next().unwrap().is_err());
    }

    // Was: each anchor kept an unbudgeted copy, so anchors nested in anchors copied
    // quadratically.
    #[test]
    fn nested_anchors_are_charged_for_their_copies() {
        let n = 100;
        let mut text = String::from("a: ");
        for i in 0..n {
            text.push_str(&format!("&a{i} [{}, ", "y".repeat(4096)));
        }
        text.push('x');
        text.push_str(&"]".repeat(n));
        text.push('\n');
        let tight = Budget {
            nodes: MAX_NODES,
            expanded_bytes: 1 << 20,
        };
        assert!(documents_within(&text, tight).next().unwrap().is_err());
        assert!(parse_all(&text).is_ok());
    }

    #[test]
    fn merges_keep_explicit_keys_and_first_merge_wins() {
        let d = &parse_all("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nm:\n  y: 0\n  <<: [*a, *b]\n  <<: *b\n  w: 3\n")
            .unwrap()[0];
        let m = d.get("m").unwrap();
        assert_eq!(m.str_at(&["y"]), Some("0"));
        assert_eq!(m.str_at(&["x"]), Some("1"));
        assert_eq!(m.str_at(&["z"]), Some("2"));
        assert_eq!(m.str_at(&["w"]), Some("3"));
        let keys: Vec<&str> = m.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["y", "x", "z", "w"]);
    }

    // Aliases can nest an anchored tree inside itself again and again, past the parser's own
    // depth limit: refused before recursive code (drop, rules) could overflow the stack.
    #[test]
    fn aliases_cannot_nest_deeper_than_max_depth() {
        let mut text = String::from("a0: &a0 [x]\n");
        for i in 1..100 {
            text.push_str(&format!(
                "a{i}: &a{i} {}*a{}{}\n",
                "[".repeat(10),
                i - 1,
                "]".repeat(10)
            ));
        }
        let err = parse_all(&text).unwrap_err();
        assert!(err.problem.contains("levels of nesting"), "{err}");
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
