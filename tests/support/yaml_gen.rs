//! Object trees from bytes, built to break YAML emitters: keys and values drawn from YAML
//! indicators, YAML 1.1 implicit types, Unicode line breaks, controls and non-ASCII. Shared by the
//! emitter fuzz target (fuzz/fuzz_targets/yaml_emitter.rs, `#[path]`-included) and
//! tests/interop_yaml.rs, which sends generated trees to the four-parser oracle.
#![allow(dead_code)]

use serde_json::{Map, Number, Value};

/// Characters that matter to YAML, one per byte value below `PIECES.len()`.
const PIECES: &[&str] = &[
    "\n",
    "\t",
    "\r",
    " ",
    "#",
    ":",
    "-",
    "?",
    "'",
    "\"",
    "\\",
    "|",
    ">",
    "&",
    "*",
    "!",
    "%",
    "@",
    "`",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\u{2028}",
    "\u{2029}",
    "\u{85}",
    "\u{0}",
    "\u{1b}",
    "\u{7f}",
    "\u{9b}",
    "\u{feff}",
    "\u{a0}",
    "é",
    "\u{1F600}",
    "\u{fffe}",
    "~",
    ".",
    "0",
    "1",
    "e",
    "x",
    "_",
    "+",
    "=",
    "<<",
    "---",
    "...",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "N",
    "null",
    "true",
    "0x1F",
    "0o7",
    "017",
    "1_0",
    "1e3",
    ".inf",
    ".NaN",
    "2001-1-1",
    "1:20",
    "\u{202e}",
    "\u{200b}",
    "a: b",
    "- ",
    " #",
    "\n---\n",
    "\n...\n",
    "'\n'",
];

struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

fn string(b: &mut Bytes) -> String {
    let len = b.next() % 16;
    let mut s = String::new();
    for _ in 0..len {
        let x = b.next() as usize;
        if x < PIECES.len() {
            s.push_str(PIECES[x]);
        } else if x < 200 {
            s.push((b'a' + (x % 26) as u8) as char);
        } else {
            // Any scalar value from the next two bytes (surrogates skipped).
            let cp = ((x as u32 - 200) << 16) | (u32::from(b.next()) << 8) | u32::from(b.next());
            if let Some(c) = char::from_u32(cp) {
                s.push(c);
            }
        }
    }
    s
}

fn value(b: &mut Bytes, depth: usize) -> Value {
    let op = if depth >= 5 {
        b.next() % 6
    } else {
        b.next() % 8
    };
    match op {
        0 => Value::Null,
        1 => Value::Bool(b.next() & 1 == 1),
        2 => {
            let mut n = [0u8; 8];
            n.iter_mut().for_each(|x| *x = b.next());
            Value::from(i64::from_le_bytes(n) >> (b.next() % 64))
        }
        3 => {
            let mut n = [0u8; 8];
            n.iter_mut().for_each(|x| *x = b.next());
            let f = f64::from_le_bytes(n);
            Number::from_f64(if f.is_finite() { f } else { 0.5 })
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        4 | 5 => Value::String(string(b)),
        6 => {
            let mut m = Map::new();
            for _ in 0..b.next() % 5 {
                let k = string(b);
                m.insert(k, value(b, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..b.next() % 5).map(|_| value(b, depth + 1)).collect()),
    }
}

/// One to three documents from `data` (each a mapping, as Kubernetes objects are).
pub fn documents(data: &[u8]) -> Vec<Value> {
    let mut b = Bytes { data, at: 0 };
    let n = 1 + b.next() % 3;
    let mut docs = Vec::new();
    for _ in 0..n {
        let mut m = Map::new();
        for _ in 0..1 + b.next() % 6 {
            let k = string(&mut b);
            m.insert(k, value(&mut b, 1));
            if b.done() {
                break;
            }
        }
        docs.push(Value::Object(m));
    }
    docs
}

/// Numbers as f64: parsers agree on the value, not on 1 vs 1.0.
pub fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => Number::from_f64(n.as_f64().unwrap_or(0.0))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// Equal up to number representation, floats within 1e-12 relative: other parsers' readings come
/// back as JSON parsed by serde_json, whose default float parsing can be a few ULPs off.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
