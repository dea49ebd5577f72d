//! Fuzzes sealkey's YAML emitter (`sealkey::yaml::to_yaml_stream`) with object trees built from
//! the input bytes by tests/support/yaml_gen.rs: YAML indicators, YAML 1.1 implicit types, Unicode
//! line breaks, controls, non-ASCII, in keys and values. The oracle, in process: the output holds
//! no character a YAML 1.1 parser reads as a line break or refuses (nor a raw tab), and
//! serde-saphyr reads back exactly the documents given. tests/interop_yaml.rs sends trees from the
//! same generator to PyYAML, yaml.v3 and sigs.k8s.io/yaml as well.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/yaml_gen.rs"]
mod yaml_gen;

fuzz_target!(|data: &[u8]| {
    let docs = yaml_gen::documents(data);
    let text = sealkey::yaml::to_yaml_stream(&docs);
    if let Some(c) = text
        .chars()
        .find(|&c| c == '\t' || sealkey::yaml::is_unsafe_char(c))
    {
        panic!("raw U+{:04X} in emitted YAML:\n{:?}", c as u32, &*text);
    }
    let back: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("emitted YAML does not parse ({e}):\n{:?}", &*text));
    let back: Vec<serde_json::Value> = back.into_iter().filter(|d| !d.is_null()).collect();
    let want: Vec<serde_json::Value> = docs.iter().map(yaml_gen::normalized).collect();
    let got: Vec<serde_json::Value> = back.iter().map(yaml_gen::normalized).collect();
    assert_eq!(got, want, "read back differently:\n{:?}", &*text);
});
