//! Fuzzes the audit's input parser and rules: any bytes, as a file, must give findings or an
//! input error naming a line, never a panic, a hang or unbounded memory. Run twice per input:
//! with the default limits, and with a tiny expansion budget so the fuzzer reaches the
//! budget's refusal paths (anchors and aliases charged in bytes) from small inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealkey::audit::doc::Budget;
use sealkey::audit::{audit_bytes, Limits, RuleFilter};

fuzz_target!(|data: &[u8]| {
    let tiny = Limits {
        budget: Budget {
            nodes: 4_096,
            expanded_bytes: 16 * 1024,
        },
        ..Limits::default()
    };
    for limits in [Limits::default(), tiny] {
        let result = audit_bytes("fuzz.yaml", data, RuleFilter::default(), &limits);
        if let Some(e) = result.error() {
            assert!(e.line.is_some_and(|l| l >= 1), "an input error names a line");
        }
        for f in result.findings() {
            assert!(f.line.is_some(), "a file finding has a line");
        }
    }
});
