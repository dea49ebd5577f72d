//! Flux's real kustomize-controller (built by scripts/install-test-deps from the Go module proxy)
//! judges the files sealkey writes for a GitOps repository: it runs out of cluster against a real
//! kube-apiserver (scripts/dev-cluster), decrypts with the cluster's age key made as
//! docs/gitops.md says, and reconciles a Kustomization over a `.tar.gz` of the directory that the
//! documented commands (README, docs/gitops.md, docs/rotation.md) wrote. The Secret it applies
//! holds the key whose fingerprint sealkey printed; `--merge-into` results apply with only the
//! owned lines changed; `rotate --gitops` then `--finish` retires the old key only after the
//! controller applied the commit; a file tampered after sealing fails in the controller, or,
//! where the controller does not look (the MAC), is refused by `sealkey unseal`.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::fake_github::{FakeGithub, TOKEN};
use support::real_cluster::RealCluster;
use support::real_flux::{fingerprint_of, Flux, Outcome};
use support::{age_keypair, bare, private_key_in, ssh_keypair, ssh_public_of};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs sealkey in `cwd` against the real cluster (`--kubeconfig` only where the command takes
/// it: the caller passes it) with stdin from /dev/null; fails the test on a non-zero exit.
fn sealkey_ok(cwd: &Path, args: &[&str]) -> Output {
    let out = sealkey(cwd, args, b"");
    assert!(
        out.status.success(),
        "sealkey {args:?}: exit {:?}\n{}",
        out.status.code(),
        stderr(&out)
    );
    out
}

fn sealkey(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(support::sealkey_bin());
    c.args(args)
        .current_dir(cwd)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GH_TOKEN")
        .env("KUBECONFIG", "/nonexistent/kubeconfig");
    support::output_of(&mut c, Some(stdin))
}

/// The `fingerprint:` line sealkey prints on stderr.
fn printed_fingerprint(out: &Output) -> String {
    stderr(out)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: ").map(str::to_string))
        .unwrap_or_else(|| panic!("no fingerprint printed:\n{}", stderr(out)))
}

/// The key in an object the controller applied: its `ssh-keygen -lf` fingerprint and its
/// `ssh-keygen -y` public key.
fn key_of(dir: &Path, object: &Value) -> (String, String) {
    let pem = private_key_in(std::slice::from_ref(object));
    (fingerprint_of(dir, &pem), bare(&ssh_public_of(dir, &pem)))
}

/// Every file under `dir`, relative (what the commands wrote, whatever the layout).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `sealkey inspect` exits 0 on every file under `dir` (what the docs say to run before
/// committing).
fn inspect_sound(repo: &Path, dir: &str) {
    for f in files_under(&repo.join(dir)) {
        let out = sealkey(repo, &["inspect", f.to_str().unwrap()], b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "sealkey inspect {}:\n{}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    }
}

/// README "Into a GitOps repo" and docs/gitops.md "The seed's HelmRelease, redone safely": the
/// controller applies both, the Secret and the HelmRelease's `extraSecrets` entry hold the keys
/// whose fingerprints sealkey printed, and no applied object carries a `sops` block.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn flux_applies_the_documented_gitops_files_and_the_keys_are_the_printed_ones() {
    let cluster = RealCluster::start();
    let mut flux = Flux::start(&cluster, &["dev", "airflow"]);
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    let r = flux.recipient.clone();
    let (_, people) = ssh_keypair(repo, "ed25519", "id_ed25519.TEST-ONLY");
    std::fs::create_dir_all(repo.join("clusters/dev/airflow")).unwrap();

    // README: `create --emit helmrelease --seal-to age1... --out clusters/dev/airflow-dags/`
    // (two objects: a directory, one file each and a kustomization.yaml)
    let readme = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--emit",
            "helmrelease",
            "--seal-to",
            &r,
            "--out",
            "clusters/dev/airflow-dags/",
        ],
    );
    // docs/gitops.md step 3: the HelmRelease carrying the key in extraSecrets, sealed whole,
    // with a person's SSH key as a second recipient.
    let seed = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "--namespace",
            "airflow",
            "--for",
            "airflow-chart",
            "--emit",
            "extra-secrets",
            "--seal",
            "sops",
            "--seal-to",
            &r,
            "--seal-to",
            &people,
            "--out",
            "clusters/dev/airflow/airflow-release.sops.yaml",
        ],
    );
    inspect_sound(repo, "clusters/dev");
    let started = std::time::Instant::now();
    flux.publish_applied(repo, "./clusters/dev");
    eprintln!(
        "kustomize-controller applied the first revision in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let secret = flux
        .object("secret", "dev", "airflow-ssh-secret")
        .expect("the controller applied the Secret");
    let (fp, public) = key_of(repo, &secret);
    assert_eq!(fp, printed_fingerprint(&readme));
    assert_eq!(public, bare(&support::printed_public_key(&readme.stderr)));
    assert!(secret.get("sops").is_none());
    let hr = flux
        .object("helmrelease", "dev", "airflow")
        .expect("the controller applied the HelmRelease");
    assert_eq!(
        hr["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"],
        "airflow-ssh-secret"
    );

    let release = flux
        .object("helmrelease", "airflow", "airflow")
        .expect("the controller applied the sealed HelmRelease");
    assert!(release.get("sops").is_none(), "{release:#}");
    let (fp, _) = key_of(repo, &release);
    assert_eq!(fp, printed_fingerprint(&seed));

    // The npm decoders (the stand-in the controller replaces) read the same Secret data.
    let identity = flux.age_identity(repo);
    let npm: Vec<Value> = files_under(&repo.join("clusters/dev"))
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("\nsops:"))
        .flat_map(|f| {
            support::npm_sops_decode(f, &identity)
                .unwrap_or_else(|e| panic!("npm decoders refused {}: {e}", f.display()))
        })
        .collect();
    let npm = npm
        .iter()
        .find(|d| d["kind"] == "Secret" && d["metadata"]["namespace"] == "dev")
        .expect("the npm decoders found the Secret");
    assert_eq!(
        npm["data"], secret["data"],
        "npm decoders and the controller disagree"
    );
}

