//! Differential YAML check: hostile strings go into every user- or
//! server-controlled field that reaches YAML output, and four parsers we did not write must read
//! the output as the same, intended objects: PyYAML (YAML 1.1, as Python tools read manifests),
//! Go's gopkg.in/yaml.v3, sigs.k8s.io/yaml after kubectl's line-based document split (what
//! kubectl, kustomize and Flux do), and serde-saphyr. Go's two are one probe built from the Go
//! module proxy (tests/judges/yaml-oracle). A value a parser reads differently, an extra document (the
//! ClusterRoleBinding a U+2028 used to smuggle in), or a parse error fails the test; a flag that
//! refuses the value (exit 2) passes, and the count of each is printed.

mod support;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use support::{age_keypair, run, tool, yaml_gen};

/// Strings that break naive emitters: YAML 1.1 line breaks, controls, indicators, implicit
/// types of YAML 1.1 and 1.2, document markers, quotes, non-ASCII.
pub const HOSTILE: &[&str] = &[
    "c\u{2028}---\u{2028}apiVersion: rbac.authorization.k8s.io/v1\u{2028}kind: ClusterRoleBinding\u{2028}metadata: {name: pwned}",
    "x\u{2029}y", "x\u{85}y", "\u{1b}]0;title\u{7}", "\u{1b}[2J", "x\ry", "x\ty", "\u{feff}x", "x\u{7f}\u{9b}",
    "x\0y", "x: y", "- x", "#x", "a #b", "'q'", "\"dq\"", "&a", "*a", "!tag", "%x", "@x", "`x", "|", ">",
    "? x", "{a: 1}", "[x]", "yes", "No", "on", "OFF", "y", "~", "null", "0x10", "0o17", "017", "1_000",
    "1e3", "1.5e+3", ".5", "+1", "-.inf", ".NaN", "2001-1-1", "2001-12-14t21:59:43.10-05:00", "1:20",
    "<<", "=", "---", "...", "--- x", "a\n---\nb", "a\n...\nb", "x ", " x", "\\", "\u{a0}x", "é",
    "\u{1F600}", "\u{200b}", "\u{202e}rtl", "a\u{2028}", "\n", "", "a:b", "a,b", "-", "?", ":",
];

/// The Go checker (tests/judges/yaml-oracle), built by scripts/install-test-deps from the Go
/// module proxy at the versions kubectl and Flux build with.
fn go_oracle() -> PathBuf {
    support::real_cluster::judge("yaml-oracle")
}

/// Numbers as f64 (see yaml_gen::normalized; floats are compared with yaml_gen::same).
fn norm(v: &Value) -> Value {
    yaml_gen::normalized(v)
}

/// Each stream as read by PyYAML, yaml.v3, sigs.k8s.io/yaml and serde-saphyr; panics with the
/// stream and every reading unless all four agree. Returns the agreed documents.
fn agreed(streams: &[String]) -> Vec<Vec<Value>> {
    let input = serde_json::to_vec(streams).unwrap();
    let go: Vec<Value> =
        serde_json::from_slice(&tool(go_oracle().to_str().unwrap(), &[], &input)).unwrap();
    let py: Vec<Value> = serde_json::from_slice(&tool("python3", &["-c", PYYAML], &input)).unwrap();
    streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let saphyr: Value = match serde_saphyr::from_multiple::<Value>(s) {
                Ok(d) => Value::Array(d.into_iter().filter(|d| !d.is_null()).collect()),
                Err(e) => json!({"error": e.to_string()}),
            };
            let readings = [
                ("pyyaml", norm(&py[i])),
                ("yaml.v3", norm(&go[i]["yamlv3"])),
                ("sigs.k8s.io/yaml", norm(&go[i]["sigs"])),
                ("serde-saphyr", norm(&saphyr)),
            ];
            for (name, r) in &readings {
                assert!(
                    r.is_array() && yaml_gen::same(r, &readings[0].1),
                    "parsers disagree on stream {i}: {name} vs pyyaml at {}\nstream: {s:?}",
                    first_diff(r, &readings[0].1, String::new())
                );
            }
            readings[0].1.as_array().unwrap().clone()
        })
        .collect()
}

const PYYAML: &str = r#"
import sys, json, yaml
out = []
for s in json.load(sys.stdin):
    try:
        out.append([d for d in yaml.safe_load_all(s) if d is not None])
    except Exception as e:
        out.append({"error": str(e)})
