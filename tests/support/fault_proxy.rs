//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a test server (the real
//! kube-apiserver behind `kubectl proxy`, or a fake GitHub): forwards
//! every request, except that the first request matching a rule gets the rule's fault instead:
//! an error status with a Kubernetes `Status` body (the request never reaches the server), or a
//! connection dropped *after* the server carried the request out (the answer is lost).
//! Two more faults answer wrongly (issue 22): a write answered 200 with the unchanged object
//! and never carried out, and a write that commits after the client was dropped.
//! Hostile modes, usually armed for every matching request (`arm_every`): a Status whose message
//! is given text (terminal escapes, reflected credentials), a body that never ends, a list whose
//! continue token comes back every time, a 429 storm, a Status that quotes the object written.
//! One request per connection (`Connection: close`), which keeps it small.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFault {
    /// Answer with this status (409, 403, ...) without forwarding.
    Status(u16),
    /// Forward, then close the connection without answering.
    DropAfterForward,
    /// Do not forward: answer 200 with the request body, as an API server that says it stored
    /// the object and stored nothing.
    WrongSuccess,
    /// Do not forward: answer with what a GET of the same path answers (200 and the old
    /// object), as an API server that "succeeds" without storing anything.
    WrongSuccessOld,
    /// Close the connection without answering (the client gives up), and forward the request
    /// this many milliseconds later: a write that commits after the client's timeout.
    LateCommit(u64),
    /// Do not forward: answer 200 with this JSON (an object the server would not serve, such as
    /// the cluster-scoped kube-system Namespace).
    Json(&'static str),
    /// Answer with this status and a `Status` whose `message` is this text, without forwarding.
    StatusSaying(u16, &'static str),
    /// Answer 200 with a chunked JSON body that never ends (until the client hangs up, 30 s
    /// or 16 GiB), without forwarding.
    EndlessBody,
    /// Answer an empty list whose `metadata.continue` is the same token every time.
    LoopingContinue,
    /// Answer 429 Too Many Requests with `Retry-After: 1`.
    TooManyRequests,
    /// Answer with this status and a `Status` whose `message` echoes the request: each `data`
    /// value as sent (base64) and decoded (decoded first when the flag is set: clients cut long
    /// messages), each `stringData` value, then the whole body; without forwarding. The bodies
    /// are kept ([`FaultProxy::echoed`]).
    StatusEchoingBody(u16, bool),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// Substring of the path.
    pub path: String,
    pub fault: ProxyFault,
}

#[derive(Default)]
struct State {
    rule: Option<Rule>,
    /// The rule stays armed after it fired.
    every: bool,
    fired: usize,
    log: Vec<String>,
    /// Bodies of the requests answered by [`ProxyFault::StatusEchoingBody`].
    echoed: Vec<Vec<u8>>,
}

pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let st = st.clone();
                std::thread::spawn(move || handle(conn, upstream_port, &st));
            }
        });
        FaultProxy { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Arms a fault for the first request that matches.
    pub fn arm(&self, rule: Rule) {
        let mut st = self.state.lock().unwrap();
        st.rule = Some(rule);
        st.every = false;
    }

    /// Arms a fault for every request that matches.
    pub fn arm_every(&self, rule: Rule) {
        let mut st = self.state.lock().unwrap();
        st.rule = Some(rule);
        st.every = true;
    }

    /// Whether the armed fault has fired (for `arm_every`: at least once).
    pub fn fired(&self) -> bool {
        self.state.lock().unwrap().fired > 0
    }

    /// How many requests got the fault.
    pub fn fired_count(&self) -> usize {
        self.state.lock().unwrap().fired
    }

    /// The request bodies a [`ProxyFault::StatusEchoingBody`] answered.
    pub fn echoed(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().echoed.clone()
    }

    /// `METHOD PATH` of every request seen.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    let mut line = String::new();
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
        let lower = line.to_ascii_lowercase();
        if line == "\r\n" {
            head.push_str("Connection: close\r\n\r\n");
            break;
        }
        // Our own Connection header replaces the client's.
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let first = head.lines().next().unwrap_or_default().to_string();
    Some((first, head, body))
}

