//! Shared helpers: a private workspace per test, a builder around the real
//! `envcloak` binary (and other programs) with a timeout, age helpers that use
//! the real `age` CLI, and checks for external tools.
//!
//! Failure messages built here never show a secret: every value a test
//! registers with [`Workspace::secret`] is replaced by `[SECRET]` before
//! output is printed.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod bao;
pub mod certs;
mod files;
pub mod jwt;
pub mod moto;
pub mod net;
pub mod postgres;
mod process;
pub mod proxy;
pub mod tls_front;
mod tool;
mod tools;

pub use files::*;
pub use process::*;
pub use tools::*;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_envcloak");
/// A hang fails the test after this long instead of blocking the suite.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Folder of this test binary's sources (for the python drivers).
pub const CLI_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli");
/// The dotenv corpus (owned by the dotenv parser's author; read only).
pub const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/dotenv");

/// The two ways `run` starts a child: exec (default) and supervised (`--mask`).
pub const MODES: [(&str, &[&str]); 2] = [("exec", &[]), ("supervised", &["--mask"])];

/// Fails the test with the install hint unless each [`Tool`] is installed;
/// the test also carries `#[cfg_attr(missing_TOOL, ignore = "needs …")]`
/// (see `support/tool.rs`).
macro_rules! require {
    ($($tool:ident),+ $(,)?) => {
        $( $crate::support::need($crate::support::Tool::$tool); )+
    };
}

/// Values to redact from failure messages.
type Secrets = Arc<Mutex<Vec<String>>>;

