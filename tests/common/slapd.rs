//! A throwaway OpenLDAP server for tests: its own slapd.conf (mdb, the core,
//! cosine, inetorgperson and nis schemas, a 16 GiB map (address space, not
//! disk: the crash trials put 100 districts on one server), no size limits,
//! the `syncprov` overlay for content sync (RFC 4533), optionally a
//! read-only consumer replicating another test server)
//! in a temp dir, a random loopback port, optional TLS (ldaps:// and StartTLS)
//! and an ldapi:// socket. Stopped and removed on drop; the one shared per
//! test binary ([`shared`]) is stopped by a watchdog when the tests exit.
//!
//! The binary is `$SLAPD_BIN` (default /usr/sbin/slapd). When it is missing,
//! tests fail under `CI=true` and are skipped with a notice otherwise.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=rollcall,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=rollcall,dc=test";
pub const ROOT_PW: &str = "test-secret";

/// The slapd binary, or `None` (after a notice) when it is missing outside CI.
pub fn binary() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var("SLAPD_BIN").unwrap_or_else(|_| "/usr/sbin/slapd".into()));
    if bin.is_file() {
        return Some(bin);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "slapd not found at {} (set SLAPD_BIN); CI=true, so this is a failure: run scripts/test, which installs slapd",
            bin.display()
        );
    }
    eprintln!(
        "NOTICE: slapd not found at {}; skipping this LDAP test (run scripts/test to install it)",
        bin.display()
    );
    None
}

/// Server TLS material: PEM paths.
#[derive(Clone, Debug)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    pub port: u16,
    pub tls_port: Option<u16>,
    tls: Option<Tls>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `%2F`-encodes a socket path for an ldapi:// URL.
