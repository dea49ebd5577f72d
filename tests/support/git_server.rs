//! A real sshd on 127.0.0.1 serving a one-commit bare repository (`dag.py`), for the tests
//! that clone with sealkey's keys and known_hosts: git itself (tests/interop_ssh.rs) and Airflow's
//! GitDagBundle (tests/interop_airflow_git.rs).
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A real sshd on 127.0.0.1 serving a bare repository, stopped on drop.
pub struct GitServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    host_public: String,
    repo: PathBuf,
}

impl GitServer {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, None)
    }

    /// An sshd whose `AuthorizedKeysCommand` is `command` (an absolute path to an executable that
    /// prints the accepted public keys, one per line, asked afresh for every connection), instead
    /// of a fixed authorized_keys file. sshd wants the command and every directory above it owned
    /// by root and writable by nobody else.
    pub fn start_with_keys_command(dir: &Path, command: &Path) -> Self {
        Self::start_with(dir, Some(command))
    }

    fn start_with(dir: &Path, keys_command: Option<&Path>) -> Self {
        let (host_key, host_public) = ssh_keypair(dir, "ed25519", "host-key.TEST-ONLY");
        // A repository with one commit, served bare.
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("dag.py"), "print('hello from the dags repo')\n").unwrap();
        let git = |args: &[&str], cwd: &Path| {
            let st = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@example.invalid",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&st.stderr)
            );
        };
        git(&["init", "-q"], &src);
        git(&["add", "."], &src);
        git(&["commit", "-qm", "dags"], &src);
        let repo = dir.join("dags.git");
        git(
            &[
                "clone",
                "-q",
                "--bare",
                src.to_str().unwrap(),
                repo.to_str().unwrap(),
            ],
            dir,
        );

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, "").unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nStrictModes no\nUsePAM no\n\
                 PidFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 LogLevel ERROR\nMaxStartups 100\n{}",
                host_key.display(),
                if keys_command.is_some() { "none".to_string() } else { authorized.display().to_string() },
                dir.join("sshd.pid").display(),
                keys_command
                    .map(|c| format!("AuthorizedKeysCommand {}\nAuthorizedKeysCommandUser root\n", c.display()))
                    .unwrap_or_default()
            ),
        )
        .unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "/usr/sbin/sshd (Debian openssh-server; scripts/install-test-deps installs it)",
            );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
            host_public,
            repo,
        }
    }

    pub fn authorize(&self, public: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("authorized_keys"))
            .unwrap();
        writeln!(f, "{public}").unwrap();
    }

    pub fn url(&self) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            whoami(),
            self.port,
            self.repo.display()
        )
    }

    /// known_hosts for this server, as a user would get it from `ssh-keyscan -p PORT 127.0.0.1`.
    pub fn known_hosts(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, bare(&self.host_public))
    }

    /// `git ls-remote` with exactly this key and known_hosts, host-key checking on: what a
    /// git-sync poll does. Returns (ok, stderr).
    pub fn ls_remote_with(&self, key: &[u8], known_hosts: &[u8], name: &str) -> (bool, String) {
        let key_file = self.dir.join(format!("{name}.key.TEST-ONLY"));
        write_private(&key_file, key);
        let kh = self.dir.join(format!("{name}.known_hosts"));
        std::fs::write(&kh, known_hosts).unwrap();
        let ssh = format!(
            "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5",
            key_file.display(),
            kh.display()
        );
        let out = Command::new("git")
            .args(["ls-remote", &self.url(), "HEAD"])
            .env("GIT_SSH_COMMAND", ssh)
            .env("HOME", &self.dir)
            .output()
            .unwrap();
        let ok = out.status.success() && !out.stdout.is_empty();
        (ok, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Clones with exactly this key and known_hosts, host-key checking on. Returns (ok, stderr).
    pub fn clone_with(&self, key: &[u8], known_hosts: &str, name: &str) -> (bool, String) {
        let key_file = self.dir.join(format!("{name}.key.TEST-ONLY"));
        write_private(&key_file, key);
        let kh = self.dir.join(format!("{name}.known_hosts"));
        std::fs::write(&kh, known_hosts).unwrap();
        let dest = self.dir.join(format!("clone-{name}"));
        let ssh = format!(
            "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10",
            key_file.display(),
            kh.display()
        );
        let out = Command::new("git")
            .args(["clone", "-q", &self.url(), dest.to_str().unwrap()])
            .env("GIT_SSH_COMMAND", ssh)
            .env("HOME", &self.dir)
            .output()
            .unwrap();
        let cloned = out.status.success() && dest.join("dag.py").exists();
        (cloned, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn whoami() -> String {
    String::from_utf8(tool("id", &["-un"], b""))
        .unwrap()
        .trim()
        .to_string()
}
