//! A hostile AWS endpoint on 127.0.0.1 speaking JSON 1.1 (as Secrets Manager, KMS and STS do):
//! it records every request and answers as its [`Mode`] says: errors whose message echoes what
//! was sent (through a function the test picks: any slice, any encoding; optionally after a
//! DescribeSecret that finds the secret, so that `rotate --store` writes), successful answers with
//! terminal escapes in the ARN and version id, or an endless body. Also a watchdog that runs
//! sealkey with bounds on time and resident memory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const REGION: &str = "eu-west-1";
/// A session token the run holds (a canary: it must never be shown).
pub const SESSION_TOKEN: &str =
    "FwoGZXIvYXdzSESSIONcanary0123456789abcdefghijklmnopqrstuvwxyzTOKEN";
/// The secret access key the run holds (never sent, only used to sign; must never be shown).
pub const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMIsecretCANARYbPxRfiCYEXAMPLEKEY";

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `X-Amz-Target`, e.g. `secretsmanager.CreateSecret`, `TrentService.Encrypt`.
    pub target: String,
    /// The request line and headers.
    pub head: String,
    /// The body (JSON).
    pub body: Vec<u8>,
}

impl Request {
    /// A string field of the JSON body.
    pub fn field(&self, name: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get(name)?.as_str().map(str::to_string)
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

type Echo = Arc<dyn Fn(&Request) -> String + Send + Sync>;

/// How the endpoint answers.
#[derive(Clone)]
pub enum Mode {
    /// DescribeSecret: not found; every other call: a 400 ValidationException whose message is
    /// `echo(request)`.
    Echo(Echo),
    /// DescribeSecret: 200 with this answer (a secret sealkey manages, so a rotation goes on to
    /// write); every other call: a 400 ValidationException whose message is `echo(request)`.
    EchoAfterDescribe {
        describe: serde_json::Value,
        echo: Echo,
    },
    /// DescribeSecret: not found; CreateSecret, PutSecretValue: 200 with this ARN and VersionId.
    Succeed { arn: String, version: String },
    /// Every call: 200 with zeros poured until the client hangs up (30 s / 4 GiB at most);
    /// announced with a Content-Length of `announce` bytes, or chunked when `None`.
    Endless { announce: Option<u64> },
}

/// The endpoint; stops accepting when dropped (threads end with their connections).
pub struct HostileAws {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HostileAws {
    /// Listens on 127.0.0.1 and answers every connection on its own thread.
    pub fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, mode) = (seen.clone(), mode.clone());
                std::thread::spawn(move || serve(stream, &mode, &seen));
            }
        });
        Self { port, requests }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The first request whose target ends with `action`.
    pub fn request(&self, action: &str) -> Option<Request> {
        self.requests()
            .into_iter()
            .find(|r| r.target.ends_with(action))
    }

    /// The environment for sealkey: this endpoint, static credentials with a session token, a
    /// region, no profile files, no instance metadata.
    pub fn env(&self) -> Vec<(String, String)> {
        env_with_endpoint(&self.url())
    }
}

/// As [`HostileAws::env`] with any endpoint URL.
pub fn env_with_endpoint(url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/sealkey-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/sealkey-test/credentials",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn serve(mut stream: TcpStream, mode: &Mode, seen: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    // Keep-alive: the SDK may send several requests on one connection.
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" || head.len() > 64 * 1024 {
                break;
            }
        }
        let mut req = Request {
            target: String::new(),
            head,
            body: Vec::new(),
        };
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(1 << 20);
        req.body = vec![0; len];
        if reader.read_exact(&mut req.body).is_err() {
            return;
        }
        req.target = req.header("x-amz-target").unwrap_or_default();
        seen.lock().unwrap().push(req.clone());
        let (status, body) = match mode {
            Mode::Endless { announce } => {
                let head = match announce {
                    Some(n) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {n}\r\n\r\n"
                    ),
                    None => "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
                };
                pour(&mut stream, &head, announce.is_none());
                return;
            }
            Mode::EchoAfterDescribe { describe, .. } if req.target.ends_with("DescribeSecret") => {
                ("200 OK", describe.clone())
            }
            Mode::EchoAfterDescribe { echo, .. } => (
                "400 Bad Request",
                serde_json::json!({"__type": "ValidationException", "message": echo(&req)}),
            ),
            _ if req.target.ends_with("DescribeSecret") => (
                "400 Bad Request",
                serde_json::json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}),
            ),
            Mode::Echo(echo) => (
                "400 Bad Request",
                serde_json::json!({"__type": "ValidationException", "message": echo(&req)}),
            ),
            Mode::Succeed { arn, version } => (
                "200 OK",
                serde_json::json!({"ARN": arn, "Name": req.field("Name").or_else(|| req.field("SecretId")), "VersionId": version}),
            ),
        };
        let body = body.to_string();
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 0c7f5e2a-hostile\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn pour(s: &mut TcpStream, head: &str, chunked: bool) {
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let zeros = vec![b'0'; 64 * 1024];
    let chunk_head = format!("{:x}\r\n", zeros.len());
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(30) && sent < 4 << 30 {
        let ok = if chunked {
            s.write_all(chunk_head.as_bytes()).is_ok()
                && s.write_all(&zeros).is_ok()
                && s.write_all(b"\r\n").is_ok()
        } else {
            s.write_all(&zeros).is_ok()
        };
        if !ok {
            return;
        }
        sent += zeros.len() as u64;
    }
}

pub use super::watchdog::Watched;

/// Runs `cmd` with nothing on stdin under [`super::watchdog::run_watched`]: killed past `limit`
/// or past `rss_cap_kib` resident.
pub fn run_watched(cmd: Command, limit: Duration, rss_cap_kib: u64) -> Watched {
    super::watchdog::run_watched(cmd, b"", limit, rss_cap_kib)
}
