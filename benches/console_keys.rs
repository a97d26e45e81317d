//! Console key latency in a real terminal, next to `less` in the same run:
//! the real release binary runs in tmux at 120×40, keys are sent through a
//! tmux control-mode client, and the time from sending a key to the first
//! output the program writes back (the changed screen) is measured. `less`
//! paging a long file forwards and back is the yardstick; the console opens
//! and closes the help overlay (`?`, `Esc`) on the dashboard and moves the
//! cursor in the users table (`j`, `k`), on the demo district and on a
//! district of 1,000,000 users.
//!
//!     cargo bench --bench console_keys                      # demo + 1M (built once in /tmp/rollcall-console-1m)
//!     cargo bench --bench console_keys -- --presses 200     # more samples (default 100 per target)
//!     cargo bench --bench console_keys -- --skip-1m         # the demo and less only
//!     cargo bench --bench console_keys -- --data-dir-1m DIR # another 1M data dir
//!
//! Before each key the pane must be quiet (no output for 150 ms), so a
//! sample is one key's own redraw, never a background one.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A tmux server of our own, with one session running `cmd`.
struct Tmux {
    socket: String,
    session: String,
    client: Child,
    stdin: ChildStdin,
    lines: Receiver<(Instant, String)>,
}

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let socket = format!("rollcall-bench-{}-{name}", std::process::id());
        let session = "bench".to_string();
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "40",
                cmd,
            ])
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux new-session failed");
        let _ = Command::new("tmux")
            .args(["-L", &socket, "set-option", "-g", "window-size", "manual"])
            .status();
        let mut client = Command::new("tmux")
            .args(["-L", &socket, "-C", "attach-session", "-t", &session])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tmux control client");
        let mut stdin = client.stdin.take().expect("stdin");
        let stdout = client.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        writeln!(stdin, "refresh-client -C 120x40").expect("write");
        writeln!(stdin, "resize-window -t {session} -x 120 -y 40").expect("write");
        stdin.flush().expect("flush");
        Tmux {
            socket,
            session,
            client,
            stdin,
            lines,
        }
    }

    /// Waits until the pane wrote nothing for `quiet`; at most `max`.
    fn settle(&self, quiet: Duration, max: Duration) {
        let start = Instant::now();
        loop {
            match self.lines.recv_timeout(quiet) {
                Ok(_) => {
                    if start.elapsed() > max {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => panic!("the tmux client ended"),
            }
        }
    }

    /// Sends a key; returns how long until the pane's first output.
    fn press(&mut self, key: &str) -> Duration {
        while self.lines.try_recv().is_ok() {}
        let sent = Instant::now();
        writeln!(self.stdin, "send-keys -t {} {key}", self.session).expect("write");
        self.stdin.flush().expect("flush");
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok((at, line)) if line.starts_with("%output") => return at.duration_since(sent),
                Ok(_) => {}
                Err(e) => panic!("no output after key {key}: {e:?}"),
            }
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, secs: u64) {
        let start = Instant::now();
        while !self.screen().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "waited {secs} s for {what:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.client.kill();
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Presses `keys` in turn `presses` times; the latencies.
fn measure(t: &mut Tmux, keys: &[&str], presses: usize, quiet: Duration) -> Vec<Duration> {
    let mut out = Vec::with_capacity(presses);
    for i in 0..presses {
        t.settle(quiet, Duration::from_secs(5));
        out.push(t.press(keys[i % keys.len()]));
    }
    t.settle(quiet, Duration::from_secs(5));
    out
}

fn report(rows: &mut Vec<(String, Vec<Duration>)>, name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<46} n={:<4} p50 {:>6.1} ms  p90 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO))
    );
    rows.push((name.to_string(), samples));
}

