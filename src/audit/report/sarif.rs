//! SARIF 2.1.0 report for GitHub code scanning: rules up front, results streamed, and inputs that
//! could not be audited as tool execution notifications.

use crate::audit::summary::Summary;
use crate::audit::{Finding, InputError, Report, Rule, Stats};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The schema URI written into `$schema`.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Writes one SARIF log with one run.
pub struct SarifReport<'w> {
    out: Box<dyn Write + 'w>,
    first: bool,
    errors: Vec<InputError>,
}

fn rule_descriptor(rule: Rule) -> serde_json::Value {
    json!({
        "id": rule.id(),
        "name": rule.name(),
        "shortDescription": {"text": rule.title()},
        "fullDescription": {"text": rule.rationale()},
        "help": {
            "text": format!("{} Fix: {}.", rule.rationale(), rule.hint()),
            "markdown": format!("{}\n\n**Fix:** {}.\n\nSee docs/audit-rules.md#{}.", rule.rationale(), rule.hint(), rule.id().to_ascii_lowercase()),
        },
        "defaultConfiguration": {"level": rule.default_severity().sarif_level()},
        "properties": {"tags": ["security", "kubernetes", "secrets"]},
    })
}

/// A file name as a SARIF artifact URI: relative paths stay relative (to `%SRCROOT%`),
/// absolute ones become `file://` URIs; characters outside RFC 3986's unreserved set and `/` are
/// percent-encoded.
pub fn artifact_location(file: &str) -> serde_json::Value {
    let path = file.replace('\\', "/");
    let mut encoded = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    if path.starts_with('/') {
        json!({"uri": format!("file://{encoded}")})
    } else {
        let rel = encoded.trim_start_matches("./").to_string();
        json!({"uri": rel, "uriBaseId": "%SRCROOT%"})
    }
}

fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    for part in [
        f.rule.id(),
        f.file.as_deref().unwrap_or(""),
        f.namespace.as_deref().unwrap_or(""),
        &f.kind,
        &f.name,
        f.container.as_deref().unwrap_or(""),
        f.env.as_deref().unwrap_or(""),
        f.secret.as_deref().unwrap_or(""),
        f.key.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<'w> SarifReport<'w> {
    /// Writes the log's head and the rule descriptors.
    pub fn new(mut out: Box<dyn Write + 'w>) -> io::Result<Self> {
        let driver = json!({
            "name": "sealkey",
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "informationUri": env!("CARGO_PKG_REPOSITORY"),
            "rules": Rule::ALL.iter().map(|r| rule_descriptor(*r)).collect::<Vec<_>>(),
        });
        write!(
            out,
            "{{\"$schema\": \"{SCHEMA}\", \"version\": \"2.1.0\", \"runs\": [{{\"tool\": {{\"driver\": "
        )?;
        serde_json::to_writer(&mut out, &driver)?;
        out.write_all(b"}, \"columnKind\": \"unicodeCodePoints\", \"results\": [")?;
        Ok(SarifReport {
            out,
            first: true,
            errors: Vec::new(),
        })
    }
}

impl Report for SarifReport<'_> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let mut location = serde_json::Map::new();
        if let Some(file) = &f.file {
            let mut physical = json!({"artifactLocation": artifact_location(file)});
            if let Some(line) = f.line.filter(|l| *l > 0) {
                physical["region"] = json!({"startLine": line});
            }
            location.insert("physicalLocation".into(), physical);
        }
        let mut fqn = Vec::new();
        if let Some(ns) = &f.namespace {
            fqn.push(ns.as_str());
        }
        fqn.push(&f.kind);
        fqn.push(&f.name);
        if let Some(c) = &f.container {
            fqn.push(c);
        }
        location.insert(
            "logicalLocations".into(),
            json!([{"fullyQualifiedName": fqn.join("/"), "kind": "object"}]),
        );
        let mut properties = serde_json::Map::new();
        properties.insert("kind".into(), json!(f.kind));
        properties.insert("name".into(), json!(f.name));
        for (k, v) in [
            ("namespace", &f.namespace),
            ("container", &f.container),
            ("env", &f.env),
            ("secret", &f.secret),
            ("key", &f.key),
        ] {
            if let Some(v) = v {
                properties.insert(k.into(), json!(v));
            }
        }
        let result = json!({
            "ruleId": f.rule.id(),
            "ruleIndex": f.rule as usize,
            "level": f.severity.sarif_level(),
            "message": {"text": format!("{} Fix: {}.", f.message, f.hint)},
            "locations": [location],
            "partialFingerprints": {"sealkeyFinding/v1": fingerprint(f)},
            "properties": properties,
        });
        self.out
            .write_all(if self.first { b"\n  " } else { b",\n  " })?;
        self.first = false;
        serde_json::to_writer(&mut self.out, &result).map_err(io::Error::from)
    }

    fn input_error(&mut self, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    /// SARIF has no place for the consumption summary.
    fn wants_summary(&self) -> bool {
        false
    }

    fn finish(&mut self, _summary: &Summary, _stats: &Stats) -> io::Result<()> {
        let notifications: Vec<serde_json::Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut physical = json!({"artifactLocation": artifact_location(&e.file)});
                if let Some(line) = e.line.filter(|l| *l > 0) {
                    physical["region"] = json!({"startLine": line});
                    if let Some(col) = e.column.filter(|c| *c > 0) {
                        physical["region"]["startColumn"] = json!(col);
                    }
                }
                json!({
                    "level": "error",
                    "message": {"text": e.to_string()},
                    "locations": [{"physicalLocation": physical}],
                })
            })
            .collect();
        let invocation = json!({
            "executionSuccessful": self.errors.is_empty(),
            "toolExecutionNotifications": notifications,
        });
        self.out.write_all(b"\n], \"invocations\": [")?;
        serde_json::to_writer(&mut self.out, &invocation)?;
        self.out.write_all(b"]}]}\n")?;
        self.out.flush()
    }
}
