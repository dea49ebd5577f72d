//! Fuzzes the Sealed Secrets controller certificate parser (`--cert FILE`): any bytes give a
//! certificate or an input error (exit 2), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = jiff::Timestamp::from_second(1_780_000_000).unwrap();
    if let Err(e) = sealkey::seal::sealed_secrets::ControllerCert::from_pem(data, "fuzz", now) {
        assert_eq!(e.exit_code(), 2);
    }
});
