//! Airflow 3 judges `--for airflow-git-bundle`: the ConfigMap sealkey emits (the `git` connection
//! and the DAG bundle list) is handed to Airflow's own DagBundlesManager (PyPI apache-airflow with
//! apache-airflow-providers-git, in `.venv-airflow`), whose GitDagBundle clones a repository
//! served by a real sshd on 127.0.0.1 with the key and known_hosts from the emitted Secret, host-key
//! checking on. A host key that is not the server's makes the bundle fail.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::git_server::GitServer;
use support::*;

/// Where the mount patch puts the Secret's files in the Airflow pods.
const MOUNT_DIR: &str = "/opt/airflow/git-secret";

/// Runs Airflow's bundle fetch with the ConfigMap's variables; the Secret's files live in
/// `secret_dir` instead of MOUNT_DIR (the test stands in for the volume mount).
fn fetch_bundle(config: &serde_json::Map<String, Value>, secret_dir: &Path, home: &Path) -> Value {
    let mut cmd = Command::new(support::airflow_python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/airflow-git/bundle.py"))
        .arg("dags")
        .env("AIRFLOW_HOME", home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK");
    for (k, v) in config {
        let v = v
            .as_str()
            .unwrap()
            .replace(MOUNT_DIR, secret_dir.to_str().unwrap());
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

#[test]
fn airflow_git_dag_bundle_clones_with_the_emitted_connection_and_refuses_a_wrong_host_key() {
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
            "airflow-git-bundle",
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
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]
        .as_object()
        .unwrap()
        .clone();

    // The connection reads files under MOUNT_DIR, host-key checking on, and no key inline.
    let conn: Value =
        serde_json::from_str(config["AIRFLOW_CONN_GIT_DEFAULT"].as_str().unwrap()).unwrap();
    assert_eq!(conn["extra"]["key_file"], format!("{MOUNT_DIR}/ssh"));
    assert_eq!(
        conn["extra"]["known_hosts_file"],
        format!("{MOUNT_DIR}/known_hosts")
    );
    assert_eq!(conn["extra"]["strict_host_key_checking"], "yes");
    assert!(conn["extra"].get("private_key").is_none());

    // The Secret's files, as the volume mount would present them.
    let secret_dir = dir.path().join("git-secret");
    std::fs::create_dir(&secret_dir).unwrap();
    write_private(&secret_dir.join("ssh"), &b64d(&secret["data"]["ssh"]));
    std::fs::write(
        secret_dir.join("known_hosts"),
        b64d(&secret["data"]["known_hosts"]),
    )
    .unwrap();

    let home = dir.path().join("airflow-home");
    std::fs::create_dir(&home).unwrap();
    let result = fetch_bundle(&config, &secret_dir, &home);
    assert_eq!(
        result["ok"], true,
        "Airflow could not fetch the bundle: {result}"
    );
    assert_eq!(
        result["classpath"],
        "airflow.providers.git.bundles.git.GitDagBundle"
    );
    assert!(
        result["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "dag.py"),
        "{result}"
    );

    // The same connection against a host key that is not the server's: refused.
    let (_, other_host) = ssh_keypair(dir.path(), "ed25519", "other-host.TEST-ONLY");
    std::fs::write(
        secret_dir.join("known_hosts"),
        format!("[127.0.0.1]:{} {}\n", server.port, bare(&other_host)),
    )
    .unwrap();
    let home = dir.path().join("airflow-home-2");
    std::fs::create_dir(&home).unwrap();
    let result = fetch_bundle(&config, &secret_dir, &home);
    assert_eq!(result["ok"], false, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("Host key verification failed")
            || error.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{error}"
    );
}

#[test]
fn the_mount_patch_puts_the_secret_where_the_connection_looks() {
    let out = run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "airflow",
            "--for",
            "airflow-git-bundle",
            "--emit",
            "mount",
            "--seal",
            "none",
        ],
        b"",
    );
    let docs = yaml_docs(&ok(&out));
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let conn: Value =
        serde_json::from_str(config["data"]["AIRFLOW_CONN_GIT_DEFAULT"].as_str().unwrap()).unwrap();
    let patch = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let spec = &patch["spec"]["template"]["spec"];
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == "airflow-git-ssh")
        .expect("a volume from the Secret");
    let mounts: Vec<&Value> = spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["volumeMounts"].as_array().into_iter().flatten())
        .filter(|m| m["name"] == volume["name"])
        .collect();
    assert!(!mounts.is_empty(), "the Secret volume is mounted");
    for m in mounts {
        assert_eq!(m["mountPath"], MOUNT_DIR);
        assert_eq!(m["readOnly"], true);
        assert!(
            m.get("subPath").is_none(),
            "subPath mounts never see rotations"
        );
    }
    for (field, file) in [("key_file", "ssh"), ("known_hosts_file", "known_hosts")] {
        assert_eq!(conn["extra"][field], format!("{MOUNT_DIR}/{file}"));
    }
}
