//! The documented flow as a Flux user lives it: files written for a GitOps repository are ones
//! Flux decrypts (checked by the npm SOPS decoders, which also verify the MAC that
//! kustomize-controller does not check; the real controller judges in tests/real_flux.rs), writes
//! never surprise (an existing file is kept unless --force), host keys must cover the repository's
//! host, and settings a chosen output would ignore are refused instead.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use support::{age_keypair, run_in, tool};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Opens a SOPS file with the npm decoders, MAC checked (support::npm_sops_decode); the test
/// fails if they cannot.
fn flux_decrypts(file: &Path, identity: &Path) -> Vec<Value> {
    support::npm_sops_decode(file, identity)
        .unwrap_or_else(|e| panic!("Flux could not decrypt: {e}"))
}

#[test]
fn the_documented_gitops_command_writes_a_file_flux_decrypts() {
    // Was: `--seal-to age1... --out x.yaml.age` wrote one armored age blob, which Flux's
    // kustomize-controller never decrypts.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    std::fs::create_dir_all(dir.path().join("clusters/dev")).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--emit",
            "helmrelease",
            "--seal-to",
            &recipient,
            "--out",
            "clusters/dev/airflow-dags/",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Two objects: a directory, one file per object (sops opens one sealed object per file).
    let file = dir.path().join("clusters/dev/airflow-dags");
    let text = std::fs::read_to_string(file.join("secret-airflow-ssh-secret.sops.yaml")).unwrap();
    assert!(
        !text.contains("BEGIN AGE ENCRYPTED FILE-----\n") || text.contains("sops:"),
        "{text}"
    );
    let docs = flux_decrypts(&file, &identity);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["HelmRelease", "Secret"]);
    let key = support::private_key_in(&docs);
    // The decrypted key is the one whose public half sealkey printed.
    let public = support::ssh_public_of(dir.path(), &key);
    assert_eq!(
        support::bare(&public),
        support::bare(&support::printed_public_key(&out.stderr))
    );
    assert_eq!(
        docs[0]["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"],
        "airflow-ssh-secret"
    );

    // An explicit --seal age is the human/backup format: one armored file the age CLI opens.
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "age",
            "--seal-to",
            &recipient,
            "--out",
            "backup.age",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let armored = std::fs::read(dir.path().join("backup.age")).unwrap();
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    let plain = tool("age", &["-d", "-i", identity.to_str().unwrap()], &armored);
    assert!(String::from_utf8(plain).unwrap().contains("kind: Secret"));
}

#[test]
fn an_existing_out_file_is_kept_unless_force_and_the_message_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let create = |extra: &[&str]| {
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            recipient.as_str(),
            "--out",
            "s.sops.yaml",
        ];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args, b"")
    };
    let first = create(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let fp = stderr(&first)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .unwrap();
    let before = std::fs::read(dir.path().join("s.sops.yaml")).unwrap();
    let again = create(&[]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(err.contains("already exists") && err.contains(&fp), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("s.sops.yaml")).unwrap(),
        before,
        "file kept"
    );
    let forced = create(&["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert_ne!(
        std::fs::read(dir.path().join("s.sops.yaml")).unwrap(),
        before
    );
}

#[test]
fn create_points_at_registering_this_key_not_at_making_another() {
    // Was: "... or run again with --register", which makes a second key.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let out = run_in(
        dir.path(),
        &["create", "--repo", "acme/dags", "--seal-to", &recipient],
        b"",
    );
    let err = stderr(&out);
    assert!(err.contains("sealkey register --repo acme/dags"), "{err}");
    assert!(!err.contains("run again with --register"), "{err}");
    // Issue 21.10: the hinted command titled the key `sealkey acme/dags DATE`, not the
    // `sealkey CLUSTER/NAMESPACE/SECRET DATE` of --register, so rotate never found it.
    let title = err
        .split("--title '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no --title in the register hint: {err}"));
    let (slot, date) = title
        .strip_prefix("sealkey ")
        .and_then(|t| t.split_once(' '))
        .unwrap_or_else(|| panic!("not a sealkey title: {title}"));
    assert_eq!(slot.split('/').count(), 3, "{title}");
    assert!(slot.ends_with("/airflow-ssh-secret"), "{title}");
    // The moment as --register writes it (to the millisecond, UTC), which rotation orders by.
    assert!(
        sealkey::github::title::title_time(title).is_some() && date.ends_with('Z'),
        "{title}"
    );
}