print(json.dumps(out, default=str))
"#;

/// Where two readings first differ, with both values there.
fn first_diff(a: &Value, b: &Value, at: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w == v => {}
                    Some(w) => return first_diff(v, w, format!("{at}.{k:?}")),
                    None => return format!("{at}: key {k:?} only in the first"),
                }
            }
            format!(
                "{at}: keys only in the second: {:?}",
                y.keys().filter(|k| !x.contains_key(*k)).collect::<Vec<_>>()
            )
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_diff(v, w, format!("{at}[{i}]")))
            .unwrap_or_default(),
        _ => format!("{at}: {a:?} vs {b:?}"),
    }
}

/// JSON-like text (YAML flow style) with DEL and every non-ASCII character escaped (`\uXXXX`,
/// `\UXXXXXXXX`).
fn ascii_json(v: &Value) -> String {
    let mut out = String::new();
    for c in serde_json::to_string(v).unwrap().chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else if (c as u32) > 0xFFFF {
            // YAML's escape for astral characters (JSON's surrogate pairs are not YAML).
            out.push_str(&format!("\\U{:08X}", c as u32));
        } else {
            out.push_str(&format!("\\u{:04X}", c as u32));
        }
    }
    out
}

/// Whether `needle` is a string somewhere in `v` (keys included).
fn holds(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s == needle || s.contains(needle),
        Value::Array(a) => a.iter().any(|x| holds(x, needle)),
        Value::Object(m) => m.iter().any(|(k, x)| k == needle || holds(x, needle)),
        _ => false,
    }
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn hostile_flag_values_are_refused_or_read_identically_by_four_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    // (flag, the --for/--emit that reads it)
    let flags: &[(&str, &[&str])] = &[
        ("--secret-name", &["--for", "git-sync", "--emit", "mount"]),
        ("--comment", &["--for", "flux"]),
        ("--release-name", &["--emit", "helmrelease"]),
        ("--chart-version", &["--emit", "helmrelease"]),
        ("--chart-source", &["--emit", "helmrelease"]),
        ("--branch", &["--emit", "helmrelease"]),
        ("--sub-path", &["--emit", "helmrelease"]),
        ("--conn-id", &["--for", "airflow-git-bundle"]),
        ("--workload", &["--for", "git-sync", "--emit", "mount"]),
        ("--container", &["--for", "git-sync", "--emit", "mount"]),
        ("--repo-url", &["--for", "argocd"]),
        ("--git-host", &["--for", "flux"]),
        ("--cluster", &["--for", "flux"]),
        ("--namespace", &["--for", "flux"]),
    ];
    let mut streams = Vec::new();
    let mut expect = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for (flag, shape) in flags {
        // argv cannot carry NUL.
        for value in HOSTILE.iter().filter(|v| !v.contains('\0')) {
            for seal in [
                &["--seal", "none"][..],
                &["--seal", "sops", "--seal-to", &recipient],
            ] {
                let mut args = vec!["create", "--repo", "acme/dags"];
                args.extend_from_slice(shape);
                args.extend_from_slice(seal);
                let flag_value = format!("{flag}={value}");
                args.push(&flag_value);
                let out = run(&args, b"");
                match out.status.code() {
                    Some(0) => {
                        accepted += 1;
                        // The same objects as with a harmless value.
                        let mut plain_args = vec!["create", "--repo", "acme/dags"];
                        plain_args.extend_from_slice(shape);
                        plain_args.extend_from_slice(seal);
                        let base = run(&plain_args, b"");
                        let base_kinds = kinds(&support::yaml_docs(&base.stdout));
                        streams.push(String::from_utf8(out.stdout).unwrap());
                        expect.push((
                            format!("{flag_value:?} {seal:?}"),
                            base_kinds,
                            value.to_string(),
                        ));
                    }
                    Some(2) => refused += 1,
                    other => panic!(
                        "{flag}={value:?}: exit {other:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }
    }
    let readings = agreed(&streams);
    for ((label, base_kinds, value), docs) in expect.iter().zip(&readings) {
        assert_eq!(&kinds(docs), base_kinds, "{label}: objects changed");
        // Where the value is accepted and lands in clear as it is (a name, a branch), it arrives
        // intact. (--comment lands base64'd in identity.pub, --conn-id inside a JSON string, ...)
        let in_clear = [
            "--secret-name",
            "--release-name",
            "--chart-version",
            "--branch",
            "--workload",
            "--container",
            "--namespace",
        ];
        // (SOPS encrypts ConfigMap and Secret data, so only plaintext output shows them all.)
        if !value.trim().is_empty()
            && label.ends_with("[\"--seal\", \"none\"]")
            && in_clear
                .iter()
                .any(|f| label.starts_with(&format!("\"{f}=")))
        {
            assert!(
                holds(&Value::Array(docs.clone()), value),
                "{label}: value not found intact"
            );
        }
    }
    eprintln!(
        "{} flag values: {accepted} accepted and read identically by 4 parsers, {refused} refused (exit 2)",
        accepted + refused
    );
    assert!(
        accepted > 100,
        "too few accepted values to prove anything: {accepted}"
    );
}

#[test]
fn seal_and_unseal_of_hostile_keys_and_values_are_read_identically_by_four_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let mut annotations = serde_json::Map::new();
    let mut data = serde_json::Map::new();
    for (i, h) in HOSTILE.iter().enumerate() {
        annotations.insert(format!("v{i}"), json!(h));
        annotations.insert(format!("k{i}-{h}"), json!(i));
        data.insert(format!("d{i}"), json!(format!("secret-{i}-{h}")));
    }
    let input = vec![
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "dev", "annotations": annotations},
            "stringData": data}),
        // A custom resource: nothing in it is selected for encryption, all of it stays readable.
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "c"},
            "spec": {"list": HOSTILE, "nested": {"deep": [{"x": HOSTILE[0]}]}, "n": 1.5e300, "m": -7, "f": 0.1}}),
    ];
    // Input as JSON documents with every non-ASCII character escaped: a form all parsers read
    // alike (JSON leaves U+2028 raw, which is the bug this test is about).
    let text = input
        .iter()
        .map(ascii_json)
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert_eq!(
        norm(&Value::Array(
            agreed(std::slice::from_ref(&text))[0].clone()
        )),
        norm(&Value::Array(input.clone())),
        "the input itself"
    );

    let mut streams = Vec::new();
    // Plaintext to a pipe: sealkey's emitter on arbitrary objects.
    let plain = run(&["seal", "--seal", "none"], text.as_bytes());
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    streams.push(String::from_utf8(plain.stdout).unwrap());
    // SOPS: metadata and the custom resource stay readable; the Secret's values are encrypted.
    let sealed = run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        text.as_bytes(),
    );
    assert_eq!(
        sealed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    let sealed_text = String::from_utf8(sealed.stdout).unwrap();
    streams.push(sealed_text.clone());
    let f = dir.path().join("s.sops.yaml");
    std::fs::write(&f, &sealed_text).unwrap();
    // --with-plain: the Widget, with nothing selected, is written without a `sops` block
    // (issue 21 item 6) and printed only on request.
    let opened = run(
        &[
            "unseal",
            "--with-plain",
            "--identity",
            identity.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        opened.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    streams.push(String::from_utf8(opened.stdout).unwrap());

    let readings = agreed(&streams);
    let expected = norm(&Value::Array(input.clone()));
    assert_eq!(
        norm(&Value::Array(readings[0].clone())),
        expected,
        "seal --seal none"
    );
    assert_eq!(norm(&Value::Array(readings[2].clone())), expected, "unseal");
    let mut sops_docs = readings[1].clone();
    assert_eq!(sops_docs.len(), 2);
    for d in &mut sops_docs {
        d.as_object_mut().unwrap().remove("sops");
    }
    assert_eq!(norm(&sops_docs[0]["metadata"]), norm(&input[0]["metadata"]));
    assert_eq!(norm(&sops_docs[1]), norm(&input[1]));
}

#[test]
fn a_hostile_meta_answer_is_refused_not_written() {
    // A /meta whose ssh_keys smuggle a line break, a control or a second line.
    let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    for bad in [
        format!("{good} c\u{2028}---\u{2028}kind: ClusterRoleBinding"),
        format!("{good}\ngithub.com {good}"),
        format!("{good} \u{1b}]0;x\u{7}"),
        format!("{good} x\u{85}y"),
    ] {
        let body = json!({"ssh_keys": [good, bad]}).to_string();
        let port = serve_once_per_request(body);
        let child = Command::new(support::sealkey_bin())
            .args([
                "known-hosts",
                "--api-url",
                &format!("http://127.0.0.1:{port}"),
            ])
            .env_remove("GITHUB_TOKEN")
            .env_remove("GH_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&child.stderr);
        assert!(
            matches!(child.status.code(), Some(2 | 3)),
            "{bad:?}: {:?} {err}",
            child.status
        );
        assert!(
            child.stdout.is_empty(),
            "{bad:?}: wrote {:?}",
            String::from_utf8_lossy(&child.stdout)
        );
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{2028}'),
            "{err:?}"
        );
    }
}

/// A tiny HTTP server on 127.0.0.1 answering every request with `body` (JSON), for up to 20
/// connections or 20 s, whichever comes first.
fn serve_once_per_request(body: String) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut served = 0;
        while served < 20 && std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        body
                    );
                    let _ = s.write_all(resp.as_bytes());
                    served += 1;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    port
}

