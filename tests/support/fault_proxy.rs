//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of a test server (kmock): forwards
//! every request, except that the first request matching a rule gets the rule's fault instead:
//! an error status with a Kubernetes `Status` body (the request never reaches the server), or a
//! connection dropped *after* the server carried the request out (the answer is lost).
//! Two more faults answer wrongly (issue 22): a write answered 200 with the unchanged object
//! and never carried out, and a write that commits after the client was dropped.
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
    /// Do not forward: answer 200 with this JSON (an object the stand-in cannot serve, such as
    /// the cluster-scoped kube-system Namespace).
    Json(&'static str),
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
    log: Vec<String>,
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
        self.state.lock().unwrap().rule = Some(rule);
    }

    /// Whether the armed fault has fired.
    pub fn fired(&self) -> bool {
        self.state.lock().unwrap().rule.is_none()
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
                st.rule = None;
                Some(f)
            }
            _ => None,
        }
    };
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