pub fn ldapi_url(path: &Path) -> String {
    let mut out = String::from("ldapi://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a test server is set up beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub tls: Option<Tls>,
    /// Extra schema (slapd.conf `attributetype`/`objectclass` lines).
    pub schema: String,
    /// syncprov's session log: how many deletes a cookie can catch up on
    /// without a present phase (default 10,000).
    pub sessionlog: Option<usize>,
    /// A consumer replicating this provider URL (syncrepl
    /// refreshAndPersist), read-only, itself serving syncprov.
    pub provider: Option<String>,
}

impl Slapd {
    pub fn start() -> Option<Slapd> {
        Self::start_with(None)
    }

    pub fn start_with(tls: Option<Tls>) -> Option<Slapd> {
        Self::start_opts(Options {
            tls,
            ..Options::default()
        })
    }

    /// A server with extra schema (slapd.conf `attributetype`/`objectclass`
    /// lines) loaded after the standard ones.
    pub fn start_with_schema(schema: &str) -> Option<Slapd> {
        Self::start_opts(Options {
            schema: schema.to_string(),
            ..Options::default()
        })
    }

    pub fn start_opts(opts: Options) -> Option<Slapd> {
        let bin = binary()?;
        let dir = tempfile::Builder::new().prefix("slapd").tempdir().expect("tempdir");
        let mut s = Slapd {
            dir,
            bin,
            child: None,
            watchdog: None,
            port: 0,
            tls_port: None,
            tls: opts.tls.clone(),
        };
        s.configure(&opts);
        s.launch();
        Some(s)
    }

    /// A server configured (and seeded) but not started, for `slapadd`.
    pub fn offline(opts: Options) -> Option<Slapd> {
        let bin = binary()?;
        let dir = tempfile::Builder::new().prefix("slapd").tempdir().expect("tempdir");
        let mut s = Slapd {
            dir,
            bin,
            child: None,
            watchdog: None,
            port: 0,
            tls_port: None,
            tls: None,
        };
        s.configure(&opts);
        Some(s)
    }

    /// Loads an LDIF with `slapadd -q` (the server must not run): the
    /// physical limit of writing these entries.
    pub fn slapadd(&self, ldif: &Path) {
        let out = Command::new(&self.bin)
            .args(["-T", "add", "-q", "-f"])
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-l")
            .arg(ldif)
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd -q: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server process, e.g. to kill it from another thread.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The whole subtree under `base` as LDIF (ldapsearch), for assertions
    /// on the raw entries.
    pub fn dump(&self, base: &str) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PW,
                "-b",
                base,
            ])
            .args(["(objectClass=*)", "*"])
            .output()
            .expect("ldapsearch (ldap-utils)");
        assert!(
            out.status.success(),
            "ldapsearch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port.expect("a TLS slapd"))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    pub fn ldapi_url(&self) -> String {
        ldapi_url(&self.socket())
    }

    fn configure(&mut self, opts: &Options) {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("db")).expect("db dir");
        let mut conf = String::new();
        for s in ["core", "cosine", "inetorgperson", "nis"] {
            conf.push_str(&format!("include /etc/ldap/schema/{s}.schema\n"));
        }
        if !opts.schema.is_empty() {
            std::fs::write(d.join("extra.schema"), &opts.schema).expect("schema");
            conf.push_str(&format!("include {}/extra.schema\n", d.display()));
        }
        conf.push_str(&format!("pidfile {}/slapd.pid\n", d.display()));
        conf.push_str("modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload syncprov\n");
        if let Some(t) = &self.tls {
            conf.push_str(&format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ));
        }
        conf.push_str(&format!(
            "database mdb\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {ROOT_PW}\ndirectory {}/db\n\
             maxsize 17179869184\ndbnosync\nsizelimit unlimited\n\
             index objectClass eq\n\
             index cn,departmentNumber,ou,employeeType,businessCategory,description eq\n\
             index uid,employeeNumber eq,sub\n\
             index givenName,sn sub\n\
             index entryCSN,entryUUID eq\n",
            d.display()
        ));
        if let Some(provider) = &opts.provider {
            conf.push_str(&format!(
                "syncrepl rid=001 provider={provider} type=refreshAndPersist searchbase=\"{SUFFIX}\" \
                 bindmethod=simple binddn=\"{ROOT_DN}\" credentials={ROOT_PW} retry=\"1 +\" timeout=5\n"
            ));
        }
        // Content sync (RFC 4533) for the change listener.
        conf.push_str(&format!(
            "overlay syncprov\nsyncprov-checkpoint 100 1\nsyncprov-sessionlog {}\n",
            opts.sessionlog.unwrap_or(10_000)
        ));
        std::fs::write(d.join("slapd.conf"), conf).expect("slapd.conf");
        if opts.provider.is_some() {
            // A consumer gets everything, the suffix too, from its provider.
            return;
        }
        let seed =
            format!("dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: rollcall\ndc: rollcall\n");
        std::fs::write(d.join("seed.ldif"), seed).expect("seed");
        let out = Command::new(&self.bin)
            .args(["-T", "add", "-f"])
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("seed.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts slapd (on the same ports when restarting) and waits until it
    /// accepts connections.
    fn launch(&mut self) {
        for attempt in 0..5 {
            if self.port == 0 || attempt > 0 {
                self.port = free_port();
                if self.tls.is_some() {
                    self.tls_port = Some(free_port());
                }
            }
            let mut urls = format!("ldap://127.0.0.1:{}/ {}", self.port, self.ldapi_url());
            if let Some(p) = self.tls_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let _ = std::fs::remove_file(self.socket());
            // SLAPD_DEBUG=stats (any slapd -d level) logs every operation to slapd.log.
            let level = std::env::var("SLAPD_DEBUG").unwrap_or_else(|_| "0".into());
            let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("log");
            let child = Command::new(&self.bin)
                .args(["-d", &level, "-h", &urls, "-f"])
                .arg(self.dir.path().join("slapd.conf"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn slapd");
            let pid = child.id();
            self.child = Some(child);
            if self.wait_ready() {
                self.watchdog = Some(watchdog(pid, self.dir.path()));
                return;
            }
            self.kill();
        }
        let log = std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
        panic!("slapd did not start: {log}");
    }

    fn wait_ready(&mut self) -> bool {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            let ok = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self
                    .tls_port
                    .is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok());
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }

    /// Stops the server (like a crash: no clean shutdown).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port;
        self.launch();
        assert_eq!(self.port, port, "slapd came back on another port");
    }

    /// Writes the root password to a 0600 file and returns its path.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let p = dir.join("bind.pw");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .expect("password file");
        writeln!(f, "{ROOT_PW}").expect("write password");
        p
    }

    /// `--set` overrides that point rollcall at this server under `base`.
    pub fn sets(&self, dir: &Path, base: &str) -> Vec<String> {
        vec![
            "directory.backend=\"ldap\"".into(),
            format!("directory.ldap.url=\"{}\"", self.url()),
            format!("directory.ldap.base_dn=\"{base}\""),
            format!("directory.ldap.bind_dn=\"{ROOT_DN}\""),
            format!(
                "directory.ldap.bind_password_file=\"{}\"",
                self.password_file(dir).display()
            ),
            "directory.ldap.timeout_secs=10".into(),
            "directory.ldap.connect_timeout_secs=2".into(),
        ]
    }
}