#[test]
fn emitter_output_for_generated_trees_is_read_identically_by_four_parsers() {
    // The emitter fuzz target's generator (tests/support/yaml_gen.rs), fed by a fixed PRNG, plus
    // any corpus a fuzz run left in fuzz/corpus/yaml_emitter: the same oracle as above.
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..400 {
        let bytes: Vec<u8> = (0..256)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        inputs.push(bytes);
    }
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/yaml_emitter");
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        inputs.extend(files.iter().take(2000).map(|f| std::fs::read(f).unwrap()));
    }
    let trees: Vec<Vec<Value>> = inputs.iter().map(|b| yaml_gen::documents(b)).collect();
    let streams: Vec<String> = trees
        .iter()
        .map(|docs| sealkey::yaml::to_yaml_stream(docs).to_string())
        .collect();
    let readings = agreed(&streams);
    for ((docs, read), text) in trees.iter().zip(&readings).zip(&streams) {
        assert!(
            yaml_gen::same(&Value::Array(read.clone()), &Value::Array(docs.clone())),
            "read back differently:\n{text:?}"
        );
    }
    eprintln!(
        "{} generated trees read identically by 4 parsers",
        trees.len()
    );
}

#[test]
fn dag_bundle_chart_values_and_a_migrated_helm_release_are_read_identically_by_four_parsers() {
    // The HelmRelease values of `create --dag-bundle`, and a HelmRelease moved by
    // `to-dag-bundle`; then the YAML strings inside them the chart parses again (extraEnv,
    // extraConfigMaps data).
    let fresh = String::from_utf8(support::ok(&run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--for",
            "airflow-chart",
            "--emit",
            "helmrelease",
            "--dag-bundle",
            "--sub-path",
            "dags/: #x",
            "--branch",
            "rel/2.0",
            "--seal",
            "none",
        ],
        b"",
    )))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hr = dir.path().join("hr.yaml");
    std::fs::write(
        &hr,
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: airflow\nspec:\n  values:\n    airflowVersion: \"3.0.2\"\n    extraEnv: |\n      - name: A\n        value: \"x: y\"\n    dags:\n      gitSync:\n        enabled: true\n        repo: git@github.com:acme/dags.git\n        branch: main\n        subPath: \"sources\"\n        period: 1m\n        sshKeySecret: airflow-ssh-secret\n",
    )
    .unwrap();
    support::ok(&run(&["to-dag-bundle", hr.to_str().unwrap()], b""));
    let migrated = std::fs::read_to_string(&hr).unwrap();
    let docs = agreed(&[fresh, migrated]);
    let mut inner = Vec::new();
    for stream in &docs {
        let values = &stream[0]["spec"]["values"];
        inner.push(values["extraEnv"].as_str().unwrap().to_string());
        for cm in values["extraConfigMaps"].as_object().unwrap().values() {
            inner.push(cm["data"].as_str().unwrap().to_string());
        }
    }
    let read = agreed(&inner);
    // The migrated extraEnv keeps the item that was there and adds the connection.
    assert_eq!(read[2][0][0]["value"], "x: y");
    assert_eq!(read[2][0][1]["name"], "AIRFLOW_CONN_GIT_DEFAULT");
    assert_eq!(
        docs[0][0]["spec"]["values"]["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]["subdir"],
        "dags/: #x"
    );
}