fn handle(mut client: TcpStream, upstream_port: u16, state: &Mutex<State>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((first, head, body)) = read_request(&mut client) else {
        return;
    };
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let fault = {
        let mut st = state.lock().unwrap();
        st.log.push(format!("{method} {path}"));
        match &st.rule {
            Some(r) if r.method == method && path.contains(&r.path) => {
                let f = r.fault;
                if !st.every {
                    st.rule = None;
                }
                st.fired += 1;
                Some(f)
            }
            _ => None,
        }
    };
    if let Some(ProxyFault::StatusEchoingBody(code, decoded_first)) = fault {
        state.lock().unwrap().echoed.push(body.clone());
        let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": echo_of(&body, decoded_first), "reason": "Invalid", "code": code})
        .to_string();
        answer(&mut client, &format!("{code} Refused"), "", &body);
        return;
    }
    if let Some(f) = fault {
        if hostile(&mut client, f) {
            return;
        }
    }
    if let Some(ProxyFault::Status(code)) = fault {
        let reason = match code {
            409 => "Conflict",
            403 => "Forbidden",
            _ => "InternalError",
        };
        let body = format!(
            r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected {code}","reason":"{reason}","code":{code}}}"#
        );
        let _ = write!(
            client,
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    if let Some(ProxyFault::Json(body)) = fault {
        let _ = write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    if fault == Some(ProxyFault::WrongSuccess) {
        let _ = write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = client.write_all(&body);
        return;
    }
    if fault == Some(ProxyFault::WrongSuccessOld) {
        let plain = path.split('?').next().unwrap_or_default();
        let get = format!("GET {plain} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
        if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) {
            let _ = upstream.write_all(get.as_bytes());
            let mut response = Vec::new();
            let _ = upstream.read_to_end(&mut response);
            let _ = client.write_all(&response);
        }
        return;
    }
    if let Some(ProxyFault::LateCommit(ms)) = fault {
        let _ = client.shutdown(std::net::Shutdown::Both);
        drop(client);
        std::thread::sleep(Duration::from_millis(ms));
        if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) {
            let _ = upstream.write_all(head.as_bytes());
            let _ = upstream.write_all(&body);
            let _ = upstream.read_to_end(&mut Vec::new());
        }
        state
            .lock()
            .unwrap()
            .log
            .push(format!("committed late: {method} {path}"));
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    let _ = upstream.write_all(head.as_bytes());
    let _ = upstream.write_all(&body);
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response);
    if fault == Some(ProxyFault::DropAfterForward) {
        let _ = client.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = client.write_all(&response);
}

/// What [`ProxyFault::StatusEchoingBody`] says: every value of the object sent, in the forms a
/// careless API server might quote it, then the body itself.
fn echo_of(body: &[u8], decoded_first: bool) -> String {
    use base64::Engine as _;
    let mut said = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for (field, value) in v["data"].as_object().into_iter().flatten() {
            let b64 = value.as_str().unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            let decoded = String::from_utf8_lossy(&decoded);
            said.push(if decoded_first {
                format!("data.{field}: Invalid value: ({decoded}) \"{b64}\"")
            } else {
                format!("data.{field}: Invalid value: \"{b64}\" ({decoded})")
            });
        }
        for (field, value) in v["stringData"].as_object().into_iter().flatten() {
            said.push(format!(
                "stringData.{field}: {}",
                value.as_str().unwrap_or_default()
            ));
        }
    }
    said.push(String::from_utf8_lossy(body).into_owned());
    said.join("; ")
}

fn answer(client: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Carries out a hostile fault; `false` for the faults `handle` deals with itself.
fn hostile(client: &mut TcpStream, fault: ProxyFault) -> bool {
    match fault {
        ProxyFault::StatusSaying(code, message) => {
            let body =
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": message, "reason": "Forbidden", "code": code})
                .to_string();
            answer(client, &format!("{code} Refused"), "", &body);
        }
        ProxyFault::LoopingContinue => {
            let body = r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1","continue":"c2FtZS10b2tlbg=="},"items":[]}"#;
            answer(client, "200 OK", "", body);
        }
        ProxyFault::TooManyRequests => {
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too many requests","reason":"TooManyRequests","code":429}"#;
            answer(client, "429 Too Many Requests", "Retry-After: 1\r\n", body);
        }
        ProxyFault::EndlessBody => {
            let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            let start =
                r#"{"kind":"List","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":""#;
            if client.write_all(head.as_bytes()).is_err()
                || client
                    .write_all(format!("{:x}\r\n{start}\r\n", start.len()).as_bytes())
                    .is_err()
            {
                return true;
            }
            let filler = vec![b'a'; 64 * 1024];
            let chunk_head = format!("{:x}\r\n", filler.len());
            let began = std::time::Instant::now();
            let mut sent = 0u64;
            while began.elapsed() < Duration::from_secs(30) && sent < 16 << 30 {
                if client.write_all(chunk_head.as_bytes()).is_err()
                    || client.write_all(&filler).is_err()
                    || client.write_all(b"\r\n").is_err()
                {
                    break;
                }
                sent += filler.len() as u64;
            }
        }
        ProxyFault::Status(_)
        | ProxyFault::DropAfterForward
        | ProxyFault::WrongSuccess
        | ProxyFault::WrongSuccessOld
        | ProxyFault::LateCommit(_)
        | ProxyFault::Json(_)
        | ProxyFault::StatusEchoingBody(..) => return false,
    }
    true
}
