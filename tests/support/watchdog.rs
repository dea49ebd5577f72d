//! Running sealkey under a watchdog: killed past a time limit or a resident-memory limit, with
//! the peak resident size seen (sampled every 20 ms from /proc).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Watched {
    pub out: Output,
    pub elapsed: Duration,
    pub peak_rss_kib: u64,
    /// Why the watchdog killed it, if it did.
    pub killed: Option<String>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `cmd` with `stdin`, killing it past `limit` or `rss_cap_kib` resident.
pub fn run_watched(mut cmd: Command, stdin: &[u8], limit: Duration, rss_cap_kib: u64) -> Watched {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let mut peak = 0;
    let mut killed = None;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        let rss = rss_kib(child.id()).unwrap_or(0);
        peak = peak.max(rss);
        if killed.is_none() {
            if rss > rss_cap_kib {
                killed = Some(format!("killed at {rss} KiB resident"));
            } else if start.elapsed() > limit {
                killed = Some(format!("killed, still running after {limit:?}"));
            }
            if killed.is_some() {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Watched {
        out: Output {
            status,
            stdout: out_t.join().unwrap(),
            stderr: err_t.join().unwrap(),
        },
        elapsed: start.elapsed(),
        peak_rss_kib: peak,
        killed,
    }
}
