//! Fuzzes the age recipient parser (`--seal-to` values and recipients-file lines): any text gives
//! a recipient or an input error (exit 2), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            if let Err(e) = sealkey::seal::age::parse_recipient(line, "fuzz") {
                assert_eq!(e.exit_code(), 2);
            }
        }
    }
});
