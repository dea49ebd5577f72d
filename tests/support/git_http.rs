//! A git smart-HTTP server on 127.0.0.1: git's own `http-backend` (CGI) behind a small server
//! that serves a one-commit bare repository (`dag.py`) only to Basic auth whose password is the
//! token it was given, as GitHub accepts installation tokens. Records the user names it saw.
#![allow(dead_code)]

use super::fake_github::Request;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server; its thread ends with the test process.
pub struct GitHttp {
    pub port: u16,
    /// Basic-auth user names of accepted requests, and the count of refused ones.
    pub seen: Arc<Mutex<(Vec<String>, usize)>>,
    root: PathBuf,
}

impl GitHttp {
    /// Serves `dir/dags.git` (made here) to requests carrying `token` as the password.
    pub fn start(dir: &Path, token: &str) -> Self {
        let root = dir.join("git-root");
        let work = dir.join("git-work");
        std::fs::create_dir_all(&work).unwrap();
        let git = |cwd: &Path, args: &[&str]| {
            let out = Command::new("git")
                .args(args)
                .current_dir(cwd)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("dag.py"), "# a DAG\n").unwrap();
        git(&work, &["add", "dag.py"]);
        git(&work, &["commit", "-q", "-m", "dag"]);
        std::fs::create_dir_all(&root).unwrap();
        git(
            &root,
            &["clone", "-q", "--bare", work.to_str().unwrap(), "dags.git"],
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new((Vec::new(), 0)));
        let (r, s, t) = (root.clone(), seen.clone(), token.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, s, t) = (r.clone(), s.clone(), t.clone());
                std::thread::spawn(move || serve(stream, &r, &s, &t));
            }
        });
        Self { port, seen, root }
    }

    /// The clone URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/dags.git", self.port)
    }
}

fn serve(mut stream: TcpStream, root: &Path, seen: &Mutex<(Vec<String>, usize)>, token: &str) {
    let Some(req) = read(&mut stream) else { return };
    let user = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|up| {
            let (u, p) = up.split_once(':')?;
            (p == token).then(|| u.to_string())
        });
    let Some(user) = user else {
        seen.lock().unwrap().1 += 1;
        let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    seen.lock().unwrap().0.push(user);
    let mut cgi = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", &req.path)
        .env("QUERY_STRING", &req.query)
        .env("CONTENT_TYPE", req.header("content-type").unwrap_or(""))
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("GIT_PROTOCOL", req.header("git-protocol").unwrap_or(""))
        .env(
            "HTTP_CONTENT_ENCODING",
            req.header("content-encoding").unwrap_or(""),
        )
        .env("REMOTE_USER", "git")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = cgi.stdin.take().unwrap();
    let body = req.body.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = cgi.wait_with_output().unwrap();
    let _ = writer.join();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        });
    let Some((at, sep)) = split else { return };
    let head = String::from_utf8_lossy(&out.stdout[..at]).into_owned();
    let body = &out.stdout[at + sep..];
    let mut status = "200 OK".to_string();
    let mut headers = String::new();
    for line in head.lines() {
        if let Some(s) = line.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else if !line.trim().is_empty() {
            headers.push_str(line.trim());
            headers.push_str("\r\n");
        }
    }
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let _ = stream.write_all(body);
}

/// One request, with a Content-Length or chunked body.
fn read(stream: &mut TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}
