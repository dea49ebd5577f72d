//! Fuzzes the audit's input parser and rules: any bytes, as a file, must give findings or an
//! input error naming a line, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkey::audit::{audit_bytes, RuleFilter};

fuzz_target!(|data: &[u8]| {
    let result = audit_bytes("fuzz.yaml", data, RuleFilter::default());
    if let Some(e) = result.error() {
        assert!(e.line.is_some_and(|l| l >= 1), "an input error names a line");
    }
    for f in result.findings() {
        assert!(f.line.is_some(), "a file finding has a line");
    }
});