/// A district of 500 schools × 2,000 users without authorities (the
/// million users are not mirrored), built once.
fn district_1m(dir: &Path) {
    if dir.join("demo.json").exists() {
        return;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("rollcall.toml"),
        "# no authorities: the million users are not mirrored\n",
    )
    .expect("rollcall.toml");
    eprintln!("building the 1,000,000-user district in {} (once) …", dir.display());
    let t = Instant::now();
    let settings = rollcall::engine::Settings::load(
        &rollcall::engine::config::LoadOptions::default(),
        Some(dir.to_path_buf()),
        false,
    )
    .expect("settings");
    let mut engine = rollcall::engine::Engine::open(settings).expect("engine");
    let spec = rollcall::engine::demo::district::DistrictSpec {
        schools: 500,
        users_per_school: 2000,
        seed: 1,
    };
    rollcall::engine::demo::build(&mut engine, &spec, &mut rollcall::engine::jobs::Quiet).expect("demo");
    eprintln!("built in {:.0} s", t.elapsed().as_secs_f64());
}

fn main() {
    let have =
        |p: &str| Command::new(p).arg("-V").output().is_ok() || Command::new(p).arg("--version").output().is_ok();
    assert!(have("tmux") && have("less"), "this benchmark needs tmux and less");
    let bin = env!("CARGO_BIN_EXE_rollcall");
    let presses: usize = arg("--presses").and_then(|s| s.parse().ok()).unwrap_or(100);
    let quiet = Duration::from_millis(150);
    println!("rollcall: {bin}");
    println!("load average at the start: {}", loadavg());
    let mut rows = Vec::new();

    // The yardstick: less paging a long file.
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = tmp.path().join("long.txt");
    let body: String = (0..20_000)
        .map(|i| format!("{i:>6} 2026-11-21T10:00:00Z  INFO rollcall::engine::import: line {i} of a long file\n"))
        .collect();
    std::fs::write(&text, body).expect("text");
    {
        let mut t = Tmux::start("less", &format!("less {}", text.display()));
        t.wait_for("of a long file", 10);
        report(
            &mut rows,
            "less: f / b (page forward, back)",
            measure(&mut t, &["f", "b"], presses, quiet),
        );
    }

    // The demo district (8 schools × 250 users).
    let demo = tmp.path().join("demo");
    let ok = Command::new(bin)
        .arg("--data-dir")
        .arg(&demo)
        .args(["demo", "--no-tui"])
        .stdout(Stdio::null())
        .status()
        .expect("rollcall demo")
        .success();
    assert!(ok, "rollcall demo failed");
    console_targets(bin, &demo, "demo (8 × 250)", presses, quiet, &mut rows);

    if !flag("--skip-1m") {
        let dir = PathBuf::from(arg("--data-dir-1m").unwrap_or_else(|| "/tmp/rollcall-console-1m".into()));
        district_1m(&dir);
        console_targets(bin, &dir, "1,000,000 users", presses, quiet, &mut rows);
    }
    println!("load average at the end: {}", loadavg());
}

/// `?`/`Esc` on the dashboard and `j`/`k` in the users table.
fn console_targets(
    bin: &str,
    dir: &Path,
    what: &str,
    presses: usize,
    quiet: Duration,
    rows: &mut Vec<(String, Vec<Duration>)>,
) {
    let cmd = format!("TERM=xterm-256color {bin} --data-dir {} tui", dir.display());
    let mut t = Tmux::start("console", &cmd);
    t.wait_for("Last runs", 120);
    // Let the dashboard finish loading (role counts at a million users).
    t.wait_for("memberships, all schools", 300);
    t.settle(Duration::from_millis(500), Duration::from_secs(30));
    report(
        rows,
        &format!("rollcall {what}: ? / Esc (help)"),
        measure(&mut t, &["?", "Escape"], presses, quiet),
    );
    t.press("3");
    t.wait_for("Users ·", 30);
    t.wait_for(" of ", 120);
    t.settle(Duration::from_millis(500), Duration::from_secs(30));
    report(
        rows,
        &format!("rollcall {what}: j / k (users table)"),
        measure(&mut t, &["j", "k"], presses, quiet),
    );
    t.press("q");
}