#[test]
fn known_hosts_that_do_not_name_the_repositorys_host_are_refused() {
    // Was: a GHE known_hosts with a github.com repo URL exited 0 and git failed at runtime.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let key = sealkey::known_hosts::GITHUB_COM_PINNED[0]
        .strip_prefix("github.com ")
        .unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ghe = write("ghe", format!("ghe.example.com {key}\n"));
    let create = |extra: &[&str]| {
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            recipient.as_str(),
        ];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args, b"")
    };
    let out = create(&["--known-hosts", ghe.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no entry for github.com"), "{err}");
    assert!(out.stdout.is_empty());
    // The same file with the matching host is fine; a custom port needs `[host]:port`.
    let ok = create(&[
        "--known-hosts",
        ghe.to_str().unwrap(),
        "--git-host",
        "ghe.example.com",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let url = "ssh://git@ghe.example.com:2222/acme/dags.git";
    let out = create(&[
        "--known-hosts",
        ghe.to_str().unwrap(),
        "--git-host",
        "ghe.example.com",
        "--repo-url",
        url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("[ghe.example.com]:2222"));
    let ported = write("ported", format!("[ghe.example.com]:2222 {key}\n"));
    let out = create(&[
        "--known-hosts",
        ported.to_str().unwrap(),
        "--git-host",
        "ghe.example.com",
        "--repo-url",
        url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Hashed entries as OpenSSH writes them (`ssh-keygen -H`), read by ssh's own rules.
    let hashed = write("hashed", format!("github.com {key}\n"));
    tool("ssh-keygen", &["-H", "-f", hashed.to_str().unwrap()], b"");
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let out = create(&["--known-hosts", hashed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = create(&[
        "--known-hosts",
        hashed.to_str().unwrap(),
        "--git-host",
        "gitlab.com",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn known_hosts_pinned_prints_the_compiled_in_keys_offline_and_ssh_keygen_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    // An API URL nothing listens on: --pinned must not make a request.
    let out = run_in(dir.path(), &["known-hosts", "--pinned"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let f = dir.path().join("kh");
    std::fs::write(&f, &out.stdout).unwrap();
    let listed = String::from_utf8(tool("ssh-keygen", &["-lf", f.to_str().unwrap()], b"")).unwrap();
    // GitHub's published fingerprints.
    for fp in [
        "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
    ] {
        assert!(listed.contains(fp), "{listed}");
    }
}

#[test]
fn settings_the_chosen_output_would_ignore_are_refused_naming_who_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &["--release-name", "af"],
            "--emit helmrelease or extra-secrets",
        ),
        (
            &["--chart-version", "1.15.0"],
            "--emit helmrelease or extra-secrets",
        ),
        (&["--workload", "web"], "--emit mount"),
        (&["--fs-group", "65533"], "--emit mount"),
        (&["--conn-id", "git"], "--for airflow-git-bundle"),
    ];
    for (extra, takes) in cases {
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            recipient.as_str(),
        ];
        args.extend_from_slice(extra);
        let out = run_in(dir.path(), &args, b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains("silently ignored") && err.contains(takes),
            "{extra:?}: {err}"
        );
    }
    for (extra, why) in [
        (
            &["--emit", "helmrelease", "--chart-version", "latest"][..],
            "semver",
        ),
        (
            &["--emit", "helmrelease", "--branch", ""][..],
            "branch name",
        ),
        (
            &["--emit", "helmrelease", "--branch", "a..b"][..],
            "branch name",
        ),
    ] {
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            recipient.as_str(),
        ];
        args.extend_from_slice(extra);
        let out = run_in(dir.path(), &args, b"");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(why), "{extra:?}: {err}");
    }
}

#[test]
fn a_git_sync_mount_patch_works_for_git_syncs_user_by_default() {
    // Was: mode 0400 without fsGroup, then a warning that git-sync (uid 65533) cannot read it.
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "git-sync",
            "--emit",
            "mount",
            "--seal",
            "none",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let docs = support::yaml_docs(&out.stdout);
    let pod = &docs[1]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["fsGroup"], 65533);
    let vol = &pod["volumes"][0];
    assert_eq!(vol["secret"]["defaultMode"], 0o440);
}

/// A HelmRelease as a team would have it: pinned chart, executor, resources, another
/// extraSecrets entry, comments.
const USER_HELM_RELEASE: &str = "\
# Airflow for the data team (owned by #data-platform)
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: airflow
  namespace: airflow
spec:
  interval: 10m
  chart:
    spec:
      chart: airflow
      version: \"1.15.0\" # pinned: 1.16 breaks our plugins
      sourceRef:
        kind: HelmRepository
        name: apache-airflow
        namespace: flux-system
  values:
    executor: CeleryExecutor
    workers:
      replicas: 3
      resources:
        limits: {memory: 4Gi}
    extraSecrets:
      airflow-connections:
        stringData: |
          AIRFLOW_CONN_WAREHOUSE: 'postgres://warehouse'
    dags:
      gitSync:
        enabled: true
        repo: git@github.com:acme/dags.git
        branch: main
        # 5s keeps DAG edits snappy
        period: 5s
";

#[test]
fn merge_into_changes_only_the_owned_lines_of_the_users_helmrelease() {
    // Was: `--update hr.yaml --out hr.yaml` replaced the file with sealkey's own HelmRelease,
    // dropping `executor: CeleryExecutor` and moving the chart from 1.15.0 to 1.18.0.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let hr = dir.path().join("helmrelease.yaml");
    std::fs::write(&hr, USER_HELM_RELEASE).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--emit",
            "helmrelease",
            "--merge-into",
            "helmrelease.yaml",
            "--seal-to",
            &recipient,
            "--out",
            "airflow-ssh-secret.sops.yaml",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = std::fs::read_to_string(&hr).unwrap();
    // `diff` (an implementation we did not write) sees only added lines, all of them owned.
    std::fs::write(dir.path().join("orig.yaml"), USER_HELM_RELEASE).unwrap();
    let diff = Command::new("diff")
        .arg(dir.path().join("orig.yaml"))
        .arg(&hr)
        .output()
        .unwrap();
    let diff = String::from_utf8(diff.stdout).unwrap();
    let removed: Vec<&str> = diff.lines().filter(|l| l.starts_with("< ")).collect();
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with("> ")).collect();
    assert!(removed.is_empty(), "lines removed:\n{diff}");
    assert!(
        added[0].trim_start_matches("> ").trim() == "sshKeySecret: airflow-ssh-secret",
        "{diff}"
    );
    assert!(
        added[1].trim_start_matches("> ").trim() == "knownHosts: |",
        "{diff}"
    );
    assert!(
        added[2..]
            .iter()
            .all(|l| l.trim_start_matches("> ").trim().starts_with("github.com ")),
        "{diff}"
    );
    // Parsers we did not write read the user's settings unchanged plus sealkey's two values:
    // PyYAML (YAML 1.1, as Python tooling reads manifests) must see exactly what serde-saphyr does.
    let doc = &support::yaml_docs(merged.as_bytes())[0];
    let py = tool(
        "python3",
        &[
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ],
        merged.as_bytes(),
    );
    let py: Value = serde_json::from_slice(&py).unwrap();
    assert_eq!(&py, doc, "PyYAML reads the merged HelmRelease differently");
    assert_eq!(doc["spec"]["chart"]["spec"]["version"], "1.15.0");
    assert_eq!(doc["spec"]["values"]["executor"], "CeleryExecutor");
    assert_eq!(
        doc["spec"]["values"]["workers"]["resources"]["limits"]["memory"],
        "4Gi"
    );
    assert!(doc["spec"]["values"]["extraSecrets"]["airflow-connections"].is_object());
    let gs = &doc["spec"]["values"]["dags"]["gitSync"];
    assert_eq!(gs["sshKeySecret"], "airflow-ssh-secret");
    assert_eq!(gs["period"], "5s");
    assert!(gs["knownHosts"]
        .as_str()
        .unwrap()
        .contains("github.com ssh-ed25519"));
    // The key is in the sealed Secret only, which Flux decrypts.
    assert!(!merged.contains("PRIVATE") && !merged.contains("LS0tLS1"));
    let secret = flux_decrypts(&dir.path().join("airflow-ssh-secret.sops.yaml"), &identity);
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0]["kind"], "Secret");
    assert_eq!(secret[0]["metadata"]["name"], "airflow-ssh-secret");

    // Running it again changes nothing but what it owns (the same values: no diff at all).
    let again = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--emit",
            "helmrelease",
            "--merge-into",
            "helmrelease.yaml",
            "--seal-to",
            &recipient,
            "--out",
            "again.sops.yaml",
        ],
        b"",
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&hr).unwrap(), merged);
}