const USER_HELM_RELEASE: &str = "\
# Airflow for the data team
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
      version: \"1.15.0\" # pinned
      sourceRef:
        kind: HelmRepository
        name: apache-airflow
        namespace: flux-system
  values:
    executor: CeleryExecutor
    workers:
      replicas: 3
    dags:
      gitSync:
        enabled: true
        repo: git@github.com:acme/dags.git
        branch: main
        period: 5s
";

/// The user's HelmRelease as the controller applied it has the user's values plus sealkey's two.
fn assert_merged(flux: &Flux, repo: &Path, out: &Output, what: &str) {
    let hr = flux
        .object("helmrelease", "airflow", "airflow")
        .unwrap_or_else(|| panic!("{what}: no HelmRelease applied"));
    assert!(hr.get("sops").is_none(), "{what}");
    let spec = &hr["spec"];
    assert_eq!(spec["chart"]["spec"]["version"], "1.15.0", "{what}");
    assert_eq!(spec["values"]["executor"], "CeleryExecutor", "{what}");
    assert_eq!(spec["values"]["workers"]["replicas"], 3, "{what}");
    let gs = &spec["values"]["dags"]["gitSync"];
    assert_eq!(gs["sshKeySecret"], "airflow-ssh-secret", "{what}");
    assert_eq!(gs["period"], "5s", "{what}");
    assert_eq!(gs["repo"], "git@github.com:acme/dags.git", "{what}");
    assert!(
        gs["knownHosts"]
            .as_str()
            .unwrap_or_default()
            .contains("github.com ssh-ed25519"),
        "{what}: {gs:#}"
    );
    let keys: Vec<&str> = gs.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys.len(),
        6,
        "{what}: only the two owned values were added: {keys:?}"
    );
    let secret = flux
        .object("secret", "airflow", "airflow-ssh-secret")
        .unwrap_or_else(|| panic!("{what}: no Secret applied"));
    assert_eq!(key_of(repo, &secret).0, printed_fingerprint(out), "{what}");
}

