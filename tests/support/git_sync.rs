//! git-sync v4 (built into `.judges/bin` by scripts/install-test-deps) reading a Secret volume
//! laid out as the kubelet lays it out: [`KubeletVolume`] is the kubelet's atomic writer (a new
//! timestamped directory per change, the `..data` symlink swapped by one rename, the old
//! directory removed, group and mode from `fsGroup` and `defaultMode`), and [`GitSync`] runs the
//! real git-sync as uid 65533 (its image's user) with a throwaway HOME, counting its syncs from
//! its own metrics. [`Projector`] keeps a volume in step with a Secret on the real API server,
//! as the kubelet's Secret volume plugin does. [`sshd_asking_github`] is the git server whose
//! accepted keys are the deploy keys the GitHub stand-in holds at each connection.
#![allow(dead_code)]

use super::fake_github::{FakeGithub, TOKEN};
use super::git_server::GitServer;
use super::real_cluster::{judge, RealCluster};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// git-sync's user and group in its image (`registry.k8s.io/git-sync/git-sync`).
pub const GIT_SYNC_UID: u32 = 65533;

/// The tests run git-sync under another uid: only root can do that.
pub fn require_root() {
    let uid = super::tool("id", &["-u"], b"");
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "these tests run git-sync as uid 65533 (setpriv) in a private mount namespace (unshare): run them as root, as CI does"
    );
}

/// A Secret volume as the kubelet mounts it: `dir/..TIMESTAMP/KEY` files, `dir/..data` pointing
/// at the current one, `dir/KEY -> ..data/KEY`.
pub struct KubeletVolume {
    pub dir: PathBuf,
    default_mode: u32,
    fs_group: Option<u32>,
    current: Option<BTreeMap<String, Vec<u8>>>,
}

impl KubeletVolume {
    /// `dir` must not exist; its parent must be searchable by uid 65533.
    pub fn new(dir: &Path, default_mode: u32, fs_group: Option<u32>) -> Self {
        std::fs::create_dir(dir).unwrap();
        let v = KubeletVolume {
            dir: dir.to_path_buf(),
            default_mode,
            fs_group,
            current: None,
        };
        v.own(dir, true);
        v
    }

    /// The kubelet's volume ownership (SetVolumeOwnership, read-only volume): with `fsGroup`,
    /// group fsGroup, files `mode | 0440`, directories `| 0550` and setgid; without it, root's.
    fn own(&self, path: &Path, is_dir: bool) {
        let base = if is_dir { 0o755 } else { self.default_mode };
        let mode = match self.fs_group {
            Some(g) => {
                std::os::unix::fs::chown(path, Some(0), Some(g)).unwrap();
                if is_dir {
                    base | 0o550 | 0o2000
                } else {
                    base | 0o440
                }
            }
            None => base,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `files` the way the kubelet's atomic writer does, unless they are what the volume
    /// holds already. Returns whether it wrote.
    pub fn write(&mut self, files: &BTreeMap<String, Vec<u8>>) -> bool {
        if self.current.as_ref() == Some(files) {
            return false;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let ts = format!("..{}.{:09}", now.as_secs(), now.subsec_nanos());
        let new_dir = self.dir.join(&ts);
        std::fs::create_dir(&new_dir).unwrap();
        for (name, bytes) in files {
            let f = new_dir.join(name);
            std::fs::write(&f, bytes).unwrap();
            self.own(&f, false);
        }
        self.own(&new_dir, true);
        let data = self.dir.join("..data");
        let old = std::fs::read_link(&data).ok();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ts, &tmp).unwrap();
        std::fs::rename(&tmp, &data).unwrap();
        for name in files.keys() {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
            }
        }
        if let Some(prev) = &self.current {
            for name in prev.keys().filter(|k| !files.contains_key(*k)) {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
        self.current = Some(files.clone());
        true
    }

    /// A copy of the current files in `dir` (the kubelet's `subPath` bind mount: it keeps the
    /// file the container started with).
    pub fn snapshot(&self, dir: &Path) -> KubeletVolume {
        let mut v = KubeletVolume::new(dir, self.default_mode, self.fs_group);
        v.write(self.current.as_ref().expect("a written volume"));
        v
    }
}

/// The `data` of Secret `ns/name` on the real server, decoded (None when it does not exist).
pub fn secret_data(
    cluster: &RealCluster,
    ns: &str,
    name: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    let token = std::fs::read_to_string(cluster.dir.path().join("admin.token")).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(cluster.ca())
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .arg(format!(
            "{}/api/v1/namespaces/{ns}/secrets/{name}",
            cluster.url()
        ))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let data = v.get("data")?.as_object()?;
    Some(
        data.iter()
            .map(|(k, v)| (k.clone(), super::b64d(v)))
            .collect(),
    )
}

/// What the container sees of a Secret's data (the identity for a plain volume mount).
pub type View = Box<dyn Fn(BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> + Send>;

/// Keeps a [`KubeletVolume`] in step with a Secret on the real server (polled every 100 ms, as
/// fast as the readers poll), and samples how many deploy keys GitHub holds at each poll.
pub struct Projector {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// (time since start, keys registered) per poll.
    pub samples: Arc<Mutex<Vec<(Duration, usize)>>>,
    /// How many times the volume was rewritten.
    pub writes: Arc<Mutex<usize>>,
}

/// One GET with curl; the parsed JSON answer.
fn get_json(url: &str, auth: &str, ca: Option<&Path>) -> Option<serde_json::Value> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "5", "-H"]).arg(auth);
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
    let out = c.arg(url).output().unwrap();
    serde_json::from_slice(&out.stdout).ok()
}

impl Projector {
    /// A plain volume mount of Secret `ns/secret`.
    pub fn start(
        cluster: &RealCluster,
        ns: &str,
        secret: &str,
        volume: KubeletVolume,
        github: &FakeGithub,
        repo: &str,
    ) -> (Projector, Arc<Mutex<KubeletVolume>>) {
        Self::start_with(
            cluster,
            ns,
            secret,
            volume,
            github,
            repo,
            Duration::ZERO,
            |d| d,
        )
    }