/// An LDIF dump as entries: lowercased DN → lowercased attribute → values
/// (base64 values decoded).
pub type Entries =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, std::collections::BTreeSet<String>>>;

impl Slapd {
    /// The subtree under `base` as [`Entries`] (empty when it is missing).
    pub fn entries(&self, base: &str) -> Entries {
        use base64::Engine as _;
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PW,
                "-b",
                base,
            ])
            .args(["(objectClass=*)", "*"])
            .output()
            .expect("ldapsearch (ldap-utils)");
        // 32: no such object (nothing synced yet).
        assert!(
            out.status.success() || out.status.code() == Some(32),
            "ldapsearch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut entries = Entries::new();
        for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
            let mut dn = String::new();
            let mut attrs: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
            for line in block.lines() {
                let Some((attr, rest)) = line.split_once(':') else {
                    continue;
                };
                let value = match rest.strip_prefix(':') {
                    Some(b64) => String::from_utf8_lossy(
                        &base64::engine::general_purpose::STANDARD
                            .decode(b64.trim())
                            .expect("base64 in LDIF"),
                    )
                    .into_owned(),
                    None => rest.trim_start().to_string(),
                };
                if attr.eq_ignore_ascii_case("dn") {
                    dn = value.to_ascii_lowercase();
                } else {
                    attrs.entry(attr.to_ascii_lowercase()).or_default().insert(value);
                }
            }
            entries.insert(dn, attrs);
        }
        entries
    }

    /// Runs `ldapmodify` (as the root DN) with this LDIF.
    pub fn ldapmodify(&self, ldif: &str) {
        self.tool("ldapmodify", &[], ldif);
    }

    /// Runs an ldap-utils client (`ldapadd`, `ldapmodify`, `ldapmodrdn`,
    /// `ldapdelete`) as the root DN with these arguments and standard input.
    pub fn tool(&self, tool: &str, args: &[&str], stdin: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ldap-utils");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write LDIF");
        let out = child.wait_with_output().expect(tool);
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `--set`s for an ldap authority `name` writing to this server under
    /// `base` (bound as the root DN, password file in `dir`).
    pub fn authority_sets(&self, name: &str, dir: &Path, base: &str, schools: &[&str]) -> Vec<String> {
        let schools = schools
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let pw = dir.join(format!("{name}.pw"));
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::copy(self.password_file(dir), &pw).expect("password file");
        vec![
            format!("authorities.{name}.kind=\"ldap\""),
            format!("authorities.{name}.url=\"{}\"", self.url()),
            format!("authorities.{name}.bind_dn=\"{ROOT_DN}\""),
            format!("authorities.{name}.bind_password_file=\"{}\"", pw.display()),
            format!("authorities.{name}.ldap.base_dn=\"{base}\""),
            format!("authorities.{name}.schools=[{schools}]"),
            format!("authorities.{name}.retry.base_seconds=0.05"),
            format!("authorities.{name}.retry.max_seconds=0.4"),
            format!("authorities.{name}.timeout_seconds=5.0"),
            "sync.poll_seconds=0.05".to_string(),
        ]
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills slapd and removes its dir once the test process is gone.
fn watchdog(slapd: u32, dir: &Path) -> Child {
    let script = format!(
        "while kill -0 {} 2>/dev/null && kill -0 {slapd} 2>/dev/null; do sleep 0.5; done; kill {slapd} 2>/dev/null; sleep 0.2; rm -rf '{}'",
        std::process::id(),
        dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog")
}

/// One server for the whole test binary (each user takes its own base DN).
pub fn shared() -> Option<&'static Slapd> {
    static SHARED: OnceLock<Option<Slapd>> = OnceLock::new();
    SHARED.get_or_init(Slapd::start).as_ref()
}

/// A fresh base DN under the suffix.
pub fn fresh_base() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("ou=t{},{SUFFIX}", N.fetch_add(1, Ordering::Relaxed))
}

/// A CA and a server certificate for 127.0.0.1 made with the openssl CLI.
pub fn make_certs(dir: &Path, name: &str) -> Tls {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name} test CA"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    Tls { ca, cert, key }
}
