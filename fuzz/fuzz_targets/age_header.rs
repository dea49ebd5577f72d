//! Fuzzes `sealkey unseal`'s age reader (armor, the stanza bound, the one-pass header hand-off to
//! the age crate, decryption): any bytes give plaintext or an error, never a panic, in time linear
//! in the header.
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
    let _ = sealkey::seal::age::unseal(data, identities(), "fuzz");
});