#[test]
fn a_helmrelease_that_cannot_be_merged_safely_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    for (name, text) in [
        ("flow", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: a}\nspec:\n  values: {dags: {gitSync: {enabled: true}}}\n"),
        ("two", "kind: HelmRelease\nmetadata: {name: a}\n---\nkind: HelmRelease\nmetadata: {name: b}\n"),
        ("none", "kind: ConfigMap\nmetadata: {name: a}\n"),
    ] {
        let hr = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&hr, text).unwrap();
        let out = run_in(
            dir.path(),
            &["create", "--repo", "acme/dags", "--emit", "helmrelease", "--merge-into", hr.to_str().unwrap(), "--seal-to", &recipient, "--out", "s.yaml"],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("cannot merge"), "{name}: {err}");
        assert_eq!(std::fs::read_to_string(&hr).unwrap(), text, "{name}: file changed");
        assert!(!dir.path().join("s.yaml").exists(), "{name}: a key was made and sealed");
    }
}

#[test]
fn emit_values_prints_the_values_fragment_and_seals_the_secret_to_out() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--emit",
            "values",
            "--branch",
            "prod",
            "--seal-to",
            &recipient,
            "--out",
            "s.sops.yaml",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let values = &support::yaml_docs(&out.stdout)[0];
    let gs = &values["dags"]["gitSync"];
    assert_eq!(gs["sshKeySecret"], "airflow-ssh-secret");
    assert_eq!(gs["branch"], "prod");
    assert_eq!(gs["repo"], "git@github.com:acme/dags.git");
    assert!(gs["knownHosts"]
        .as_str()
        .unwrap()
        .contains("github.com ssh-ed25519"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("LS0t"));
    let secret = flux_decrypts(&dir.path().join("s.sops.yaml"), &identity);
    assert_eq!(secret[0]["metadata"]["name"], "airflow-ssh-secret");
    // Without --out there is nowhere for the key: refused before a key exists.
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--emit",
            "values",
            "--seal-to",
            &recipient,
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!stderr(&out).contains("public key"), "a key was generated");
}

