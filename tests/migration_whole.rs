//! Migrations made whole (issue 21 items 4, 6, 7, 8, 9): moving the seed's HelmRelease off a key
//! in clear takes the clear entry out and names the old key to retire; files with nothing secret
//! stay editable; the host of the repository in the file decides its host keys; `--force` says
//! which key it replaced; Argo CD's known hosts are added to, never replaced.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use support::fake_github::{FakeGithub, TOKEN};
use support::{age_keypair, run_in, sealkey, ssh_keypair, tool};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ssh-keygen -l` of a public key file: `SHA256:...`.
fn fingerprint_of(public_file: &Path) -> String {
    let out = tool(
        "ssh-keygen",
        &["-l", "-f", public_file.to_str().unwrap()],
        b"",
    );
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// The seed's HelmRelease after its last step: the key in clear under `extraSecrets`, named by
/// `sshKeySecret`, next to another `extraSecrets` entry and the team's comments.
fn seed_release(b64_key: &str, with_other_entry: bool) -> String {
    let other = if with_other_entry {
        "      airflow-webserver-config:\n        stringData: |\n          WEBSERVER_NAME: dags\n"
    } else {
        ""
    };
    format!(
        "\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: airflow
  namespace: dev
spec:
  interval: 5m  # not too often
  releaseName: airflow-dev
  chart:
    spec:
      chart: airflow
      version: \"1.17.0\"
      sourceRef:
        kind: HelmRepository
        name: apache-airflow
        namespace: flux-system
  values:
    executor: \"KubernetesExecutor\"
    dags:
      persistence:
        enabled: False   # DAGs only from git
      gitSync:
        enabled: True
        repo: git@github.com:acme/dags.git
        branch: main
        subPath: \"sources\"
        wait: 60
        sshKeySecret: private-dags-repo
    extraSecrets:
      private-dags-repo:
        data: |
          gitSshKey: '{b64_key}'
{other}    webserver:
      replicas: 1
"
    )
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn merge_seed(dir: &Path, recipient: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "create",
        "--repo",
        "acme/dags",
        "-n",
        "dev",
        "--emit",
        "helmrelease",
        "--merge-into",
        "hr.yaml",
        "--seal-to",
        recipient,
        "--out",
        "airflow-ssh-secret.sops.yaml",
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args, b"")
}

/// Item 4. Was: the clear entry stayed (Helm's hook and Flux's sealed Secret both writing a
/// Secret, the old key in git and never revoked) and nothing said so.
#[test]
fn migrating_off_clear_extra_secrets_takes_the_clear_entry_out_and_names_the_old_key_to_retire() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let (old_key, _) = ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    let old_fp = fingerprint_of(&dir.path().join("old.TEST-ONLY.pub"));
    let encoded = b64(&std::fs::read(&old_key).unwrap());
    let original = seed_release(&encoded, true);
    std::fs::write(dir.path().join("hr.yaml"), &original).unwrap();

    let out = merge_seed(dir.path(), &recipient, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let merged = std::fs::read_to_string(dir.path().join("hr.yaml")).unwrap();
    assert!(
        !merged.contains(&encoded[..40]),
        "old key still in clear:\n{merged}"
    );
    let doc = &support::yaml_docs(merged.as_bytes())[0];
    let values = &doc["spec"]["values"];
    assert!(
        values["extraSecrets"].get("private-dags-repo").is_none(),
        "{merged}"
    );
    assert!(values["extraSecrets"]["airflow-webserver-config"].is_object());
    assert_eq!(
        values["dags"]["gitSync"]["sshKeySecret"],
        "airflow-ssh-secret"
    );
    assert_eq!(values["webserver"]["replicas"], 1);
    // Every line outside the entry and the owned values is kept byte for byte.
    let kept: Vec<&str> = original
        .lines()
        .filter(|l| {
            !l.contains("private-dags-repo") && !l.contains("gitSshKey") && l.trim() != "data: |"
        })
        .collect();
    let merged_lines: Vec<&str> = merged.lines().collect();
    for l in &kept {
        assert!(merged_lines.contains(l), "line lost: {l:?}\n{merged}");
    }
    // What was removed, what stays in history, how to retire the old key once the new is live.
    assert!(
        err.contains("values.extraSecrets.private-dags-repo"),
        "{err}"
    );
    assert!(err.contains(&old_fp), "old fingerprint not named: {err}");
    assert!(err.contains("git history"), "{err}");
    assert!(
        err.contains(&format!(
            "sealkey keys prune --repo acme/dags --retire {old_fp}"
        )),
        "{err}"
    );
    assert!(
        err.contains("kubectl -n dev delete secret private-dags-repo"),
        "{err}"
    );

    // The only entry: `extraSecrets` goes with it.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    std::fs::write(dir.path().join("hr.yaml"), seed_release(&encoded, false)).unwrap();
    let out = merge_seed(dir.path(), &recipient, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = std::fs::read_to_string(dir.path().join("hr.yaml")).unwrap();
    assert!(!merged.contains("extraSecrets"), "{merged}");
    assert!(
        merged.contains("    webserver:\n      replicas: 1\n"),
        "{merged}"
    );

    // An entry of the new Secret's name that holds no key: refused, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let text =
        seed_release(&encoded, true).replace("airflow-webserver-config", "airflow-ssh-secret");
    std::fs::write(dir.path().join("hr.yaml"), &text).unwrap();
    let out = merge_seed(dir.path(), &recipient, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("extraSecrets.airflow-ssh-secret") && err.contains("--secret-name"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hr.yaml")).unwrap(),
        text
    );
    assert!(!dir.path().join("airflow-ssh-secret.sops.yaml").exists());
}

/// Item 4, retiring: `keys prune --keep` deletes every other key (another cluster's too);
/// `--retire FP` deletes only that key, and never one a given sealed file still holds.
#[test]
fn keys_prune_retire_deletes_only_that_key_and_never_one_a_file_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGithub::start();
    let (_, old_pub) = ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    let (_, other_pub) = ssh_keypair(dir.path(), "ed25519", "other.TEST-ONLY");
    let old_fp = fingerprint_of(&dir.path().join("old.TEST-ONLY.pub"));
    fake.add_key(
        "acme/dags",
        &old_pub,
        "by hand",
        false,
        "2026-01-01T00:00:00Z",
        None,
    );
    fake.add_key(
        "acme/dags",
        &other_pub,
        "sealkey prod/dev/airflow-ssh-secret 2026-02-01",
        true,
        "2026-02-01T00:00:00Z",
        None,
    );
    let prune = |extra: &[&str]| {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN)
            .args([
                "keys",
                "prune",
                "--repo",
                "acme/dags",
                "--api-url",
                &fake.url(),
            ])
            .args(extra);
        support::run_cmd(c, None)
    };
    // A sealed file that still holds the old key: refused, nothing deleted.
    let held = dir.path().join("held.sops.yaml");
    std::fs::write(
        &held,
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    sealkey.io/fingerprint: {old_fp}\n"),
    )
    .unwrap();
    let out = prune(&["--retire", &old_fp, "--held-by", held.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("held.sops.yaml") && err.contains(&old_fp),
        "{err}"
    );
    assert_eq!(fake.keys("acme/dags").len(), 2);
    // Retired alone: the other key stays.
    let out = prune(&["--retire", &old_fp]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left = fake.keys("acme/dags");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        support::bare(left[0]["key"].as_str().unwrap()),
        support::bare(&other_pub)
    );
}

/// Item 6. Was: the HelmRelease got its own `sops` block although it holds no secret, so a
/// version bump by hand or by Renovate broke its MAC and Flux stalled the Kustomization.
#[test]
fn objects_with_nothing_secret_are_written_without_a_sops_block_and_stay_editable() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
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
            "f/",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Two objects: a directory with one file each; the HelmRelease's is plain.
    let file = dir.path().join("f");
    let hr_file = file.join("helmrelease-airflow.yaml");
    let text = std::fs::read_to_string(&hr_file).unwrap();
    let docs = support::yaml_docs(text.as_bytes());
    assert_eq!(docs[0]["kind"], "HelmRelease");
    assert!(docs[0].get("sops").is_none(), "HelmRelease sealed:\n{text}");
    let secret = std::fs::read(file.join("secret-airflow-ssh-secret.sops.yaml")).unwrap();
    assert!(support::yaml_docs(&secret)[0]["sops"].is_object());
    // A bot bumps the chart version.
    let bumped = text.replacen("version: \"1.18.0\"", "version: \"1.19.0\"", 1);
    assert_ne!(bumped, text, "{text}");
    std::fs::write(&hr_file, &bumped).unwrap();
    // Flux (the npm decoders, as kustomize-controller) still reads it.
    let flux = support::npm_sops_decode(&file, &identity).unwrap_or_else(|e| panic!("Flux: {e}"));
    assert_eq!(flux[0]["spec"]["chart"]["spec"]["version"], "1.19.0");
    // sealkey unseal opens the file, prints only what a MAC authenticates, and names the rest.
    let un = run_in(
        dir.path(),
        &["unseal", "--identity", identity.to_str().unwrap(), "f"],
        b"",
    );
    let err = stderr(&un);
    assert_eq!(un.status.code(), Some(0), "{err}");
    assert!(
        err.contains("not authenticated") && err.contains("HelmRelease"),
        "{err}"
    );
    let plain = support::yaml_docs(&un.stdout);
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0]["kind"], "Secret");
    // --with-plain prints it too, as written (as Flux applies it), and still says so.
    let un = run_in(
        dir.path(),
        &[
            "unseal",
            "--with-plain",
            "--identity",
            identity.to_str().unwrap(),
            "f",
        ],
        b"",
    );
    let err = stderr(&un);
    assert_eq!(un.status.code(), Some(0), "{err}");
    assert!(err.contains("not authenticated"), "{err}");
    let plain = support::yaml_docs(&un.stdout);
    assert_eq!(plain, flux);
    // A plain Secret appended to the file is still refused: its values would be in clear.
    std::fs::write(&hr_file, format!("{bumped}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  a: b\n")).unwrap();
    let un = run_in(
        dir.path(),
        &["unseal", "--identity", identity.to_str().unwrap(), "f"],
        b"",
    );
    assert_eq!(un.status.code(), Some(2), "{}", stderr(&un));
    // The extra-secrets shape keeps the key inside the HelmRelease: sealed whole, as before.
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--emit",
            "extra-secrets",
            "--seal-to",
            &recipient,
            "--out",
            "x.sops.yaml",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = support::yaml_docs(&std::fs::read(dir.path().join("x.sops.yaml")).unwrap());
    assert!(docs[0]["sops"].is_object());
}

fn ghe_release() -> String {
    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: airflow\nspec:\n  values:\n    dags:\n      gitSync:\n        enabled: true\n        repo: git@ghe.example.com:acme/dags.git\n".into()
}

/// Item 7. Was: a HelmRelease whose repo is on a GitHub Enterprise host got github.com's
/// knownHosts ("nothing else" changed); git-sync then failed host key verification.
#[test]
fn merge_into_takes_host_keys_for_the_host_of_the_repository_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let hr = dir.path().join("hr.yaml");
    let run = |text: &str, extra: &[&str]| {
        std::fs::write(&hr, text).unwrap();
        let _ = std::fs::remove_file(dir.path().join("airflow-ssh-secret.sops.yaml"));
        merge_seed(dir.path(), &recipient, extra)
    };
    // No host keys for ghe.example.com: refused before a key exists, the file kept.
    let out = run(&ghe_release(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ghe.example.com") && err.contains("--known-hosts"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&hr).unwrap(), ghe_release());
    assert!(!dir.path().join("airflow-ssh-secret.sops.yaml").exists());
    // github.com's keys do not cover it either.
    std::fs::write(dir.path().join("github.kh"), "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n").unwrap();
    let out = run(&ghe_release(), &["--known-hosts", "github.kh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // With that host's keys: they are what the HelmRelease gets.
    let (_, host_pub) = ssh_keypair(dir.path(), "ed25519", "hostkey.TEST-ONLY");
    std::fs::write(
        dir.path().join("ghe.kh"),
        format!("ghe.example.com {}\n", support::bare(&host_pub)),
    )
    .unwrap();
    let out = run(&ghe_release(), &["--known-hosts", "ghe.kh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = &support::yaml_docs(&std::fs::read(&hr).unwrap())[0];
    let kh = doc["spec"]["values"]["dags"]["gitSync"]["knownHosts"]
        .as_str()
        .unwrap();
    assert!(kh.starts_with("ghe.example.com ssh-ed25519 "), "{kh}");
    assert!(!kh.contains("github.com"), "{kh}");
    // A --git-host other than the file's, a file for another repository, an HTTPS repo: refused.
    for (text, extra, says) in [
        (
            ghe_release(),
            vec!["--git-host", "github.com"],
            "ghe.example.com",
        ),
        (
            ghe_release().replace("acme/dags.git", "acme/other.git"),
            vec!["--known-hosts", "ghe.kh"],
            "acme/other",
        ),
        (
            ghe_release().replace("git@ghe.example.com:", "https://ghe.example.com/"),
            vec!["--known-hosts", "ghe.kh"],
            "https://",
        ),
    ] {
        let out = run(&text, &extra);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert_eq!(std::fs::read_to_string(&hr).unwrap(), text);
    }
    // --register on an API host that is not the file's git host: refused, nothing registered.
    let fake = FakeGithub::start();
    std::fs::write(&hr, ghe_release()).unwrap();
    let mut c = sealkey();
    c.current_dir(dir.path()).env("GITHUB_TOKEN", TOKEN).args([
        "create",
        "--repo",
        "acme/dags",
        "--emit",
        "helmrelease",
        "--merge-into",
        "hr.yaml",
        "--seal-to",
        &recipient,
        "--out",
        "s.sops.yaml",
        "--register",
        "--api-url",
        &fake.url(),
    ]);
    let out = support::run_cmd(c, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ghe.example.com") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(fake.keys("acme/dags").is_empty());
}

/// Item 8. Was: `--force` over a sealed file whose key is registered made a second key without
/// a word about the first.
#[test]
fn create_force_over_a_sealed_file_names_the_key_it_held_and_how_to_retire_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let fake = FakeGithub::start();
    let create = |extra: &[&str]| {
        let mut c = sealkey();
        c.current_dir(dir.path()).env("GITHUB_TOKEN", TOKEN).args([
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            &recipient,
            "--out",
            "s.sops.yaml",
            "--register",
            "--api-url",
            &fake.url(),
            "--git-host",
            "github.com",
        ]);
        c.args(extra);
        support::run_cmd(c, None)
    };
    let first = create(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let fp = stderr(&first)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .unwrap();
    let id = fake.keys("acme/dags")[0]["id"].to_string();
    let forced = create(&["--force"]);
    let err = stderr(&forced);
    assert_eq!(forced.status.code(), Some(0), "{err}");
    assert!(err.contains(&fp) && err.contains("claims"), "{err}");
    assert!(err.contains(&format!("--retire {fp}")), "{err}");
    // With the token: where that key is registered.
    assert!(err.contains(&format!("deploy key {id}")), "{err}");
    // Without a token, still named.
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            &recipient,
            "--out",
            "s.sops.yaml",
            "--force",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("--retire SHA256:"), "{err}");
}

/// Item 9. Was: `--for argocd` with another host emitted a whole `argocd-ssh-known-hosts-cm`
/// holding only that host; applying it removed github.com, gitlab.com, bitbucket.org, ...
#[test]
fn argocd_known_hosts_are_added_to_the_users_configmap_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (_, host_pub) = ssh_keypair(dir.path(), "ed25519", "hostkey.TEST-ONLY");
    let line = format!("ghe.example.com {}", support::bare(&host_pub));
    std::fs::write(dir.path().join("known_hosts"), format!("{line}\n")).unwrap();
    let upstream = std::fs::read_to_string(
        support::root().join("tests/fixtures/argocd-ssh-known-hosts-cm.upstream.yaml"),
    )
    .unwrap();
    let base = [
        "create",
        "--repo",
        "acme/dags",
        "--for",
        "argocd",
        "--seal",
        "none",
        "--git-host",
        "ghe.example.com",
        "--known-hosts",
        "known_hosts",
    ];
    // Without a ConfigMap to merge into: no ConfigMap is emitted, stderr says how to add the line.
    let out = run_in(dir.path(), &base, b"");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let docs = support::yaml_docs(&out.stdout);
    assert!(
        docs.iter().all(|d| d["kind"] != "ConfigMap"),
        "a ConfigMap that would replace Argo CD's list: {docs:?}"
    );
    assert!(
        err.contains("argocd cert add-ssh") && err.contains("--argocd-known-hosts"),
        "{err}"
    );
    // With the user's ConfigMap file: the missing line added, every other line kept.
    std::fs::write(dir.path().join("cm.yaml"), &upstream).unwrap();
    let mut args = base.to_vec();
    args.extend(["--argocd-known-hosts", "cm.yaml"]);
    let out = run_in(dir.path(), &args, b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let merged = std::fs::read_to_string(dir.path().join("cm.yaml")).unwrap();
    for l in upstream.lines() {
        assert!(merged.lines().any(|m| m == l), "line lost: {l}");
    }
    let cm = &support::yaml_docs(merged.as_bytes())[0];
    let hosts = cm["data"]["ssh_known_hosts"].as_str().unwrap();
    assert!(hosts.lines().any(|l| l == line), "{hosts}");
    assert_eq!(hosts.lines().count(), upstream_hosts(&upstream) + 1);
    // Again: nothing to add, nothing changed.
    let out = run_in(dir.path(), &args, b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("cm.yaml")).unwrap(),
        merged
    );
    let _ = Value::Null;
    let _ = Command::new("true");
}

fn upstream_hosts(upstream: &str) -> usize {
    let cm = &support::yaml_docs(upstream.as_bytes())[0];
    cm["data"]["ssh_known_hosts"]
        .as_str()
        .unwrap()
        .lines()
        .count()
}

/// Item 9, `--apply`: was the Secret only, so Argo CD never learned the host's keys; now the
/// missing lines are added to the live ConfigMap and every other line is kept.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn argocd_apply_adds_the_host_keys_to_the_live_configmap_keeping_every_other_host() {
    let dir = tempfile::tempdir().unwrap();
    let (_, host_pub) = ssh_keypair(dir.path(), "ed25519", "hostkey.TEST-ONLY");
    let line = format!("ghe.example.com {}", support::bare(&host_pub));
    std::fs::write(dir.path().join("known_hosts"), format!("{line}\n")).unwrap();
    let upstream = &support::yaml_docs(
        &std::fs::read(
            support::root().join("tests/fixtures/argocd-ssh-known-hosts-cm.upstream.yaml"),
        )
        .unwrap(),
    )[0];
    // Argo CD's namespace, on the real API server (a namespace of this test's own).
    let cluster = support::real_cluster::RealCluster::shared();
    let ns = cluster.namespace("argocd");
    let mut cm = upstream.clone();
    cm["metadata"]["namespace"] = ns.clone().into();
    cluster.create(&ns, &[cm]);
    let kc = cluster.kubeconfig_in(&ns);
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "argocd",
            "-n",
            &ns,
            "--git-host",
            "ghe.example.com",
            "--known-hosts",
            "known_hosts",
            "--apply",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let live = cluster
        .get(&format!(
            "/api/v1/namespaces/{ns}/configmaps/argocd-ssh-known-hosts-cm"
        ))
        .unwrap();
    let hosts = live["data"]["ssh_known_hosts"].as_str().unwrap();
    let before = upstream["data"]["ssh_known_hosts"].as_str().unwrap();
    for l in before.lines() {
        assert!(hosts.lines().any(|h| h == l), "lost {l}");
    }
    assert!(hosts.lines().any(|h| h == line), "{hosts}");
    assert!(cluster.secret(&ns, "repo-dags").is_some());
}

/// Item 4 on a SOPS-sealed HelmRelease (the seed once sealed whole, `--emit extra-secrets`):
/// the merge opens it, takes the `extraSecrets` entry out, renews the MAC, and Flux still opens it.
#[test]
fn migrating_a_sealed_extra_secrets_helmrelease_takes_the_entry_out_and_flux_still_decrypts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let made = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--emit",
            "extra-secrets",
            "--seal-to",
            &recipient,
            "--out",
            "hr.sops.yaml",
        ],
        b"",
    );
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let old_fp = stderr(&made)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .unwrap();
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
            "--merge-into",
            "hr.sops.yaml",
            "--identity",
            identity.to_str().unwrap(),
            "--seal-to",
            &recipient,
            "--out",
            "airflow-ssh-secret.sops.yaml",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("--retire {old_fp}")), "{err}");
    let docs = support::npm_sops_decode(&dir.path().join("hr.sops.yaml"), &identity)
        .unwrap_or_else(|e| panic!("Flux: {e}"));
    assert_eq!(docs.len(), 1);
    assert!(
        docs[0]["spec"]["values"].get("extraSecrets").is_none(),
        "{:?}",
        docs[0]
    );
    assert_eq!(
        docs[0]["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"],
        "airflow-ssh-secret"
    );
}
