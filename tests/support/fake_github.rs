//! A tiny HTTP/1.1 server on 127.0.0.1 and a stateful fake of GitHub's deploy key API built on
//! it. Every connection is closed after one answer, which keeps the parsing here small.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An answer to write back.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.to_string().into_bytes(),
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Reads one request from a connection.
pub fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
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
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
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

/// Writes a response and closes.
pub fn write_response(stream: &mut TcpStream, r: &Response) {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&r.body);
    let _ = stream.flush();
}

/// Serves `handler` on 127.0.0.1 (random port) on background threads; returns the port.
/// `None` from the handler drops the connection without an answer.
pub fn serve(handler: impl Fn(Request) -> Option<Response> + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Some(req) = read_request(&mut stream) {
                    if let Some(resp) = handler(req) {
                        write_response(&mut stream, &resp);
                    }
                }
            });
        }
    });
    port
}

/// A canned answer injected before normal handling.
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: &'static str,
    /// Matches when the request path (after the prefix) ends with this.
    pub path_suffix: String,
    /// None = drop the connection without answering.
    pub response: Option<Response>,
    /// Carry out the request first, then answer with the fault (a lost answer).
    pub apply_first: bool,
}

/// The fake's state; tests read and change it through `FakeGithub::state()`.
#[derive(Debug, Default)]
pub struct State {
    pub repos: BTreeMap<String, Vec<Value>>,
    /// Bare keys registered somewhere the token cannot see (GitHub answers "already in use").
    pub elsewhere: Vec<String>,
    /// Bare keys GitHub refuses as invalid.
    pub invalid: Vec<String>,
    pub next_id: u64,
    pub page_size: usize,
    pub faults: VecDeque<Fault>,
    pub log: Vec<Request>,
    pub meta_keys: Vec<String>,
    pub token: String,
    /// GitHub App: the App's public key (PKCS#1 PEM) and the installation token it buys.
    pub app_public_pem: Option<String>,
    /// GitHub App: further current keys (an App has up to 25), as a rotation adds them.
    pub app_more_public_pems: Vec<String>,
    /// GitHub App: seconds an installation token is said to last (None: until 2099), so that
    /// consumers refresh it on every sync.
    pub token_lifetime_secs: Option<i64>,
    pub installation_token: String,
    /// GitHub App: repositories the installation does not include (404 on lookup, 422 on a token).
    pub app_not_on: Vec<String>,
    /// GitHub App: the installation's permissions (default administration: write, contents: read).
    pub app_permissions: Option<Value>,
    /// Registrations (POST .../keys) are carried out at once but answered only after this many
    /// milliseconds: a run can be interrupted with its key registered and the answer not yet in.
    pub stall_registrations_ms: u64,
}

/// A stateful fake of GitHub's REST deploy key endpoints, `/meta` and GitHub App token exchange.
#[derive(Clone)]
pub struct FakeGithub {
    state: Arc<Mutex<State>>,
    pub port: u16,
    pub prefix: String,
}

pub const TOKEN: &str = "ghp_CANARYtoken0123456789abcdefCANARY";

impl FakeGithub {
    /// github.com shape (no prefix), repo acme/dags present and empty.
    pub fn start() -> Self {
        Self::start_with_prefix("")
    }

    /// GitHub Enterprise Server shape: `prefix` is `/api/v3`.
    pub fn start_with_prefix(prefix: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            page_size: 30,
            token: TOKEN.into(),
            installation_token: "ghs_INSTALLATIONcanary987654321".into(),
            meta_keys: sealkey::known_hosts::GITHUB_COM_PINNED
                .iter()
                .map(|l| l.strip_prefix("github.com ").unwrap().to_string())
                .collect(),
            ..Default::default()
        }));
        state
            .lock()
            .unwrap()
            .repos
            .insert("acme/dags".into(), vec![]);
        let prefix = prefix.to_string();
        let port_cell = Arc::new(Mutex::new(0u16));
        let (s, p, pc) = (state.clone(), prefix.clone(), port_cell.clone());
        let port = serve(move |req| {
            let port = *pc.lock().unwrap();
            handle(&s, &p, port, req)
        });
        *port_cell.lock().unwrap() = port;
        Self {
            state,
            port,
            prefix,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.prefix)
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn log(&self) -> Vec<Request> {
        self.state().log.clone()
    }

    pub fn keys(&self, repo: &str) -> Vec<Value> {
        self.state().repos.get(repo).cloned().unwrap_or_default()
    }

    pub fn add_repo(&self, repo: &str) {
        self.state().repos.entry(repo.into()).or_default();
    }

    /// Adds a key directly (as if made earlier); returns its id.
    pub fn add_key(
        &self,
        repo: &str,
        key: &str,
        title: &str,
        read_only: bool,
        created: &str,
        last_used: Option<&str>,
    ) -> u64 {
        let mut st = self.state();
        st.next_id += 1;
        let id = st.next_id;
        let v = json!({
            "id": id, "key": key, "url": format!("https://api.github.com/repos/{repo}/keys/{id}"),
            "title": title, "verified": true, "created_at": created, "read_only": read_only,
            "added_by": "someone", "last_used": last_used, "enabled": true,
        });
        st.repos.entry(repo.into()).or_default().push(v);
        id
    }

    pub fn fault(&self, f: Fault) {
        self.state().faults.push_back(f);
    }
}

