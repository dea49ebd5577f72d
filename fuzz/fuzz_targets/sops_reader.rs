//! Fuzzes the SOPS reader behind `sealkey unseal`: any bytes give plaintext or an error, never a
//! panic. The identity is generated once per process; random input almost never matches it, so
//! this exercises YAML parsing, the `sops` block, ENC[...] values and the MAC checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn identities() -> &'static Vec<sealkey::seal::age::Identity> {
    static IDS: OnceLock<Vec<sealkey::seal::age::Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let text = sealkey::secret::AgeIdentityText::new(id.to_string().expose_secret().to_string());
        sealkey::seal::age::parse_identities(&text, "fuzz identity").unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sealkey::seal::sops::unseal(text, "fuzz", identities());
    }
});