#[test]
fn update_over_a_helmrelease_sealkey_did_not_write_is_refused_not_replaced() {
    // The reproduction with a SOPS HelmRelease the team sealed themselves: re-sealing
    // over it would have replaced their HelmRelease with sealkey's.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let theirs = run_in(
        dir.path(),
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
            "--out",
            "hr.sops.yaml",
        ],
        USER_HELM_RELEASE.as_bytes(),
    );
    assert_eq!(theirs.status.code(), Some(0), "{}", stderr(&theirs));
    let before = std::fs::read(dir.path().join("hr.sops.yaml")).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--emit",
            "extra-secrets",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--update",
            "hr.sops.yaml",
            "--identity",
            identity.to_str().unwrap(),
            "--out",
            "hr.sops.yaml",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sealkey did not write it") && err.contains("--merge-into"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("hr.sops.yaml")).unwrap(),
        before,
        "file changed"
    );
}

#[test]
fn inspect_shows_what_a_sealed_file_holds_without_decrypting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let made = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--emit",
            "helmrelease",
            "--seal-to",
            &recipient,
            "--out",
            "f/",
        ],
        b"",
    );
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let fp = stderr(&made)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .unwrap();
    // JSON: kinds, names, recipients, encrypted paths, MAC, the key's fingerprint; no identity given.
    let out = run_in(dir.path(), &["inspect", "f", "--format", "json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "documents");
    let docs = v["documents"].as_array().unwrap();
    assert_eq!(docs[0]["kind"], "HelmRelease");
    assert_eq!(docs[1]["kind"], "Secret");
    assert_eq!(docs[1]["namespace"], "dev");
    assert_eq!(docs[1]["sops"]["age_recipients"][0], recipient.as_str());
    assert_eq!(docs[1]["sops"]["encrypted_paths"][0], "data.gitSshKey");
    assert_eq!(docs[1]["sops"]["mac"], true);
    assert_eq!(docs[1]["fingerprint_claimed"], fp.as_str());
    assert!(docs
        .iter()
        .all(|d| d["readable_secret_paths"].as_array().unwrap().is_empty()));
    // age: recipient types and count.
    run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "age",
            "--seal-to",
            &recipient,
            "--out",
            "b.age",
        ],
        b"",
    );
    let out = run_in(dir.path(), &["inspect", "b.age"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("age file (armored)") && text.contains("1 x X25519"),
        "{text}"
    );
    // A plaintext Secret: exit 1, the path named, the value not printed.
    let plain = run_in(
        dir.path(),
        &["create", "--repo", "acme/dags", "--seal", "none"],
        b"",
    );
    let out = run_in(dir.path(), &["inspect", "-"], &plain.stdout);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("IN CLEAR: data.gitSshKey"), "{text}");
    assert!(!text.contains("LS0t"), "{text}");
    // A SealedSecret made for an openssl certificate: scope and keys.
    let cert = support::controller_cert(dir.path());
    run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "sealed-secrets",
            "--cert",
            cert.to_str().unwrap(),
            "--scope",
            "namespace-wide",
            "--out",
            "ss.yaml",
        ],
        b"",
    );
    let out = run_in(dir.path(), &["inspect", "ss.yaml", "--format", "json"], b"");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["documents"][0];
    assert_eq!(d["kind"], "SealedSecret");
    assert_eq!(d["sealed_secret"]["scope"], "namespace-wide");
    assert_eq!(d["sealed_secret"]["keys"][0], "gitSshKey");
}

