//! A real PostgreSQL server per test (Debian's `postgresql` package), on a
//! free loopback port in a temporary data folder, with password
//! (SCRAM) authentication; run as the `postgres` user through `runuser`
//! when the tests run as root, as PostgreSQL refuses to run as root.
//! Stopped (immediately) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::net::free_port;
use super::{need, running_as_root, Tool};

/// The superuser's (fake) password.
pub const SUPERUSER_PASSWORD: &str = "fake-postgres-superuser";

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Postgres {
    /// Initialises a cluster in a new folder and starts it.
    pub fn start() -> Postgres {
        need(Tool::Postgres);
        let bin = server_bin().expect("PostgreSQL's server programs (apt-get install postgresql)");
        let dir = tempfile::Builder::new().prefix("envcloak-pg-").tempdir().expect("create a folder");
        let password_file = dir.path().join("superuser-password");
        std::fs::write(&password_file, SUPERUSER_PASSWORD).expect("write the password file");
        if running_as_root() {
            chown_to_postgres(dir.path());
        }
        let data = dir.path().join("data");
        let pg = Postgres { port: free_port(), bin, dir };
        pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                &format!("--pwfile={}", password_file.display()),
            ],
        );
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", pg.port, pg.dir.path().display());
        let log = pg.dir.path().join("server.log");
        pg.run("pg_ctl", &["-D", &data.to_string_lossy(), "-o", &options, "-l", &log.to_string_lossy(), "-w", "start"]);
        pg
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL Vault's database engine connects with (its own credentials
    /// filled in by Vault's `{{username}}` and `{{password}}` templates).
    pub fn vault_connection_url(&self) -> String {
        format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// Whether `user` with `password` can log in (runs `psql -c 'select 1'`).
    pub fn can_log_in(&self, user: &str, password: &str) -> bool {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user, "-d", "postgres", "-tAc", "select 1"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// One of the server's programs, to run as `postgres` when root.
    fn program(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if running_as_root() {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(&exe);
            runuser
        } else {
            Command::new(&exe)
        }
    }

    /// Runs one of the server's programs; it must succeed.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .program(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .program("pg_ctl")
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .output();
    }
}

/// The folder of `initdb` and `pg_ctl` (Debian keeps them out of `PATH`,
/// in `/usr/lib/postgresql/VERSION/bin`), the newest version first.
pub fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn chown_to_postgres(path: &Path) {
    let out = Command::new("chown").args(["-R", "postgres:", &path.to_string_lossy()]).output().expect("run chown");
    assert!(out.status.success(), "chown postgres: {}", String::from_utf8_lossy(&out.stderr));
}
