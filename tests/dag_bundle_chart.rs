//! `sealkey to-dag-bundle` (an Airflow chart HelmRelease moved off `dags.gitSync`) and
//! `create --for airflow-chart --emit helmrelease --dag-bundle`, judged by Airflow itself: the
//! values are rendered the way the chart renders them (`dagProcessor.dagBundleConfigList` into
//! `[dag_processor] dag_bundle_config_list` of airflow.cfg, `extraEnv` into every Airflow
//! container, the projected volume's files at the mount path) and Airflow's DagBundlesManager
//! builds the GitDagBundle, which clones from a real sshd on 127.0.0.1 with host-key checking
//! on. The HelmRelease git-sync read before reads the same commit through the bundle after.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::git_server::GitServer;
use support::*;

const MOUNT_DIR: &str = "/opt/airflow/git-secret";

/// The seed's HelmRelease, as a team on git-sync with a deploy key has it.
fn seed_release(repo: &str, known_hosts: &str) -> String {
    let kh: String = known_hosts
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    format!(
        r#"apiVersion: helm.toolkit.fluxcd.io/v2beta1
kind: HelmRelease
metadata:
  name: airflow
  namespace: dev
spec:
  interval: 5m  # 30s -> 5m
  releaseName: airflow-dev
  chart:
    spec:
      chart: airflow
      version: "1.17.0"
      sourceRef:
        kind: HelmRepository
        name: apache-airflow
        namespace: flux-system
  values:
    defaultAirflowTag: "3.0.2"
    airflowVersion: "3.0.2"
    env:
      - name: "AIRFLOW__CORE__LOAD_EXAMPLES"
        value: "False"
      - name: "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"
        value: "dev"
    executor: "KubernetesExecutor"

    # DAGs: gitSync
    dags:
      persistence:
        enabled: False   # DAGs only from git, no PVC
      gitSync:
        enabled: True    # git-sync sidecar on
        repo: {repo}
        branch: main     # which branch to pull
        maxFailures: 0
        subPath: ""
        wait: 60         # pull interval (s)
        sshKeySecret: airflow-ssh-secret
        knownHosts: |
{kh}"#
    )
}

fn airflow_secret(docs: &[Value]) -> &Value {
    docs.iter()
        .find(|d| d["kind"] == "Secret")
        .expect("a Secret")
}

/// Renders the HelmRelease's values as the chart would into one Airflow container: airflow.cfg
/// in `home`, the env, and the projected volume's files in `mount` (standing in for MOUNT_DIR).
fn render_container(
    values: &Value,
    key_secret: &Value,
    home: &Path,
    mount: &Path,
) -> Vec<(String, String)> {
    std::fs::create_dir_all(home).unwrap();
    std::fs::create_dir_all(mount).unwrap();
    let list = &values["dagProcessor"]["dagBundleConfigList"];
    std::fs::write(
        home.join("airflow.cfg"),
        format!(
            "[core]\nload_examples = False\n\n[dag_processor]\ndag_bundle_config_list = {}\ndag_bundle_storage_path = {}\n",
            serde_json::to_string(list).unwrap(),
            home.join("bundles").display()
        ),
    )
    .unwrap();
    // extraEnv: a YAML string of env items.
    let items = yaml_docs(values["extraEnv"].as_str().unwrap().as_bytes());
    let env: Vec<(String, String)> = items[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"]
                    .as_str()
                    .unwrap()
                    .replace(MOUNT_DIR, mount.to_str().unwrap()),
            )
        })
        .collect();
    // The volume mounted at MOUNT_DIR, read-only, from the Secret and the chart's ConfigMap.
    let mounts = values["volumeMounts"].as_array().unwrap();
    let m = mounts
        .iter()
        .find(|m| m["mountPath"] == MOUNT_DIR)
        .expect("a mount at MOUNT_DIR");
    assert_eq!(m["readOnly"], true);
    assert!(m.get("subPath").is_none());
    let volume = values["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == m["name"])
        .expect("the mounted volume");
    assert_eq!(volume["projected"]["defaultMode"], 0o440);
    for source in volume["projected"]["sources"].as_array().unwrap() {
        if let Some(s) = source.get("secret") {
            assert_eq!(s["name"], key_secret["metadata"]["name"]);
            for item in s["items"].as_array().unwrap() {
                let bytes = b64d(&key_secret["data"][item["key"].as_str().unwrap()]);
                // In the pod the file is root's, mode 0440, read through group 0; here the test
                // user owns it, and ssh wants an owner's key file closed to others.
                write_private(&mount.join(item["path"].as_str().unwrap()), &bytes);
            }
        } else if let Some(c) = source.get("configMap") {
            let name = c["name"].as_str().unwrap();
            let data = yaml_docs(
                values["extraConfigMaps"][name]["data"]
                    .as_str()
                    .unwrap()
                    .as_bytes(),
            );
            for item in c["items"].as_array().unwrap() {
                let text = data[0][item["key"].as_str().unwrap()].as_str().unwrap();
                std::fs::write(mount.join(item["path"].as_str().unwrap()), text).unwrap();
            }
        } else {
            panic!("unexpected source {source}");
        }
    }
    env
}