/// README "Already have a HelmRelease?" on a plain HelmRelease, then the same on one the team
/// sealed with SOPS (all of `values` encrypted, opened with an offline identity): the controller
/// applies the user's HelmRelease with only sealkey's two values added, and the Secret with the
/// printed key.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn flux_applies_merge_into_results_with_only_the_owned_lines_changed() {
    let cluster = RealCluster::start();
    let mut flux = Flux::start(&cluster, &["airflow"]);
    let r = flux.recipient.clone();
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    std::fs::create_dir_all(repo.join("clusters/dev")).unwrap();
    std::fs::write(
        repo.join("clusters/dev/helmrelease.yaml"),
        USER_HELM_RELEASE,
    )
    .unwrap();
    let out = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--emit",
            "helmrelease",
            "--merge-into",
            "clusters/dev/helmrelease.yaml",
            "--seal-to",
            &r,
            "--out",
            "clusters/dev/airflow-ssh-secret.sops.yaml",
        ],
    );
    inspect_sound(repo, "clusters/dev");
    flux.publish_applied(repo, "./clusters/dev");
    assert_merged(&flux, repo, &out, "plain --merge-into");

    // The team's HelmRelease sealed with SOPS (values encrypted), to the cluster and an
    // offline identity; sealkey merges into it with that identity.
    let (offline, offline_r) = age_keypair(repo);
    std::fs::remove_dir_all(repo.join("clusters/dev")).unwrap();
    std::fs::create_dir_all(repo.join("clusters/dev")).unwrap();
    let sealed = sealkey(
        repo,
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &r,
            "--seal-to",
            &offline_r,
            "--encrypted-regex",
            "^(values)$",
            "--out",
            "clusters/dev/helmrelease.sops.yaml",
        ],
        USER_HELM_RELEASE.as_bytes(),
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let out = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--emit",
            "helmrelease",
            "--merge-into",
            "clusters/dev/helmrelease.sops.yaml",
            "--identity",
            offline.to_str().unwrap(),
            "--seal-to",
            &r,
            "--seal-to",
            &offline_r,
            "--out",
            "clusters/dev/airflow-ssh-secret.sops.yaml",
        ],
    );
    inspect_sound(repo, "clusters/dev");
    flux.publish_applied(repo, "./clusters/dev");
    assert_merged(&flux, repo, &out, "SOPS --merge-into");
}

