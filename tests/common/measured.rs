//! Runs the real `rollcall` binary and measures it: exit code, output,
//! wall time, and its peak resident memory: `VmHWM` of
//! `/proc/<pid>/status`, read every 10 ms while it runs (the high-water
//! mark of its own address space; `wait4`'s `ru_maxrss` would include the
//! test process's memory the child was spawned from).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Measured {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Peak RSS in bytes.
    pub max_rss: u64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout_text(), self.stderr_text()))
    }
}

/// Runs `cmd` to its end (killed after `limit`), reading its output as it
/// goes.
// The child is reaped by waitpid (the sampler needs its pid until then).
#[allow(clippy::zombie_processes)]
pub fn run(mut cmd: Command, limit: Duration) -> Measured {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rollcall");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let e = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let reaped = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (reaped.clone(), peak.clone());
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !done.load(Ordering::SeqCst) {
                if let Some(kb) = std::fs::read_to_string(&path).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                }) {
                    peak.fetch_max(kb * 1024, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let done = reaped.clone();
    let killer = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
            if done.load(Ordering::SeqCst) {
                return;
            }
        }
        if !done.load(Ordering::SeqCst) {
            // SAFETY: our own child, not reaped yet (waitpid below reaps it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut status = 0;
    // SAFETY: waits for our own child and fills the status.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    reaped.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    assert_eq!(r, pid, "waitpid");
    let elapsed = t0.elapsed();
    let _ = killer.join();
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Measured {
        code,
        stdout: o.join().unwrap_or_default(),
        stderr: e.join().unwrap_or_default(),
        max_rss: peak.load(Ordering::SeqCst),
        elapsed,
    }
}