/// A temporary folder that is the test's current folder and `HOME`.
pub struct Workspace {
    dir: tempfile::TempDir,
    secrets: Secrets,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("envcloak-cli-").tempdir().expect("create a temporary folder");
        Self { dir, secrets: Arc::default() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `contents` to `rel` (parents created), mode 0644.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Writes a config file that names a server address, then trusts it with
    /// `envcloak trust` (the trust store lives in this folder, the tests'
    /// HOME), as a user would after reading it.
    pub fn write_trusted(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.write(rel, contents);
        let out = self.envcloak().arg("trust").arg(&path).run();
        assert_eq!(out.code(), 0, "envcloak trust {}\n{}", path.display(), out.diag());
        path
    }

    /// Writes an executable script.
    pub fn script(&self, rel: impl AsRef<Path>, text: &str) -> PathBuf {
        let path = self.write(rel, text);
        chmod(&path, 0o755);
        path
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        std::fs::read(self.join(rel)).expect("read a test file")
    }

    /// Registers a (fake) secret value so failure messages redact it.
    pub fn secret(&self, value: &str) -> String {
        self.secrets.lock().unwrap().push(value.to_owned());
        value.to_owned()
    }

    /// `bytes` as text with every registered secret replaced by `[SECRET]`:
    /// safe to print in a failure message.
    pub fn redact(&self, bytes: &[u8]) -> String {
        let secrets = self.secrets.lock().unwrap();
        let text = String::from_utf8_lossy(bytes).into_owned();
        secrets.iter().filter(|s| !s.is_empty()).fold(text, |t, s| t.replace(s.as_str(), "[SECRET]"))
    }

    /// Runs `command` as the session leader of a new pseudo-terminal with
    /// `pty_driver.py screen` (which kills the whole session after
    /// `timeout_secs`); returns the driver's report and what was written on
    /// the terminal. Needs [`Tool::PythonDotenv`].
    pub fn on_pty(&self, timeout_secs: u32, command: &[&str]) -> (serde_json::Value, Vec<u8>) {
        self.on_pty_replying(&[], timeout_secs, command)
    }

    /// [`Self::on_pty`], answering each prompt with the next of `answers`
    /// (`pty_driver.py reply`).
    pub fn on_pty_replying(
        &self,
        answers: &[&str],
        timeout_secs: u32,
        command: &[&str],
    ) -> (serde_json::Value, Vec<u8>) {
        let screen = tempfile::NamedTempFile::new_in(self.path()).expect("create a screen file");
        let mut driver = self.command(py()).arg(format!("{CLI_DIR}/pty_driver.py"));
        driver = match answers {
            [] => driver.arg("screen").arg(screen.path()),
            answers => driver.arg("reply").arg(answers.join("\n")).env("PTY_SCREEN", screen.path()),
        };
        let out = driver
            .arg(timeout_secs.to_string())
            .args(command)
            .timeout(Duration::from_secs(u64::from(timeout_secs) + 20))
            .run();
        out.expect(0);
        let report = serde_json::from_slice(&out.stdout).expect("driver report");
        (report, std::fs::read(screen.path()).expect("read the screen file"))
    }

    /// The envcloak binary, run in this folder with a clean environment.
    pub fn envcloak(&self) -> Cmd {
        self.command(BIN)
    }

    /// Any program, run in this folder with the same clean environment:
    /// only `PATH`, and `HOME` set to this folder. Nothing of the machine's
    /// `ENVCLOAK_*`, `CI` or `HOME` leaks in.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut command = Command::new(program.as_ref());
        command.env_clear().current_dir(self.path()).env("HOME", self.path());
        command.env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()));
        Cmd {
            shown: program.as_ref().to_string_lossy().into_owned(),
            command,
            stdin: None,
            timeout: TIMEOUT,
            secrets: Arc::clone(&self.secrets),
        }
    }

    /// `envcloak keygen -o rel`.
    pub fn keygen(&self, rel: &str) -> Identity {
        self.envcloak().args(["keygen", "-o", rel]).run().expect(0);
        Identity::load(&self.join(rel))
    }

    /// `age-keygen -o rel` (the file gets mode 0600).
    pub fn age_keygen(&self, rel: &str) -> Identity {
        need(Tool::Age);
        self.command("age-keygen").args(["-o", rel]).run().expect(0);
        Identity::load(&self.join(rel))
    }

    /// Encrypts `plaintext` (given on stdin, so no plaintext file is left)
    /// with the `age` CLI to `recipients`, into `rel`.
    pub fn age_encrypt(&self, rel: &str, plaintext: impl AsRef<[u8]>, recipients: &[&str], armor: bool) -> PathBuf {
        need(Tool::Age);
        if let Some(parent) = self.join(rel).parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        let mut cmd = self.command("age").args(["-o", rel]);
        if armor {
            cmd = cmd.arg("-a");
        }
        for recipient in recipients {
            cmd = cmd.args(["-r", recipient]);
        }
        cmd.stdin(plaintext.as_ref()).run().expect(0);
        self.join(rel)
    }

    /// A project: identity `key.txt` (envcloak keygen), `secrets.env.age`
    /// holding `dotenv` (encrypted with the age CLI), and an `envcloak.toml`
    /// whose default profile `dev` imports it.
    pub fn project(dotenv: &str) -> (Workspace, Identity) {
        let ws = Workspace::new();
        let identity = ws.keygen("key.txt");
        ws.age_encrypt("secrets.env.age", dotenv, &[&identity.recipient], false);
        ws.write("envcloak.toml", PROJECT_TOML);
        (ws, identity)
    }
}

/// The config [`Workspace::project`] writes.
pub const PROJECT_TOML: &str = "default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n";

/// An age identity file and its recipient.
pub struct Identity {
    pub path: PathBuf,
    pub recipient: String,
}

impl Identity {
    /// Reads the `# public key: age1…` comment of an identity file.
    pub fn load(path: &Path) -> Identity {
        let text = std::fs::read_to_string(path).expect("read the identity file");
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("identity file has a public key comment")
            .trim()
            .to_owned();
        Identity { path: path.to_owned(), recipient }
    }
}

/// `n` random bytes as hex, from /dev/urandom.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