fn not_found() -> Response {
    Response::json(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn bare(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn handle(state: &Arc<Mutex<State>>, prefix: &str, port: u16, req: Request) -> Option<Response> {
    let stall = {
        let st = state.lock().unwrap();
        (req.method == "POST" && req.path.ends_with("/keys") && st.stall_registrations_ms > 0)
            .then_some(st.stall_registrations_ms)
    };
    let answer = handle_now(state, prefix, port, req);
    if let Some(ms) = stall {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    answer
}

fn handle_now(
    state: &Arc<Mutex<State>>,
    prefix: &str,
    port: u16,
    req: Request,
) -> Option<Response> {
    let mut st = state.lock().unwrap();
    st.log.push(req.clone());
    let Some(path) = req.path.strip_prefix(prefix).map(str::to_string) else {
        return Some(not_found());
    };
    if let Some(i) = st
        .faults
        .iter()
        .position(|f| f.method == req.method && path.ends_with(&f.path_suffix))
    {
        let fault = st.faults.remove(i).unwrap();
        if fault.apply_first {
            let _ = route(&mut st, prefix, port, &req, &path);
        }
        return fault.response;
    }
    Some(route(&mut st, prefix, port, &req, &path))
}

fn route(st: &mut State, prefix: &str, port: u16, req: &Request, path: &str) -> Response {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let auth = req.header("authorization").unwrap_or("").to_string();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["meta"]) => Response::json(
            200,
            json!({"verifiable_password_authentication": false, "ssh_keys": st.meta_keys}),
        ),
        ("GET", ["repos", _o, _r, "installation"]) => {
            if !jwt_ok(st, &auth) {
                return Response::json(
                    401,
                    json!({"message": "A JSON web token could not be decoded"}),
                );
            }
            if st.app_not_on.contains(&format!("{}/{}", segs[1], segs[2])) {
                return not_found();
            }
            Response::json(
                200,
                json!({"id": 77, "account": {"login": segs[1]}, "app_id": 1, "permissions": app_permissions(st)}),
            )
        }
        ("GET", ["app"]) => {
            if !jwt_ok(st, &auth) {
                return Response::json(
                    401,
                    json!({"message": "A JSON web token could not be decoded"}),
                );
            }
            Response::json(
                200,
                json!({"id": 1, "slug": "sealkey-test", "client_id": "Iv1.fakeclient", "name": "sealkey test", "owner": {"login": "acme", "type": "Organization"}}),
            )
        }
        ("POST", ["app", "installations", "77", "access_tokens"]) => {
            if !jwt_ok(st, &auth) {
                return Response::json(
                    401,
                    json!({"message": "A JSON web token could not be decoded"}),
                );
            }
            // GitHub narrows the token to the repositories and permissions asked for, and refuses
            // ones the installation does not have (422).
            let body = if req.body.is_empty() {
                json!({})
            } else {
                req.json()
            };
            if let Some(names) = body["repositories"].as_array() {
                let owner = "acme";
                for n in names {
                    let slug = format!("{owner}/{}", n.as_str().unwrap_or_default());
                    if st.app_not_on.contains(&slug) || !st.repos.contains_key(&slug) {
                        return Response::json(
                            422,
                            json!({"message": "There is at least one repository that does not exist or is not accessible to the parent installation.", "documentation_url": "https://docs.github.com/rest"}),
                        );
                    }
                }
            }
            if let Some(asked) = body["permissions"].as_object() {
                let granted = app_permissions(st);
                for (k, v) in asked {
                    let ok = matches!(
                        (granted[k].as_str(), v.as_str()),
                        (Some("write"), _) | (Some("read"), Some("read"))
                    );
                    if !ok {
                        return Response::json(
                            422,
                            json!({"message": "The permissions requested are not granted to this installation.", "documentation_url": "https://docs.github.com/rest"}),
                        );
                    }
                }
            }
            Response::json(
                201,
                json!({"token": st.installation_token, "expires_at": expires_at(st), "permissions": req.json()["permissions"]}),
            )
        }
        ("GET", ["repos", o, r]) => {
            let slug = format!("{o}/{r}");
            if auth != format!("Bearer {}", st.installation_token)
                && auth != format!("Bearer {}", st.token)
            {
                return Response::json(
                    401,
                    json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
                );
            }
            if !st.repos.contains_key(&slug) || st.app_not_on.contains(&slug) {
                return not_found();
            }
            Response::json(
                200,
                json!({"id": 4242, "name": r, "full_name": slug, "private": true, "owner": {"login": o}}),
            )
        }
        (_, ["repos", o, r, "keys", rest @ ..]) => {
            let ok_auth = auth == format!("Bearer {}", st.token)
                || auth == format!("Bearer {}", st.installation_token);
            if !ok_auth {
                return Response::json(
                    401,
                    json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
                );
            }
            let slug = format!("{o}/{r}");
            if !st.repos.contains_key(&slug) {
                return not_found();
            }
            match (req.method.as_str(), rest) {
                ("GET", []) => {
                    let page: usize = req
                        .query
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("page="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    let keys = &st.repos[&slug];
                    let size = st.page_size;
                    let chunk: Vec<Value> = keys
                        .iter()
                        .skip((page - 1) * size)
                        .take(size)
                        .cloned()
                        .collect();
                    let last = keys.len().div_ceil(size).max(1);
                    let mut resp = Response::json(200, Value::Array(chunk));
                    if page < last {
                        let base = format!("http://127.0.0.1:{port}{prefix}/repos/{slug}/keys");
                        resp = resp.with_header(
                            "Link",
                            &format!("<{base}?per_page={size}&page={}>; rel=\"next\", <{base}?per_page={size}&page={last}>; rel=\"last\"", page + 1),
                        );
                    }
                    resp
                }
                ("POST", []) => {
                    let body = req.json();
                    let Some(key) = body["key"].as_str() else {
                        return Response::json(
                            422,
                            json!({"message": "Invalid request.\n\n\"key\" wasn't supplied."}),
                        );
                    };
                    let key = bare(key);
                    let taken_here = st
                        .repos
                        .values()
                        .flatten()
                        .any(|k| k["key"] == key.as_str());
                    if st.invalid.contains(&key) {
                        return Response::json(
                            422,
                            json!({"message": "Validation Failed", "errors": [{"resource": "PublicKey", "code": "custom", "field": "key", "message": "key is invalid. You must supply a key in OpenSSH public key format"}]}),
                        );
                    }
                    if taken_here || st.elsewhere.contains(&key) {
                        return Response::json(
                            422,
                            json!({"message": "Validation Failed", "errors": [{"resource": "PublicKey", "code": "custom", "field": "key", "message": "key is already in use"}]}),
                        );
                    }
                    st.next_id += 1;
                    let id = st.next_id;
                    let v = json!({
                        "id": id, "key": key, "url": format!("https://api.github.com/repos/{slug}/keys/{id}"),
                        "title": body["title"], "verified": true, "created_at": "2026-11-26T12:00:00Z",
                        "read_only": body["read_only"].as_bool().unwrap_or(false),
                        "added_by": "sealkey-test", "last_used": null, "enabled": true,
                    });
                    st.repos.get_mut(&slug).unwrap().push(v.clone());
                    Response::json(201, v).with_header(
                        "Location",
                        &format!("https://api.github.com/repos/{slug}/keys/{id}"),
                    )
                }
                (m, [id]) => {
                    let id: u64 = id.parse().unwrap_or(0);
                    let keys = st.repos.get_mut(&slug).unwrap();
                    let pos = keys.iter().position(|k| k["id"] == id);
                    match (m, pos) {
                        ("GET", Some(i)) => Response::json(200, keys[i].clone()),
                        ("DELETE", Some(i)) => {
                            keys.remove(i);
                            Response::empty(204)
                        }
                        _ => not_found(),
                    }
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn expires_at(st: &State) -> String {
    match st.token_lifetime_secs {
        Some(secs) => (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs))
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        None => "2099-01-01T00:00:00Z".into(),
    }
}

fn app_permissions(st: &State) -> Value {
    st.app_permissions.clone().unwrap_or_else(
        || json!({"administration": "write", "contents": "read", "metadata": "read"}),
    )
}

/// Checks an RS256 JWT against the App's public key, and its time window.
fn jwt_ok(st: &State, auth: &str) -> bool {
    let pems: Vec<&String> = st
        .app_public_pem
        .iter()
        .chain(st.app_more_public_pems.iter())
        .collect();
    pems.iter().any(|pem| jwt_signed_by(pem, auth))
}

/// Checks an RS256 JWT against one public key of the App, and its time window.
fn jwt_signed_by(pem: &str, auth: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::signature::Verifier;
    let Some(jwt) = auth.strip_prefix("Bearer ") else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    // GitHub accepts only RS256: a header naming another algorithm is refused even when the
    // signature is an RS256 one.
    let header: Value = URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .unwrap_or(Value::Null);
    if header["alg"] != "RS256" {
        return false;
    }
    let key = rsa::RsaPublicKey::from_pkcs1_pem(pem).unwrap();
    let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key);
    let Ok(sig_bytes) = URL_SAFE_NO_PAD.decode(parts[2]) else {
        return false;
    };
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig_bytes.as_slice()) else {
        return false;
    };
    if verifying
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_err()
    {
        return false;
    }
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    claims["iat"].as_i64().is_some_and(|i| i <= now)
        && claims["exp"]
            .as_i64()
            .is_some_and(|e| e > now && e - now <= 600)
}
