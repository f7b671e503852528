//! End to end: dotenv documents encrypted by the `age` CLI reach the child
//! exactly as python-dotenv reads the same plaintext, byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{self, parse_env0, py, Workspace, CORPUS_DIR};

/// python-dotenv's reading of each file: {path: {name: value or null}}.
const DOTENV_VALUES_PY: &str = "\
import json, sys
from dotenv import dotenv_values
out = {p: dotenv_values(p) for p in sys.argv[2:]}
with open(sys.argv[1], 'w', encoding='utf-8') as f:
    json.dump(out, f)
";

/// The child's whole environment, as JSON, into argv[1].
pub const DUMP_ENVIRON_PY: &str = "\
import json, os, sys
with open(sys.argv[1], 'w', encoding='utf-8') as f:
    json.dump(dict(os.environ), f)
";

/// Variables that `${VAR}` expansion may read; given to python-dotenv and to
/// envcloak alike.
const EXPANSION_ENV: &[(&str, &str)] = &[
    ("FROM_ENV", "outer"),
    ("EMPTY_ENV", ""),
    ("SPACED_ENV", "  spaced  "),
    ("DOC_OVERRIDE", "from-env"),
    ("UNICODE_ENV", "ünïcödé ✓"),
];

type Values = BTreeMap<String, Option<String>>;

/// What python-dotenv reads from each of `files`, with [`EXPANSION_ENV`].
fn dotenv_values(ws: &Workspace, files: &[PathBuf]) -> BTreeMap<String, Values> {
    let mut cmd = ws.command(py()).args(["-c", DOTENV_VALUES_PY, "python-dotenv.json"]).args(files);
    for (name, value) in EXPANSION_ENV {
        cmd = cmd.env(name, value);
    }
    cmd.run().expect(0);
    serde_json::from_slice(&ws.read("python-dotenv.json")).expect("python-dotenv output is JSON")
}

fn fifty_plaintext() -> Vec<u8> {
    let path = Path::new(CORPUS_DIR).join("fifty.env");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}); it is written by the dotenv corpus owner", path.display()))
}