fn fetch_bundle(name: &str, env: &[(String, String)], home: &Path) -> Value {
    let mut cmd = Command::new(airflow_python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/airflow-git/bundle.py"))
        .arg(name)
        .env("AIRFLOW_HOME", home)
        .env("HOME", home)
        .env_remove("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST")
        .env_remove("SSH_AUTH_SOCK");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "bundle.py printed no result:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

fn head_commit(server: &GitServer) -> String {
    let url = server.url();
    let path =
        &url[url.find(&format!(":{}", server.port)).unwrap() + 1 + server.port.to_string().len()..];
    String::from_utf8(tool("git", &["--git-dir", path, "rev-parse", "HEAD"], b""))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_git_sync_helm_release_moves_to_a_bundle_that_airflow_clones_at_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let server = GitServer::start(dir.path());
    let kh_file = dir.path().join("server.known_hosts");
    std::fs::write(&kh_file, server.known_hosts()).unwrap();
    // The key Secret the team already has (the chart's sshKeySecret, key gitSshKey).
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            "airflow-chart",
            "--known-hosts",
            kh_file.to_str().unwrap(),
            "--repo-url",
            &server.url(),
            "--seal",
            "none",
        ],
        b"",
    );
    let docs = yaml_docs(&ok(&out));
    server.authorize(&printed_public_key(&out.stderr));
    let secret = airflow_secret(&docs).clone();
    assert_eq!(secret["metadata"]["name"], "airflow-ssh-secret");

    let hr_path = dir.path().join("airflow-dev.yml");
    let before = seed_release(&server.url(), &server.known_hosts());
    std::fs::write(&hr_path, &before).unwrap();

    // Before: git-sync's fetch with the values' key and knownHosts (git over ssh, checking on).
    let key = b64d(&secret["data"]["gitSshKey"]);
    let (cloned, err) = server.clone_with(&key, &server.known_hosts(), "git-sync");
    assert!(cloned, "{err}");
    let commit = head_commit(&server);

    // --dry-run: the diff on stdout, nothing written.
    let out = run_in(
        dir.path(),
        &["to-dag-bundle", hr_path.to_str().unwrap(), "--dry-run"],
        b"",
    );
    let diff = String::from_utf8(ok(&out)).unwrap();
    assert!(
        diff.contains("-        enabled: True    # git-sync sidecar on"),
        "{diff}"
    );
    assert!(diff.contains("+        enabled: false"), "{diff}");
    assert_eq!(std::fs::read_to_string(&hr_path).unwrap(), before);

    let out = run_in(
        dir.path(),
        &["to-dag-bundle", hr_path.to_str().unwrap()],
        b"",
    );
    ok(&out);
    let stderr = text(&out.stderr);
    for named in [
        "dags.gitSync.wait 60",
        "dags.gitSync.maxFailures",
        "restarts",
        "roll back",
    ] {
        assert!(stderr.contains(named), "{named} not reported:\n{stderr}");
    }
    let after = std::fs::read_to_string(&hr_path).unwrap();

    // No other line changed: every line of the old file is still there, except the one that
    // turned git-sync on, and the new lines are only the set values.
    let new_lines: Vec<&str> = after.lines().collect();
    let gone: Vec<&str> = before.lines().filter(|l| !new_lines.contains(l)).collect();
    assert_eq!(
        gone,
        ["        enabled: True    # git-sync sidecar on"],
        "{after}"
    );
    let hr = &yaml_docs(after.as_bytes())[0];
    let old = &yaml_docs(before.as_bytes())[0];
    let values = &hr["spec"]["values"];
    assert_eq!(values["env"], old["spec"]["values"]["env"]);
    assert_eq!(values["dags"]["gitSync"]["enabled"], false);
    assert_eq!(values["dags"]["gitSync"]["repo"], server.url());
    let bundle = &values["dagProcessor"]["dagBundleConfigList"][0];
    assert_eq!(bundle["kwargs"]["tracking_ref"], "main");
    assert_eq!(bundle["kwargs"]["refresh_interval"], 60);
    assert!(bundle["kwargs"].get("subdir").is_none());
    // The connection: no key inline, host-key checking on.
    let env = render_container(
        values,
        &secret,
        &dir.path().join("home"),
        &dir.path().join("mnt"),
    );
    let conn: Value = serde_json::from_str(&env[0].1).unwrap();
    assert_eq!(env[0].0, "AIRFLOW_CONN_GIT_DEFAULT");
    assert!(conn["extra"].get("private_key").is_none());
    assert_eq!(conn["extra"]["strict_host_key_checking"], "yes");

    // After: Airflow clones the bundle, at the commit git-sync had.
    let result = fetch_bundle(
        bundle["name"].as_str().unwrap(),
        &env,
        &dir.path().join("home"),
    );
    assert_eq!(
        result["ok"], true,
        "Airflow could not fetch the bundle: {result}"
    );
    assert!(
        result["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "dag.py"),
        "{result}"
    );
    assert_eq!(result["version"], commit.as_str(), "{result}");

    // A known_hosts that is not the server's: refused by Airflow's clone.
    let (_, other_host) = ssh_keypair(dir.path(), "ed25519", "other-host.TEST-ONLY");
    std::fs::write(
        dir.path().join("mnt/known_hosts"),
        format!("[127.0.0.1]:{} {}\n", server.port, bare(&other_host)),
    )
    .unwrap();
    let home2 = dir.path().join("home2");
    std::fs::create_dir_all(&home2).unwrap();
    std::fs::copy(
        dir.path().join("home/airflow.cfg"),
        home2.join("airflow.cfg"),
    )
    .unwrap();
    let result = fetch_bundle(bundle["name"].as_str().unwrap(), &env, &home2);
    assert_eq!(result["ok"], false, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("Host key verification failed")
            || error.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{error}"
    );

    // Running it again is refused: git-sync is off, nothing to migrate; the file stays.
    let out = run_in(
        dir.path(),
        &["to-dag-bundle", hr_path.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&hr_path).unwrap(), after);
}

#[test]
fn settings_without_an_equivalent_are_refused_by_name_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = seed_release(
        "git@github.com:acme/dags.git",
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    );
    let cases: Vec<(&str, String)> = vec![
        ("dags.gitSync.rev", base.replace("branch: main ", "rev: HEAD~1\n        branch: main ")),
        ("dags.gitSync.env", base.replace("maxFailures: 0", "maxFailures: 0\n        env:\n          - name: GITSYNC_SUBMODULES\n            value: recursive")),
        ("dags.gitSync.sshKey", base.replace("maxFailures: 0", "maxFailures: 0\n        sshKey: abc")),
        ("dags.gitSync.credentialsSecret", base.replace("maxFailures: 0", "maxFailures: 0\n        credentialsSecret: git-creds")),
        ("dags.gitSync.someFutureSetting", base.replace("maxFailures: 0", "maxFailures: 0\n        someFutureSetting: 1")),
        ("dags.gitSync.period", base.replace("wait: 60", "period: soon")),
        ("knownHosts has no line for github.com", base.replace("github.com ssh-ed25519", "gitlab.com ssh-ed25519")),
        ("before Airflow 3", base.replace("airflowVersion: \"3.0.2\"", "airflowVersion: \"2.10.5\"")),
        ("not an SSH URL", base.replace("git@github.com:acme/dags.git", "https://github.com/acme/dags.git")),
        ("ref", base.replace("branch: main ", "ref: develop\n        branch: main ")),
        ("HelmRelease objects, not one", format!("{base}---\n{base}")),
        ("has no spec.values.dags.gitSync", base.replace("  values:\n", "  values: {}\n  other:\n")),
        ("dags.gitSync.enabled is not true", base.replace("enabled: True    # git-sync", "enabled: false    # git-sync")),
    ];
    for (named, body) in cases {
        let path = dir.path().join("hr.yaml");
        std::fs::write(&path, &body).unwrap();
        let out = run(&["to-dag-bundle", path.to_str().unwrap()], b"");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{named}: {err}");
        assert!(err.contains(named), "{named} not named:\n{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            body,
            "{named}: file changed"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "hr.yaml")
            .collect();
        assert!(leftovers.is_empty(), "{named}: {leftovers:?}");
    }
    // A symlink, a FIFO, flow-style values: refused by name, nothing changed.
    let real = dir.path().join("real.yaml");
    std::fs::write(&real, &base).unwrap();
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fifo = dir.path().join("fifo.yaml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let flow = dir.path().join("flow.yaml");
    std::fs::write(
        &flow,
        "kind: HelmRelease\nspec:\n  values: {dags: {gitSync: {enabled: true, repo: 'git@github.com:a/b.git', branch: main, sshKeySecret: s}}}\n",
    )
    .unwrap();
    for (path, named) in [(&link, "symlink"), (&fifo, "FIFO"), (&flow, "inline value")] {
        let out = run(&["to-dag-bundle", path.to_str().unwrap()], b"");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(named), "{named}: {err}");
        assert!(!err.contains("--out"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&real).unwrap(), base);
    for p in [&real, &link, &fifo, &flow] {
        std::fs::remove_file(p).unwrap();
    }
    // A CRLF file stays CRLF on every line.
    let crlf = dir.path().join("crlf.yaml");
    std::fs::write(&crlf, base.replace('\n', "\r\n")).unwrap();
    ok(&run(&["to-dag-bundle", crlf.to_str().unwrap()], b""));
    let after = std::fs::read_to_string(&crlf).unwrap();
    assert!(after.contains("dagBundleConfigList"));
    assert_eq!(after.matches('\n').count(), after.matches("\r\n").count());
    std::fs::remove_file(&crlf).unwrap();
    // Not a file / not YAML / missing.
    for (arg, body) in [("missing.yaml", None), ("bad.yaml", Some("kind: [\n"))] {
        let path = dir.path().join(arg);
        if let Some(b) = body {
            std::fs::write(&path, b).unwrap();
        }
        let out = run(&["to-dag-bundle", path.to_str().unwrap()], b"");
        assert_eq!(out.status.code(), Some(2), "{arg}: {}", text(&out.stderr));
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn a_sops_encrypted_helm_release_migrates_with_its_identity_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let (id, recipient) = age_keypair(dir.path());
    let base = seed_release(
        "git@github.com:acme/dags.git",
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    );
    // The seed's sealed shape: the key in values.extraSecrets (kept: the migration uses the
    // Secret the chart makes from it).
    let base = base.replace(
        "    executor: \"KubernetesExecutor\"\n",
        "    executor: \"KubernetesExecutor\"\n    extraSecrets:\n      airflow-ssh-secret:\n        data: |\n          gitSshKey: 'c2VjcmV0LWtleS1URVNULU9OTFk='\n",
    );
    // Sealed with sealkey (values encrypted by the file's rule), then migrated with --identity.
    let sealed = ok(&run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        base.as_bytes(),
    ));
    let path = dir.path().join("hr.sops.yaml");
    std::fs::write(&path, &sealed).unwrap();
    let out = run(&["to-dag-bundle", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--identity"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "to-dag-bundle",
            path.to_str().unwrap(),
            "--identity",
            id.to_str().unwrap(),
        ],
        b"",
    );
    ok(&out);
    let after = std::fs::read(&path).unwrap();
    let plain = ok(&run(
        &["unseal", "--identity", id.to_str().unwrap()],
        &after,
    ));
    let hr = &yaml_docs(&plain)[0];
    let values = &hr["spec"]["values"];
    assert_eq!(values["dags"]["gitSync"]["enabled"], false);
    assert_eq!(
        values["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]["tracking_ref"],
        "main"
    );
    assert_eq!(
        values["dags"]["gitSync"]["sshKeySecret"],
        "airflow-ssh-secret"
    );
    assert_eq!(
        values["extraSecrets"]["airflow-ssh-secret"]["data"],
        "gitSshKey: 'c2VjcmV0LWtleS1URVNULU9OTFk='\n"
    );
    assert!(!String::from_utf8_lossy(&after).contains("c2VjcmV0LWtleS1URVNULU9OTFk"));
    // A second SOPS implementation (the npm decoder, as Flux's decryption stand-in) opens the
    // migrated file: MAC renewed over the new values, the known_hosts data encrypted by the
    // file's rule.
    let decoded = npm_sops_decode(&path, &id).expect("npm sops decodes the migrated file");
    let values = &decoded[0]["spec"]["values"];
    assert_eq!(values["dags"]["gitSync"]["enabled"], false);
    let cm = values["extraConfigMaps"]["airflow-ssh-secret-known-hosts"]["data"]
        .as_str()
        .unwrap();
    assert!(cm.starts_with("known_hosts: |"), "{cm}");
    assert!(!String::from_utf8_lossy(&after).contains("known_hosts: |"));
}

#[test]
fn a_fresh_chart_install_with_dag_bundle_is_cloned_by_airflow_with_checking_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = GitServer::start(dir.path());
    let (age_id, recipient) = age_keypair(dir.path());
    let kh_file = dir.path().join("server.known_hosts");
    std::fs::write(&kh_file, server.known_hosts()).unwrap();
    let out = run_in(
        dir.path(),
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
            "--bundle-refresh",
            "120",
            "--known-hosts",
            kh_file.to_str().unwrap(),
            "--repo-url",
            &server.url(),
            "--seal",
            "age",
            "--seal-to",
            &recipient,
        ],
        b"",
    );
    let sealed = ok(&out);
    server.authorize(&printed_public_key(&out.stderr));
    let docs = yaml_docs(&tool(
        "age",
        &["-d", "-i", age_id.to_str().unwrap()],
        &sealed,
    ));
    let hr = docs.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
    let secret = airflow_secret(&docs);
    let values = &hr["spec"]["values"];
    assert_eq!(
        values["dagProcessor"]["dagBundleConfigList"][0]["kwargs"]["refresh_interval"],
        120
    );
    assert_eq!(values["dags"]["gitSync"]["enabled"], false);
    // No key anywhere in the HelmRelease: only in the Secret.
    let hr_text = serde_json::to_string(hr).unwrap();
    assert!(!hr_text.contains("PRIVATE KEY"));
    let home = dir.path().join("home");
    let env = render_container(values, secret, &home, &dir.path().join("mnt"));
    let name = values["dagProcessor"]["dagBundleConfigList"][0]["name"]
        .as_str()
        .unwrap();
    let result = fetch_bundle(name, &env, &home);
    assert_eq!(
        result["ok"], true,
        "Airflow could not fetch the bundle: {result}"
    );
    assert_eq!(result["version"], head_commit(&server).as_str());

    // --dag-bundle is refused where it would be ignored, and with --merge-into.
    for extra in [
        &["--for", "git-sync", "--dag-bundle"][..],
        &["--for", "airflow-chart", "--emit", "secret", "--dag-bundle"][..],
        &[
            "--for",
            "airflow-chart",
            "--emit",
            "helmrelease",
            "--bundle-refresh",
            "60",
        ][..],
        &[
            "--for",
            "airflow-chart",
            "--emit",
            "helmrelease",
            "--dag-bundle",
            "--merge-into",
            "hr.yaml",
        ][..],
    ] {
        let mut args = vec!["create", "--repo", "acme/dags", "--seal", "none"];
        args.extend_from_slice(extra);
        let out = run_in(dir.path(), &args, b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("--dag-bundle")
                || text(&out.stderr).contains("--bundle-refresh"),
            "{}",
            text(&out.stderr)
        );
    }
}
