//! OpenSSH judges the keys: for every key type `ssh-keygen -y` derives from the sealed private
//! key the public key sealkey printed and `ssh-keygen -l` the same fingerprint; end to end, a
//! bare repository served by a real sshd on 127.0.0.1 is cloned with git using only the key and
//! known_hosts taken from the emitted manifests, with StrictHostKeyChecking=yes. Another key is
//! refused, and so is the right key against a host whose key is not in known_hosts.

mod support;

use serde_json::Value;
use support::git_server::GitServer;
use support::*;

#[test]
fn ssh_keygen_reads_every_key_type_sealkey_generates() {
    let dir = tempfile::tempdir().unwrap();
    let (age_id, recipient) = age_keypair(dir.path());
    for key_type in [
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "rsa-3072",
        "rsa-4096",
    ] {
        let out = run_in(
            dir.path(),
            &[
                "keygen",
                "--key-type",
                key_type,
                "--repo",
                "acme/dags",
                "--seal",
                "age",
                "--seal-to",
                &recipient,
            ],
            b"",
        );
        let stdout = String::from_utf8(ok(&out)).unwrap();
        let mut lines = stdout.lines();
        let public = lines.next().unwrap().to_string();
        let fingerprint = lines.next().unwrap().to_string();
        let sealed: String = lines.map(|l| format!("{l}\n")).collect();
        assert!(public.ends_with(" sealkey:acme/dags"), "{public}");
        let pem = tool(
            "age",
            &["-d", "-i", age_id.to_str().unwrap()],
            sealed.as_bytes(),
        );
        let key_file = dir.path().join(format!("{key_type}.TEST-ONLY"));
        write_private(&key_file, &pem);
        let derived = String::from_utf8(tool(
            "ssh-keygen",
            &["-y", "-f", key_file.to_str().unwrap()],
            b"",
        ))
        .unwrap();
        assert_eq!(
            bare(&derived),
            bare(&public),
            "{key_type}: ssh-keygen -y disagrees"
        );
        let listed = String::from_utf8(tool(
            "ssh-keygen",
            &["-l", "-E", "sha256", "-f", key_file.to_str().unwrap()],
            b"",
        ))
        .unwrap();
        assert_eq!(
            listed.split_whitespace().nth(1),
            Some(fingerprint.as_str()),
            "{key_type}: {listed}"
        );
        let bits: u32 = listed.split_whitespace().next().unwrap().parse().unwrap();
        let expected_bits = match key_type {
            "ed25519" => 256,
            "ecdsa-p256" => 256,
            "ecdsa-p384" => 384,
            "rsa-3072" => 3072,
            _ => 4096,
        };
        assert_eq!(bits, expected_bits, "{key_type}");
        // A passphrase-less key: ssh-keygen can change its comment without asking for one.
        tool(
            "ssh-keygen",
            &[
                "-c",
                "-C",
                "renamed",
                "-P",
                "",
                "-f",
                key_file.to_str().unwrap(),
            ],
            b"",
        );
    }
}

/// (private key, known_hosts) as each consumer would read them from the decrypted manifests.
fn key_and_known_hosts(consumer: &str, docs: &[Value]) -> (Vec<u8>, String) {
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    match consumer {
        "airflow-chart" => {
            let release = docs.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
            let kh = release["spec"]["values"]["dags"]["gitSync"]["knownHosts"]
                .as_str()
                .unwrap()
                .to_string();
            (b64d(&secret["data"]["gitSshKey"]), kh)
        }
        "git-sync" => (
            b64d(&secret["data"]["ssh"]),
            String::from_utf8(b64d(&secret["data"]["known_hosts"])).unwrap(),
        ),
        "flux" => (
            b64d(&secret["data"]["identity"]),
            String::from_utf8(b64d(&secret["data"]["known_hosts"])).unwrap(),
        ),
        _ => unreachable!(),
    }
}

#[test]
fn git_clones_over_sshd_with_the_emitted_key_and_known_hosts_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = GitServer::start(dir.path());
    let (age_id, recipient) = age_keypair(dir.path());
    let kh_file = dir.path().join("server.known_hosts");
    std::fs::write(&kh_file, server.known_hosts()).unwrap();

    for (consumer, emit) in [
        ("airflow-chart", "helmrelease"),
        ("git-sync", "secret"),
        ("flux", "secret"),
    ] {
        let out = run_in(
            dir.path(),
            &[
                "create",
                "--repo",
                "acme/dags",
                "-n",
                "dev",
                "--for",
                consumer,
                "--emit",
                emit,
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
        let (key, known_hosts) = key_and_known_hosts(consumer, &docs);
        assert_eq!(
            known_hosts,
            server.known_hosts(),
            "{consumer}: emitted known_hosts is the one given"
        );
        let (cloned, err) = server.clone_with(&key, &known_hosts, consumer);
        assert!(
            cloned,
            "{consumer}: clone with the emitted key failed: {err}"
        );

        // The same key against a host key that is not the server's: host-key checking is on.
        let (_, other_host) = ssh_keypair(
            dir.path(),
            "ed25519",
            &format!("other-host-{consumer}.TEST-ONLY"),
        );
        let wrong_kh = format!("[127.0.0.1]:{} {}\n", server.port, bare(&other_host));
        let (cloned, err) = server.clone_with(&key, &wrong_kh, &format!("{consumer}-wronghost"));
        assert!(
            !cloned,
            "{consumer}: clone must fail when the host key does not match"
        );
        assert!(
            err.contains("Host key verification failed")
                || err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "{err}"
        );
    }

    // A key that is not in authorized_keys is refused.
    let (other_key, _) = ssh_keypair(dir.path(), "ed25519", "intruder.TEST-ONLY");
    let (cloned, err) = server.clone_with(
        &std::fs::read(&other_key).unwrap(),
        &server.known_hosts(),
        "intruder",
    );
    assert!(!cloned);
    assert!(err.contains("Permission denied (publickey)"), "{err}");
}
