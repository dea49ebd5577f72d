//! `.sops.yaml` in an enclosing repository: the first `creation_rules` entry whose `path_regex`
//! matches the output's path (relative to the `.sops.yaml` directory) picks recipients (age,
//! AWS KMS) and selection, as sops does; `--seal-to` overrides it with a note; a `.sops.yaml`
//! above the repository root is not read. Outputs opened by sealkey and by sops-decoder.

mod support;

use std::path::Path;
use std::process::Command;
use support::moto::{sealkey_env, Moto};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn age_keypair(dir: &Path) -> (std::path::PathBuf, String) {
    let path = dir.join("age.TEST-ONLY.txt");
    assert!(Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap()
        .status
        .success());
    let text = std::fs::read_to_string(&path).unwrap();
    let r = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (path, r)
}

fn repo(
    moto: &Moto,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    String,
    std::path::PathBuf,
) {
    let top = tempfile::tempdir().unwrap();
    let repo = top.path().join("gitops");
    for d in [".git", "clusters/prod", "clusters/dev"] {
        std::fs::create_dir_all(repo.join(d)).unwrap();
    }
    let arn = moto.kms_key();
    let (identity, recipient) = age_keypair(top.path());
    std::fs::write(
        repo.join(".sops.yaml"),
        format!(
            "creation_rules:\n  - path_regex: ^clusters/prod/.*\\.sops\\.yaml$\n    kms: \"{arn}\"\n    encrypted_regex: ^(data|stringData)$\n  - path_regex: \\.sops\\.yaml$\n    key_groups:\n      - age:\n          - {recipient}\n    unencrypted_suffix: _unencrypted\n"
        ),
    )
    .unwrap();
    // Above the repository root: never read.
    std::fs::write(
        top.path().join(".sops.yaml"),
        "creation_rules:\n  - pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n",
    )
    .unwrap();
    (top, repo, arn, identity)
}

fn create(moto: &Moto, cwd: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = out.display().to_string();
    let mut args = vec!["create", "--repo", "acme/dags", "-n", "dev", "--out", &o];
    args.extend_from_slice(extra);
    sealkey_env(cwd, &args, &moto.env(), &["KUBECONFIG"])
}

#[test]
fn the_first_matching_rule_picks_kms_for_prod_and_age_with_unencrypted_suffix_elsewhere() {
    let moto = Moto::start();
    let (top, repo, arn, identity) = repo(&moto);
    // Run from outside the repository: the path is taken relative to the .sops.yaml directory.
    let prod = repo.join("clusters/prod/airflow-ssh.sops.yaml");
    let out = create(&moto, top.path(), &prod, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("creation_rules[0]"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&prod).unwrap();
    assert!(
        text.contains(&arn) && text.contains("encrypted_regex: ^(data|stringData)$"),
        "{text}"
    );
    assert!(!text.contains("age:"), "{text}");
    let opened = sealkey_env(
        top.path(),
        &["unseal", prod.to_str().unwrap()],
        &moto.env(),
        &[],
    );
    assert!(opened.status.success(), "{}", stderr(&opened));
    let js = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sops-js/decode-kms.mjs"))
        .arg(&prod)
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(js.status.success(), "sops-decoder: {}", stderr(&js));

    let dev = repo.join("clusters/dev/airflow-ssh.sops.yaml");
    let out = create(&moto, &repo.join("clusters"), &dev, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("creation_rules[1]"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&dev).unwrap();
    assert!(
        text.contains("unencrypted_suffix: _unencrypted") && !text.contains("encrypted_regex"),
        "{text}"
    );
    assert!(
        text.contains("kind: ENC[AES256_GCM"),
        "everything is encrypted under unencrypted_suffix: {text}"
    );
    let opened = sealkey_env(
        top.path(),
        &[
            "unseal",
            dev.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
        ],
        &moto.env(),
        &[],
    );
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert!(String::from_utf8_lossy(&opened.stdout).contains("kind: Secret"));
}

#[test]
fn seal_to_overrides_the_rule_with_a_note() {
    let moto = Moto::start();
    let (top, repo, arn, _) = repo(&moto);
    let (_, other) = age_keypair(&repo);
    let prod = repo.join("clusters/prod/x.sops.yaml");
    let out = create(&moto, top.path(), &prod, &["--seal-to", &other]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--seal-to overrides") && stderr(&out).contains("creation_rules[0]"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&prod).unwrap();
    assert!(text.contains(&other) && !text.contains(&arn));
}

#[test]
fn no_matching_rule_and_no_seal_to_is_an_error_and_a_sops_yaml_above_the_repo_is_ignored() {
    let moto = Moto::start();
    let (top, repo, _, _) = repo(&moto);
    // *.yaml without .sops: no rule matches, so nothing says how to seal.
    let out = create(
        &moto,
        top.path(),
        &repo.join("clusters/prod/plain.yaml"),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!repo.join("clusters/prod/plain.yaml").exists());
    // Another repository without a .sops.yaml, under the directory whose .sops.yaml (pgp,
    // which sealkey refuses) would be read if the search went past the repository root.
    let other = top.path().join("other");
    std::fs::create_dir_all(other.join(".git")).unwrap();
    let (_, r) = age_keypair(&other);
    let out = create(
        &moto,
        top.path(),
        &other.join("z.sops.yaml"),
        &["--seal-to", &r],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("pgp") && !stderr(&out).contains("overrides"),
        "{}",
        stderr(&out)
    );
    // Without .git (and outside $HOME) only the output's own directory is read: the pgp rule
    // planted above is never used (a .sops.yaml in /tmp would otherwise choose recipients).
    std::fs::remove_dir(other.join(".git")).unwrap();
    let out = create(
        &moto,
        top.path(),
        &other.join("w.sops.yaml"),
        &["--seal-to", &r],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("pgp"), "{}", stderr(&out));
}