/// Encrypts fifty.env to `recipient` with the age CLI, imports it with
/// `identity` and compares what a python child sees with python-dotenv.
fn fifty_matches_python_dotenv(ws: &Workspace, identity: &str, recipient: &str, armor: bool) {
    let plaintext = fifty_plaintext();
    let plain = ws.write("plain/fifty.env", &plaintext);
    let expected = dotenv_values(ws, std::slice::from_ref(&plain))
        .remove(&plain.display().to_string())
        .expect("python-dotenv read the file");
    assert!(expected.len() >= 50, "fifty.env has only {} entries", expected.len());

    let encrypted = ws.age_encrypt("fifty.env.age", &plaintext, &[recipient], armor);
    let head = std::fs::read(&encrypted).unwrap();
    assert!(head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----") == armor, "age -a produced the other format");
    ws.write(
        "envcloak.toml",
        format!("default_profile = \"dev\"\n[age]\nidentity = \"{identity}\"\n[profiles.dev]\nimport = [\"age://fifty.env.age\"]\n"),
    );
    let mut cmd = ws.envcloak().args(["run", "--"]).arg(py()).args(["-c", DUMP_ENVIRON_PY, "child-env.json"]);
    for (name, value) in EXPANSION_ENV {
        cmd = cmd.env(name, value);
    }
    cmd.run().expect(0);
    let seen: BTreeMap<String, String> = serde_json::from_slice(&ws.read("child-env.json")).expect("child env is JSON");

    let mut wrong = Vec::new();
    for (name, value) in &expected {
        let value = value
            .as_deref()
            .unwrap_or_else(|| panic!("python-dotenv reads {name} without `=`; fifty.env should parse"));
        match seen.get(name) {
            None => wrong.push(format!("{name}: missing in the child")),
            Some(got) if got != value => wrong.push(format!("{name}: child saw a different value")),
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} variables differ from python-dotenv:\n  {}",
        wrong.len(),
        expected.len(),
        wrong.join("\n  ")
    );
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn fifty_env_binary_age_file_matches_python_dotenv() {
    require!(Age, PythonDotenv);
    let ws = Workspace::new();
    let id = ws.age_keygen("key.txt");
    fifty_matches_python_dotenv(&ws, "key.txt", &id.recipient, false);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn fifty_env_armored_age_file_matches_python_dotenv() {
    require!(Age, PythonDotenv);
    let ws = Workspace::new();
    let id = ws.keygen("key.txt");
    fifty_matches_python_dotenv(&ws, "key.txt", &id.recipient, true);
}

fn ssh_identity(ws: &Workspace, kind: &[&str]) -> String {
    ws.command("ssh-keygen").args(kind).args(["-N", "", "-C", "envcloak-test", "-q", "-f", "id"]).run().expect(0);
    let public = String::from_utf8(ws.read("id.pub")).unwrap();
    // "TYPE BASE64 COMMENT": age takes "TYPE BASE64".
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_ssh_keygen, ignore = "needs ssh-keygen: apt-get install openssh-client")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn fifty_env_with_ssh_ed25519_identity() {
    require!(Age, PythonDotenv, SshKeygen);
    let ws = Workspace::new();
    let recipient = ssh_identity(&ws, &["-t", "ed25519"]);
    fifty_matches_python_dotenv(&ws, "id", &recipient, false);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_ssh_keygen, ignore = "needs ssh-keygen: apt-get install openssh-client")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn fifty_env_with_ssh_rsa_identity() {
    require!(Age, PythonDotenv, SshKeygen);
    let ws = Workspace::new();
    let recipient = ssh_identity(&ws, &["-t", "rsa", "-b", "2048"]);
    fifty_matches_python_dotenv(&ws, "id", &recipient, true);
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Every corpus file: where python-dotenv reads only valid variables, the
/// child sees exactly its values; otherwise (`err_*` files, names that are
/// not variable names, NUL bytes) envcloak fails closed with 125.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn corpus_files_match_python_dotenv_or_fail_closed() {
    require!(Age, PythonDotenv);
    let ws = Workspace::new();
    let id = ws.keygen("key.txt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS_DIR)
        .expect("the dotenv corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has only {} files", files.len());
    let expected = dotenv_values(&ws, &files);

    let mut problems = Vec::new();
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let values = &expected[&file.display().to_string()];
        let refusable = stem.starts_with("err_")
            || values
                .iter()
                .any(|(name, value)| !valid_name(name) || value.as_deref().is_none_or(|v| v.contains('\0')));
        let plaintext = std::fs::read(file).unwrap();
        ws.age_encrypt(&format!("{stem}.age"), &plaintext, &[&id.recipient], false);
        let mut cmd = ws.envcloak().env("ENVCLOAK_AGE_KEY_FILE", "key.txt").args([
            "run",
            "-i",
            &format!("age://{stem}.age"),
            "--",
            "env",
            "-0",
        ]);
        for (name, value) in EXPANSION_ENV {
            cmd = cmd.env(name, value);
        }
        let out = cmd.run();
        if refusable {
            if out.code() != 125 {
                problems.push(format!(
                    "{stem}: python-dotenv skips or mangles a line, expected exit 125, got {}",
                    out.code()
                ));
            }
            continue;
        }
        if out.code() != 0 {
            problems.push(format!("{stem}: exit {}: {}", out.code(), out.stderr().lines().next().unwrap_or("")));
            continue;
        }
        let seen = parse_env0(&out.stdout);
        for (name, value) in values {
            if seen.get(name) != value.as_ref() {
                problems.push(format!("{stem}: child saw a different value for {name}"));
            }
        }
    }
    assert!(problems.is_empty(), "{} corpus problems:\n  {}", problems.len(), problems.join("\n  "));
}

const FLASK_APP: &str = "\
import json, os
from flask import Flask

app = Flask(__name__)
app.config.from_prefixed_env()

@app.cli.command('dump-config')
def dump_config():
    with open(os.environ['DUMP_TO'], 'w', encoding='utf-8') as f:
        json.dump({k: app.config.get(k) for k in ('SECRET_KEY', 'DATABASE_URL')}, f)
";

/// `envcloak run -- flask …` with `import = [{ from, prefix = \"FLASK_\" }]`:
/// Flask's `from_prefixed_env` sees the values.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
#[cfg_attr(missing_flask, ignore = "needs flask: pip install flask==3.1.3 python-dotenv==1.2.2")]
fn flask_reads_prefixed_secrets() {
    require!(Age, Flask);
    let ws = Workspace::new();
    let id = ws.keygen("key.txt");
    let key = ws.secret("fake-flask-secret-key with spaces");
    let url = ws.secret("postgres://fake:fake-pw@db.invalid/app");
    ws.age_encrypt("flask.env.age", format!("SECRET_KEY='{key}'\nDATABASE_URL={url}\n"), &[&id.recipient], false);
    ws.write(
        "envcloak.toml",
        "default_profile = \"web\"\n[age]\nidentity = \"key.txt\"\n[profiles.web]\nimport = [{ from = \"age://flask.env.age\", prefix = \"FLASK_\" }]\n",
    );
    ws.write("app.py", FLASK_APP);
    ws.envcloak()
        .env("DUMP_TO", ws.join("config.json"))
        .args(["run", "--"])
        .arg(support::py())
        .args(["-m", "flask", "--app", "app", "dump-config"])
        .run()
        .expect(0);
    let config: BTreeMap<String, Option<String>> = serde_json::from_slice(&ws.read("config.json")).unwrap();
    assert!(config["SECRET_KEY"].as_deref() == Some(key.as_str()), "Flask saw a different SECRET_KEY");
    assert!(config["DATABASE_URL"].as_deref() == Some(url.as_str()), "Flask saw a different DATABASE_URL");
}