/// docs/rotation.md "Runbook: through a GitOps repository", twice: `rotate --gitops FILE
/// --update FILE` registers the new key and writes FILE; `--finish` before the controller
/// applied the commit deletes nothing (exit 2); after the controller applied it, the live Secret
/// holds the new key and `--finish` deletes the old one (also the key `create --register` titled
/// without the cluster's identity, which the Secret's previous-fingerprint names); a second
/// `--finish` deletes nothing.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn rotate_gitops_then_finish_retires_the_old_key_only_after_flux_applied_the_commit() {
    let cluster = RealCluster::start();
    let mut flux = Flux::start(&cluster, &["airflow"]);
    let r = flux.recipient.clone();
    let github = FakeGithub::start();
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    let (offline, offline_r) = age_keypair(repo);
    std::fs::create_dir_all(repo.join("clusters/prod/airflow")).unwrap();
    let kc = cluster.kubeconfig();
    let kc = kc.to_str().unwrap();
    let api = github.url();
    let file = "clusters/prod/airflow/airflow-ssh-secret.sops.yaml";
    // The key the rotation starts from: made, registered and sealed for the repository.
    let created = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--register",
            "--cluster",
            "dev",
            "--api-url",
            &api,
            "--seal-to",
            &r,
            "--seal-to",
            &offline_r,
            "--out",
            file,
        ],
    );
    let old_fp = printed_fingerprint(&created);
    flux.publish_applied(repo, "./clusters/prod");
    let live_fp = |flux: &Flux| {
        let s = flux
            .object("secret", "airflow", "airflow-ssh-secret")
            .expect("the Secret is live");
        key_of(repo, &s).0
    };
    assert_eq!(live_fp(&flux), old_fp);
    assert_eq!(github.keys("acme/dags").len(), 1);

    let rotate = |extra: &[&str]| {
        let mut args = vec![
            "rotate",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--secret-name",
            "airflow-ssh-secret",
            "--kubeconfig",
            kc,
            "--api-url",
            &api,
        ];
        args.extend_from_slice(extra);
        sealkey(repo, &args, b"")
    };
    // Two rotations. The first key was titled by `create --register`, which has no cluster to
    // ask for its identity, so its title names the cluster without it; the key the first
    // rotation registered carries the identity. Both are retired by their `--finish`.
    let mut previous = old_fp.clone();
    let mut previous_id = github.keys("acme/dags")[0]["id"].as_u64().unwrap();
    for round in 1..=2 {
        let before = github.keys("acme/dags").len();
        let rotated = rotate(&[
            "--gitops",
            file,
            "--seal-to",
            &r,
            "--seal-to",
            &offline_r,
            "--update",
            file,
            "--identity",
            offline.to_str().unwrap(),
        ]);
        assert!(
            rotated.status.success(),
            "round {round}: {}",
            stderr(&rotated)
        );
        let new_fp = stderr(&rotated)
            .lines()
            .find_map(|l| l.strip_prefix("registered new key "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no new key printed:\n{}", stderr(&rotated)))
            .to_string();
        assert_ne!(new_fp, previous);
        assert_eq!(
            github.keys("acme/dags").len(),
            before + 1,
            "round {round}: both keys while the commit travels"
        );
        inspect_sound(repo, "clusters/prod");

        // Not applied yet: --finish deletes nothing.
        let early = rotate(&["--finish"]);
        assert_eq!(
            early.status.code(),
            Some(2),
            "round {round}: {}",
            stderr(&early)
        );
        assert_eq!(github.keys("acme/dags").len(), before + 1);
        assert_eq!(live_fp(&flux), previous);

        // The commit reaches the cluster: the controller applies it.
        flux.publish_applied(repo, "./clusters/prod");
        assert_eq!(live_fp(&flux), new_fp, "round {round}");
        let live = flux
            .object("secret", "airflow", "airflow-ssh-secret")
            .unwrap();
        assert_eq!(
            live["metadata"]["annotations"]["sealkey.io/fingerprint"],
            new_fp.as_str()
        );
        assert_eq!(
            live["metadata"]["annotations"]["sealkey.io/previous-fingerprint"],
            previous.as_str()
        );
        assert_eq!(
            github.keys("acme/dags").len(),
            before + 1,
            "round {round}: nothing deleted by the apply"
        );

        let finished = rotate(&["--finish"]);
        assert!(
            finished.status.success(),
            "round {round}: {}",
            stderr(&finished)
        );
        let keys = github.keys("acme/dags");
        let ids: Vec<u64> = keys.iter().map(|k| k["id"].as_u64().unwrap()).collect();
        let live_public = key_of(repo, &live).1;
        let live_key = keys
            .iter()
            .find(|k| bare(k["key"].as_str().unwrap()) == live_public)
            .expect("the live key is registered");
        assert_eq!(live_key["read_only"], true);
        // Every round retires the previous key, the first one too: the key `create --register`
        // titled without the cluster's identity is the one the Secret's
        // `sealkey.io/previous-fingerprint` names, which proves it was this Secret's. (Was: left
        // registered with a warning, so the key of the first GitOps rotation stayed valid.)
        assert!(
            !ids.contains(&previous_id),
            "round {round}: the previous key was retired after the apply: {keys:#?}\n{}",
            stderr(&finished)
        );
        assert_eq!(keys.len(), 1, "round {round}: only the live key: {keys:#?}");
        let again = rotate(&["--finish"]);
        assert!(again.status.success(), "{}", stderr(&again));
        assert_eq!(github.keys("acme/dags").len(), keys.len());
        previous = new_fp;
        previous_id = live_key["id"].as_u64().unwrap();
    }
}

/// Flips one character of the first `ENC[...]` value's `data:` (or of the MAC) in a file.
fn flip_in(text: &str, after: &str) -> String {
    let at = text
        .find(after)
        .unwrap_or_else(|| panic!("{after} not in file"))
        + after.len();
    let mut bytes = text.as_bytes().to_vec();
    let i = at + 8; // inside the base64 of `data:`
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A file `sealkey inspect` calls sound reconciles; one tampered after sealing: a ciphertext
/// byte fails in the controller (Ready=False, a decryption error) and the applied Secret stays as
/// it was. The controller does not check the SOPS MAC (kustomize-controller v1.9.6 leaves
/// sops's integrity check off), so a changed MAC, or a changed plaintext value under
/// `unencrypted_suffix`, is applied: `sealkey unseal` refuses both, which is why the docs tell
/// people to run it before committing.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_tampered_file_fails_in_the_controller_and_leaves_the_applied_secret_unchanged() {
    let cluster = RealCluster::start();
    let mut flux = Flux::start(&cluster, &["dev"]);
    let r = flux.recipient.clone();
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    let identity = flux.age_identity(repo);
    std::fs::create_dir_all(repo.join("clusters/dev")).unwrap();
    let made = sealkey_ok(
        repo,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--seal-to",
            &r,
            "--out",
            "clusters/dev/airflow-ssh-secret.sops.yaml",
        ],
    );
    inspect_sound(repo, "clusters/dev");
    flux.publish_applied(repo, "./clusters/dev");
    let before = flux
        .object("secret", "dev", "airflow-ssh-secret")
        .expect("applied");
    assert_eq!(key_of(repo, &before).0, printed_fingerprint(&made));
    let path = files_under(&repo.join("clusters/dev"))
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("kind: Secret"))
        .unwrap();
    let sound = std::fs::read_to_string(&path).unwrap();
    let unseal = |repo: &Path| {
        sealkey(
            repo,
            &[
                "unseal",
                "--identity",
                identity.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
            b"",
        )
    };

    // One ciphertext byte of the key: the controller fails on it.
    let tampered = flip_in(&sound, "gitSshKey: ENC[AES256_GCM,data:");
    std::fs::write(&path, &tampered).unwrap();
    assert_eq!(unseal(repo).status.code(), Some(2));
    assert!(support::npm_sops_decode(&path, &identity).is_err());
    let rev = flux.publish(repo, "./clusters/dev");
    match flux.outcome(&rev) {
        Outcome::Failed { message, .. } => assert!(
            message.contains("decrypt"),
            "not a decryption error: {message}"
        ),
        Outcome::Applied => panic!("the controller applied a file with a flipped ciphertext byte"),
    }
    let after = flux.object("secret", "dev", "airflow-ssh-secret").unwrap();
    assert_eq!(after["data"], before["data"]);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // The MAC changed: sealkey unseal and the npm sops-decoder refuse it; the controller,
    // which does not verify the MAC, applies it.
    let tampered = flip_in(&sound, "mac: ENC[AES256_GCM,data:");
    std::fs::write(&path, &tampered).unwrap();
    assert_eq!(unseal(repo).status.code(), Some(2));
    let rev = flux.publish(repo, "./clusters/dev");
    assert!(
        matches!(flux.outcome(&rev), Outcome::Applied),
        "kustomize-controller now checks the SOPS MAC: update docs/gitops.md"
    );

    // A plaintext value under unencrypted_suffix (a .sops.yaml rule at the repository's root),
    // changed after sealing: applied by the controller as changed; sealkey unseal refuses it.
    std::fs::write(&path, &sound).unwrap();
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(repo)
        .status()
        .unwrap();
    assert!(init.success());
    std::fs::write(
        repo.join(".sops.yaml"),
        format!("creation_rules:\n  - unencrypted_suffix: _unencrypted\n    age: {r}\n"),
    )
    .unwrap();
    let note = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dev\n\
                data:\n  token: s3cret\n  endpoint_unencrypted: https://warehouse.example\n";
    let sealed = sealkey(
        repo,
        &[
            "seal",
            "--seal",
            "sops",
            "--out",
            "clusters/dev/settings.sops.yaml",
        ],
        note.as_bytes(),
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let settings = repo.join("clusters/dev/settings.sops.yaml");
    let rev = flux.publish(repo, "./clusters/dev");
    // (sops's unencrypted_suffix encrypts kind, apiVersion and metadata too: the controller
    // builds and decrypts such an object all the same.)
    assert!(matches!(flux.outcome(&rev), Outcome::Applied));
    {
        let s = flux.object("configmap", "dev", "settings").unwrap();
        assert_eq!(s["data"]["token"], "s3cret");
        let text = std::fs::read_to_string(&settings).unwrap();
        std::fs::write(
            &settings,
            text.replace("https://warehouse.example", "https://evil.example"),
        )
        .unwrap();
        let out = sealkey(
            repo,
            &[
                "unseal",
                "--identity",
                identity.to_str().unwrap(),
                settings.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let rev = flux.publish(repo, "./clusters/dev");
        assert!(matches!(flux.outcome(&rev), Outcome::Applied));
        let s = flux.object("configmap", "dev", "settings").unwrap();
        assert_eq!(
            s["data"]["endpoint_unencrypted"], "https://evil.example",
            "the controller applied the unauthenticated change"
        );
    }
}