/// `create --emit helmrelease --merge-into hr.sops.yaml` in `dir`, with `--identity` when given.
fn merge(dir: &Path, identity: Option<&Path>, recipient: &str, out: &str) -> Output {
    let mut args = vec![
        "create",
        "--repo",
        "acme/dags",
        "-n",
        "airflow",
        "--emit",
        "helmrelease",
        "--merge-into",
        "hr.sops.yaml",
        "--seal-to",
        recipient,
        "--out",
        out,
    ];
    let identity = identity.map(|p| p.to_str().unwrap().to_string());
    if let Some(id) = &identity {
        args.extend(["--identity", id.as_str()]);
    }
    run_in(dir, &args, b"")
}

/// Issue 12 B, a SOPS HelmRelease: `--merge-into FILE --identity ID` on the user's sealed
/// HelmRelease (only Secret data encrypted, or all of `values` as people seal a HelmRelease
/// with secrets in it) changes only the owned lines and the `sops` block's `mac` and
/// `lastmodified`; comments added after sealing stay; Flux's decoder opens it to the user's
/// values plus sealkey's two. Was: refused ("only a plain HelmRelease is merged").
#[test]
fn merge_into_a_sops_helmrelease_changes_only_owned_lines_and_flux_still_decrypts_it() {
    for regex in ["^(data|stringData)$", "^(values)$"] {
        let dir = tempfile::tempdir().unwrap();
        let (identity, recipient) = age_keypair(dir.path());
        let sealed = run_in(
            dir.path(),
            &[
                "seal",
                "--seal",
                "sops",
                "--seal-to",
                &recipient,
                "--encrypted-regex",
                regex,
                "--out",
                "hr.sops.yaml",
            ],
            USER_HELM_RELEASE.as_bytes(),
        );
        assert_eq!(sealed.status.code(), Some(0), "{}", stderr(&sealed));
        let hr = dir.path().join("hr.sops.yaml");
        // Comments the team added after sealing (SOPS leaves comments alone).
        let original = format!(
            "# sealed for prod: see the runbook\n{}",
            std::fs::read_to_string(&hr).unwrap().replacen(
                "  values:\n",
                "  values:\n    # chart values below\n",
                1
            )
        );
        std::fs::write(&hr, &original).unwrap();
        let before = flux_decrypts(&hr, &identity);
        let out = merge(
            dir.path(),
            Some(&identity),
            &recipient,
            "airflow-ssh-secret.sops.yaml",
        );
        assert_eq!(out.status.code(), Some(0), "{regex}: {}", stderr(&out));
        let merged = std::fs::read_to_string(&hr).unwrap();
        // `diff`: removed lines are the old mac and lastmodified only; added ones are those two
        // and sealkey's values.
        std::fs::write(dir.path().join("orig.yaml"), &original).unwrap();
        let diff = Command::new("diff")
            .arg(dir.path().join("orig.yaml"))
            .arg(&hr)
            .output()
            .unwrap();
        let diff = String::from_utf8(diff.stdout).unwrap();
        let key = |l: &str| {
            l[2..]
                .trim()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let removed: Vec<String> = diff
            .lines()
            .filter(|l| l.starts_with("< "))
            .map(key)
            .collect();
        let added: Vec<String> = diff
            .lines()
            .filter(|l| l.starts_with("> "))
            .map(key)
            .collect();
        // (lastmodified has second precision: within the second of sealing it reads the same.)
        assert!(
            removed.contains(&"mac".to_string())
                && removed.iter().all(|k| k == "mac" || k == "lastmodified"),
            "{regex}:\n{diff}"
        );
        assert!(
            added.contains(&"sshKeySecret".to_string())
                && added.contains(&"knownHosts".to_string()),
            "{regex}:\n{diff}"
        );
        assert!(
            added
                .iter()
                .all(|k| ["sshKeySecret", "knownHosts", "lastmodified", "mac"]
                    .contains(&k.as_str())
                    || k.starts_with("github.com ")),
            "{regex}:\n{diff}"
        );
        assert!(
            merged.starts_with("# sealed for prod: see the runbook\n")
                && merged.contains("    # chart values below\n")
        );
        if regex == "^(values)$" {
            assert!(
                merged.contains("sshKeySecret: ENC[AES256_GCM,"),
                "{regex}: owned value not encrypted:\n{merged}"
            );
            assert!(
                !merged.contains("github.com ssh-ed25519"),
                "{regex}: known_hosts in clear"
            );
        }
        // Flux's view: the user's HelmRelease plus sealkey's two values, nothing else changed.
        let after = flux_decrypts(&hr, &identity);
        let mut expected = before[0].clone();
        let gs = &after[0]["spec"]["values"]["dags"]["gitSync"];
        assert_eq!(gs["sshKeySecret"], "airflow-ssh-secret", "{regex}");
        assert!(
            gs["knownHosts"]
                .as_str()
                .unwrap()
                .contains("github.com ssh-ed25519"),
            "{regex}"
        );
        expected["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"] = gs["sshKeySecret"].clone();
        expected["spec"]["values"]["dags"]["gitSync"]["knownHosts"] = gs["knownHosts"].clone();
        assert_eq!(after[0], expected, "{regex}: something else changed");
        assert_eq!(after[0]["spec"]["chart"]["spec"]["version"], "1.15.0");

        // A value altered after sealing: the merge refuses (MAC) and leaves the file as it was.
        let tampered = merged.replacen("CeleryExecutor", "KubernetesExecutor", 1);
        if tampered != merged {
            std::fs::write(&hr, &tampered).unwrap();
            let out = merge(dir.path(), Some(&identity), &recipient, "again.sops.yaml");
            assert_eq!(out.status.code(), Some(2), "{regex}: {}", stderr(&out));
            assert_eq!(std::fs::read_to_string(&hr).unwrap(), tampered);
            assert!(!dir.path().join("again.sops.yaml").exists());
        }
        // Without the identity: refused, naming --identity.
        std::fs::write(&hr, &merged).unwrap();
        let out = merge(dir.path(), None, &recipient, "again.sops.yaml");
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("--identity"), "{}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&hr).unwrap(), merged);
    }
}

// issue 21 item 14: `seal --seal sops` drops YAML comments (the sops CLI keeps them) and nothing
// said so. `seal --help` and docs/gitops.md now say what each method does; this checks they are
// right.
#[test]
fn seal_help_says_what_happens_to_yaml_comments_and_it_is_so() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let help = run_in(dir.path(), &["seal", "--help"], b"");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(
        help.contains("`--seal age` keeps the input byte for byte, comments included")
            && help.contains("without its comments"),
        "{help}"
    );
    let input = "# note: rotated monthly\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: aGk=\n";
    for (method, kept) in [("age", true), ("sops", false)] {
        let out = format!("o.{method}");
        let sealed = run_in(
            dir.path(),
            &[
                "seal",
                "--seal",
                method,
                "--seal-to",
                &recipient,
                "--out",
                &out,
            ],
            input.as_bytes(),
        );
        assert_eq!(sealed.status.code(), Some(0), "{}", stderr(&sealed));
        let opened = run_in(
            dir.path(),
            &["unseal", "--identity", identity.to_str().unwrap(), &out],
            b"",
        );
        assert_eq!(opened.status.code(), Some(0), "{}", stderr(&opened));
        let text = String::from_utf8_lossy(&opened.stdout);
        assert_eq!(
            text.contains("# note: rotated monthly"),
            kept,
            "{method}: {text}"
        );
    }
}