    /// Only samples the deploy keys registered (for readers that do not read a volume).
    pub fn keys_sampler(github: &FakeGithub, repo: &str) -> Projector {
        Self::spawn(None, github, repo)
    }

    /// Like [`Projector::start`], the volume holding `view` of the Secret's data, each change
    /// written only once the server has held it for `lag` (the kubelet's sync period and cache:
    /// a real mount lags the Secret by up to a minute or more, which `--sync-wait` covers).
    #[allow(clippy::too_many_arguments)]
    pub fn start_with(
        cluster: &RealCluster,
        ns: &str,
        secret: &str,
        volume: KubeletVolume,
        github: &FakeGithub,
        repo: &str,
        lag: Duration,
        view: impl Fn(BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> + Send + 'static,
    ) -> (Projector, Arc<Mutex<KubeletVolume>>) {
        let volume = Arc::new(Mutex::new(volume));
        // A first projection before anything reads it, as the kubelet mounts before the
        // container starts.
        let data = secret_data(cluster, ns, secret).expect("the Secret to mount");
        volume.lock().unwrap().write(&view(data));
        let token = std::fs::read_to_string(cluster.dir.path().join("admin.token")).unwrap();
        let source = SecretSource {
            url: format!("{}/api/v1/namespaces/{ns}/secrets/{secret}", cluster.url()),
            auth: format!("Authorization: Bearer {}", token.trim()),
            ca: cluster.ca(),
            volume: volume.clone(),
            view: Box::new(view),
            lag,
        };
        (Self::spawn(Some(source), github, repo), volume)
    }

    fn spawn(source: Option<SecretSource>, github: &FakeGithub, repo: &str) -> Projector {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let writes = Arc::new(Mutex::new(0));
        let keys_url = format!("{}/repos/{repo}/keys?per_page=100", github.url());
        let thread = {
            let (stop, samples, writes) = (stop.clone(), samples.clone(), writes.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                // The newest view read and since when the server holds it.
                let mut latest: Option<(Instant, BTreeMap<String, Vec<u8>>)> = None;
                // Bounded: ten minutes of polls at most.
                for _ in 0..6000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let tick = Instant::now();
                    if let Some(s) = &source {
                        let data = get_json(&s.url, &s.auth, Some(&s.ca)).and_then(|v| {
                            v.get("data").and_then(|d| d.as_object()).map(|d| {
                                d.iter()
                                    .map(|(k, v)| (k.clone(), super::b64d(v)))
                                    .collect::<BTreeMap<_, _>>()
                            })
                        });
                        if let Some(data) = data {
                            let view = (s.view)(data);
                            if latest.as_ref().map(|(_, d)| d) != Some(&view) {
                                latest = Some((Instant::now(), view));
                            }
                            if let Some((since, view)) = &latest {
                                if since.elapsed() >= s.lag && s.volume.lock().unwrap().write(view)
                                {
                                    *writes.lock().unwrap() += 1;
                                }
                            }
                        }
                    }
                    let n = get_json(&keys_url, &format!("Authorization: Bearer {TOKEN}"), None)
                        .and_then(|v| v.as_array().map(|a| a.len()))
                        .unwrap_or(0);
                    samples.lock().unwrap().push((start.elapsed(), n));
                    if let Some(rest) = Duration::from_millis(100).checked_sub(tick.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
            })
        };
        Projector {
            stop,
            thread: Mutex::new(Some(thread)),
            samples,
            writes,
        }
    }

    /// Stops polling (the samples stay).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }

    /// The longest stretch during which two or more keys were registered.
    pub fn overlap(&self) -> Duration {
        let mut best = Duration::ZERO;
        let mut since: Option<Duration> = None;
        for (at, n) in self.samples.lock().unwrap().iter() {
            match (*n >= 2, since) {
                (true, None) => since = Some(*at),
                (false, Some(s)) => {
                    best = best.max(*at - s);
                    since = None;
                }
                _ => {}
            }
        }
        best
    }
}

struct SecretSource {
    url: String,
    auth: String,
    ca: PathBuf,
    volume: Arc<Mutex<KubeletVolume>>,
    view: View,
    lag: Duration,
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sshd the readers clone from: it accepts exactly the deploy keys registered on `github`
/// for acme/dags right now (its `AuthorizedKeysCommand` asks on every connection). The
/// returned directory holds the command and must live as long as the server.
pub fn sshd_asking_github(dir: &Path, github: &FakeGithub) -> (GitServer, tempfile::TempDir) {
    // Root-owned, in a directory only root can write, and so is every directory above it (sshd
    // checks the whole path: a checkout under /tmp, mode 1777, would not do). /run is root's;
    // the target directory is the fallback.
    let cmd_dir = tempfile::Builder::new()
        .prefix("sealkey-keys-command-")
        .tempdir_in("/run")
        .or_else(|_| tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")))
        .unwrap();
    let cmd = cmd_dir.path().join("github-keys");
    std::fs::write(
        &cmd,
        format!(
            "#!/bin/sh\n# The deploy keys GitHub accepts right now, asked on every connection.\n\
             curl -sf --max-time 5 -H 'Authorization: Bearer {TOKEN}' '{}/repos/acme/dags/keys?per_page=100' \\\n\
             | python3 -c 'import json,sys; [print(k[\"key\"]) for k in json.load(sys.stdin)]'\n",
            github.url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    (GitServer::start_with_keys_command(dir, &cmd), cmd_dir)
}

/// How git-sync runs: as uid/gid 65533, with `groups` as its supplementary groups (the kubelet
/// adds the pod's `fsGroup` there), `env` as the container's environment (the emitted mount
/// patch's `GITSYNC_*`), plus `args`.
pub struct GitSyncRun<'a> {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub groups: Vec<u32>,
    pub work: &'a Path,
    pub name: &'a str,
}

/// A running git-sync; killed on drop.
pub struct GitSync {
    child: Child,
    pub log: PathBuf,
    port: u16,
}

/// The private mount namespace git-sync runs in: /etc/passwd and /etc/group gain git-sync's
/// user, as in its image (OpenSSH refuses to run for a uid without a passwd entry), with HOME as
/// its home directory; the machine's files are untouched.
fn command(run: &GitSyncRun, home: &Path) -> Command {
    let etc = run.work.join(format!("{}-etc", run.name));
    std::fs::create_dir_all(&etc).unwrap();
    let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str(&format!(
        "git-sync:x:{GIT_SYNC_UID}:{GIT_SYNC_UID}::{}:/sbin/nologin\n",
        home.display()
    ));
    std::fs::write(etc.join("passwd"), passwd).unwrap();
    let mut group = std::fs::read_to_string("/etc/group").unwrap();
    group.push_str(&format!("git-sync:x:{GIT_SYNC_UID}:\n"));
    std::fs::write(etc.join("group"), group).unwrap();
    for f in ["passwd", "group"] {
        std::fs::set_permissions(etc.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let groups = if run.groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        format!(
            "--groups={}",
            run.groups
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let script = "mount --bind \"$ETC/passwd\" /etc/passwd && mount --bind \"$ETC/group\" /etc/group && exec setpriv --reuid \"$UID_\" --regid \"$UID_\" \"$GROUPS_\" --inh-caps=-all --bounding-set=-all -- \"$@\"";
    let mut c = Command::new(super::required_tool("unshare"));
    c.args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(judge("git-sync"))
        .args(&run.args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("ETC", &etc)
        .env("UID_", GIT_SYNC_UID.to_string())
        .env("GROUPS_", groups)
        .envs(run.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    c
}

/// A directory owned by git-sync's user (its HOME, its --root).
fn owned_dir(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    std::os::unix::fs::chown(path, Some(GIT_SYNC_UID), Some(GIT_SYNC_UID)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_path_buf()
}

/// `git-sync --one-time`: (cloned, its log).
pub fn one_time(run: &GitSyncRun) -> (bool, String) {
    let home = owned_dir(&run.work.join(format!("{}-home", run.name)));
    let root = owned_dir(&run.work.join(format!("{}-root", run.name)));
    let mut c = command(run, &home);
    c.arg(format!("--root={}", root.display())).args([
        "--one-time",
        "--link=current",
        "--sync-timeout=30s",
        // A short period: a failing run retries --max-failures times before it gives up.
        "--period=200ms",
    ]);
    let out = super::output_of(&mut c, None);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cloned = out.status.success() && root.join("current/dag.py").is_file();
    (cloned, log)
}

/// git-sync's own count of its syncs: (success + noop, error).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Syncs {
    pub ok: u64,
    pub failed: u64,
    /// Time spent in syncs (`git_sync_duration_seconds_sum`), all outcomes.
    pub seconds: f64,
}

impl GitSync {
    /// git-sync polling every `period`, its metrics on a loopback port (`run.args` may add
    /// `--max-failures`).
    pub fn start(run: &GitSyncRun, period: Duration) -> GitSync {
        let home = owned_dir(&run.work.join(format!("{}-home", run.name)));
        let root = owned_dir(&run.work.join(format!("{}-root", run.name)));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = run.work.join(format!("{}.log", run.name));
        let f = std::fs::File::create(&log).unwrap();
        let mut c = command(run, &home);
        c.arg(format!("--root={}", root.display()))
            .arg(format!("--period={}ms", period.as_millis()))
            .args(["--link=current", "--sync-timeout=20s"])
            .arg(format!("--http-bind=127.0.0.1:{port}"))
            .arg("--http-metrics")
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        let child = c.spawn().expect("start git-sync");
        let g = GitSync { child, log, port };
        // Bounded: its first sync within 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        while g.syncs().ok + g.syncs().failed == 0 {
            assert!(
                Instant::now() < deadline,
                "git-sync made no sync in 30 s: {}",
                g.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        g
    }

    /// Its counters now (`git_sync_count_total`).
    pub fn syncs(&self) -> Syncs {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut s = Syncs::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("git_sync_duration_seconds_sum{status=\"") {
                let v = rest.split_once("\"} ").map(|(_, v)| v).unwrap_or("0");
                s.seconds += v.trim().parse::<f64>().unwrap_or(0.0);
            }
            let Some(rest) = line.strip_prefix("git_sync_count_total{status=\"") else {
                continue;
            };
            let (status, value) = rest.split_once("\"} ").unwrap_or(("", "0"));
            let n: f64 = value.trim().parse().unwrap_or(0.0);
            match status {
                "success" | "noop" => s.ok += n as u64,
                "error" => s.failed += n as u64,
                _ => {}
            }
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines where it reported a failed sync.
    pub fn failures(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("error syncing repo"))
            .map(str::to_string)
            .collect()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for GitSync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment an emitted mount patch gives the git-sync container, with `mount_path`
/// (the patch's volumeMount) read from `volume_dir` instead.
pub fn container_env(
    patch: &serde_json::Value,
    mount_path: &str,
    volume_dir: &Path,
) -> Vec<(String, String)> {
    let c = &patch["spec"]["template"]["spec"]["containers"][0];
    c["env"]
        .as_array()
        .expect("the patch sets the container's env")
        .iter()
        .map(|e| {
            let v = e["value"].as_str().unwrap_or_default();
            let v = match v.strip_prefix(mount_path) {
                Some(rest) => format!("{}{rest}", volume_dir.display()),
                None => v.to_string(),
            };
            (e["name"].as_str().unwrap().to_string(), v)
        })
        .collect()
}
