//! `check` (table and JSON, never a value) and `export` (dotenv, json, shell,
//! github), each read back by the tool it is meant for.

use std::collections::BTreeMap;

use crate::support::{contains, parse_env0, py, Workspace, PROJECT_TOML};

/// Tricky values, written the python-dotenv way.
const TRICKY: &str = r#"DOLLAR='cost: $5, $HOME, $$, ${ not closed, $(echo no)'
QUOTES="it's \"double\" and 'single'"
BACKSLASH='C:\\path\\to\\dir and \n not a newline, \\\\server\share'
NEWLINES="line one\nline two\n\nline four\n"
TAB="a\tb"
SPACES="  padded  "
HASH='value # not a comment'
UNICODE="héllo ✓ 😀"
EMPTY=
EQUALS=a=b=c
BACKTICK='`echo nope` and "$(echo nope)"'
"#;

type Values = BTreeMap<String, String>;

/// What python-dotenv reads from `rel` (the reference for every format).
fn python_dotenv(ws: &Workspace, rel: &str) -> Values {
    let script =
        "import json, sys\nfrom dotenv import dotenv_values\njson.dump(dotenv_values(sys.argv[1]), sys.stdout)";
    let out = ws.command(py()).args(["-c", script, rel]).run();
    out.expect(0);
    serde_json::from_slice(&out.stdout).expect("python-dotenv output")
}

fn project(dotenv: &str) -> (Workspace, Values) {
    let (ws, _) = Workspace::project(dotenv);
    ws.write("reference.env", dotenv);
    let expected = python_dotenv(&ws, "reference.env");
    std::fs::remove_file(ws.join("reference.env")).unwrap();
    for value in expected.values().filter(|v| v.len() >= 6) {
        ws.secret(value);
    }
    (ws, expected)
}

fn compare(expected: &Values, got: &Values, how: &str) {
    let wrong: Vec<&String> = expected.keys().filter(|name| got.get(*name) != expected.get(*name)).collect();
    assert!(wrong.is_empty(), "{how}: a different value for {wrong:?}");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn check_table_and_json_show_names_sources_and_status_never_values() {
    require!(Age, PythonDotenv);
    let (ws, expected) = project(TRICKY);
    let values: Vec<&str> = expected.values().map(String::as_str).filter(|v| v.len() >= 6).collect();
    let out = ws.envcloak().arg("check").run();
    out.expect(0).no_leak(&values);
    let table = out.stdout();
    let header = table.lines().next().unwrap_or("");
    assert!(
        header.contains("NAME") && header.contains("SOURCE") && header.contains("STATUS"),
        "table header\n{}",
        out.diag()
    );
    for name in expected.keys() {
        let row = table.lines().find(|l| l.split_whitespace().next() == Some(name));
        assert!(
            row.is_some_and(|r| r.contains("age://secrets.env.age") && r.contains("ok")),
            "no ok row for {name}\n{}",
            out.diag()
        );
    }

    let out = ws.envcloak().args(["check", "--format", "json"]).run();
    out.expect(0).no_leak(&values);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check --format json is JSON");
    let rows = doc["secrets"].as_array().expect("a secrets array");
    for name in expected.keys() {
        let row = rows.iter().find(|r| r["name"] == name.as_str());
        let row = row.unwrap_or_else(|| panic!("{name} missing from check --format json"));
        assert!(row["source"] == "age://secrets.env.age" && row["ok"] == true, "{name}: {row}");
        assert!(row["status"].as_str().is_some_and(|s| s.starts_with("ok")), "{name}: {row}");
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn check_exit_status_and_which_source_won() {
    require!(Age, PythonDotenv);
    let (ws, _) = project("A=fake-check-a\nB=fake-check-b\n");
    ws.write(
        "envcloak.toml",
        format!(
            "{PROJECT_TOML}[profiles.dev.env]\nOPT = {{ ref = \"age://secrets.env.age#NOPE\", optional = true }}\n"
        ),
    );
    // An optional failure: exit 0, reported as skipped.
    let out = ws.envcloak().args(["check", "--format", "json"]).run();
    out.expect(0).no_leak(&["fake-check-a", "fake-check-b"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let opt = doc["secrets"].as_array().unwrap().iter().find(|r| r["name"] == "OPT").cloned().unwrap_or_default();
    assert!(opt["status"].as_str().is_some_and(|s| s.contains("optional")), "OPT: {opt}");
    // A required failure: exit 1, every row still shown.
    let out = ws
        .envcloak()
        .args(["check", "-e", "MISSING=age://secrets.env.age#GONE", "-e", "B=age://secrets.env.age#A"])
        .run();
    out.expect(1).no_leak(&["fake-check-a", "fake-check-b"]);
    let table = out.stdout();
    let row = |name: &str| table.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or("").to_owned();
    assert!(row("MISSING").contains("error") && row("MISSING").contains("GONE"), "MISSING row\n{}", out.diag());
    assert!(row("A").contains("ok"), "A row\n{}", out.diag());
    // B is overridden by -e: check names the source that won.
    assert!(row("B").contains("age://secrets.env.age#A"), "B should come from -e\n{}", out.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_dotenv_is_read_back_identically_by_python_dotenv() {
    require!(Age, PythonDotenv);
    let (ws, expected) = project(TRICKY);
    let out = ws.envcloak().args(["export", "--format", "dotenv"]).run();
    out.expect(0);
    ws.write("exported.env", &out.stdout);
    compare(&expected, &python_dotenv(&ws, "exported.env"), "export --format dotenv read by python-dotenv");
}

/// A resolved value can hold `${NAME}` literally (python-dotenv expands once:
/// `D='$'` then `V=${D}{HOME}` gives `${HOME}`), and a carriage return. The
/// dotenv export must read back as the same value, or refuse to export it;
/// never silently change it.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_dotenv_keeps_dollar_brace_and_carriage_return_values() {
    require!(Age, PythonDotenv);
    for (case, dotenv) in [
        ("literal ${HOME}", "D='$'\nLITERAL=${D}{HOME}-fake-literal\n"),
        ("carriage return", "CRLF=\"fake-windows\\r\\nline\"\nCR_ONLY=\"fake\\rcr\"\n"),
    ] {
        let (ws, expected) = project(dotenv);
        let out = ws.envcloak().args(["export", "--format", "dotenv"]).run();
        if out.code() != 0 {
            continue; // refusing is acceptable
        }
        ws.write("exported.env", &out.stdout);
        compare(
            &expected,
            &python_dotenv(&ws, "exported.env"),
            &format!("{case}: export --format dotenv read by python-dotenv"),
        );
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_json_parses_to_the_values() {
    require!(Age, PythonDotenv);
    let (ws, expected) = project(TRICKY);
    let out = ws.envcloak().args(["export", "--format", "json"]).run();
    out.expect(0);
    let got: Values = serde_json::from_slice(&out.stdout).expect("export --format json is a JSON object of strings");
    compare(&expected, &got, "export --format json");
    let script = "import json, sys\njson.dump(json.load(sys.stdin), sys.stdout)";
    let again = ws.command(py()).args(["-c", script]).stdin(&out.stdout).run();
    again.expect(0);
    compare(&expected, &serde_json::from_slice(&again.stdout).unwrap(), "export --format json read by python");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_shell_evaluates_to_the_values() {
    require!(Age, PythonDotenv);
    let (ws, expected) = project(&format!("{TRICKY}CRLF=\"fake-crlf\\r\\nline\"\n"));
    let out = ws.envcloak().args(["export", "--format", "shell"]).run();
    out.expect(0);
    ws.write("exported.sh", &out.stdout);
    for shell in ["sh", "bash"] {
        let evaluated = ws.command(shell).args(["-c", "eval \"$(cat exported.sh)\" && exec env -0"]).run();
        evaluated.expect(0);
        compare(&expected, &parse_env0(&evaluated.stdout), &format!("export --format shell evaluated by {shell}"));
    }
}

/// GitHub's runner reads `::add-mask::DATA` with `%0D`, `%0A`, `%25`
/// unescaped, in that order (ActionCommand.UnescapeData).
fn github_unescape(data: &str) -> String {
    data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
}

/// `NAME<<DELIMITER` … `DELIMITER` entries, as the runner reads `$GITHUB_ENV`.
fn parse_github_env(text: &str) -> Values {
    let mut values = Values::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (name, delimiter) = line.split_once("<<").unwrap_or_else(|| panic!("not a heredoc entry: {}", line.len()));
        let mut body = Vec::new();
        loop {
            let next = lines.next().expect("heredoc delimiter missing");
            if next == delimiter {
                break;
            }
            body.push(next);
        }
        values.insert(name.to_owned(), body.join("\n"));
    }
    values
}

fn export_github(dotenv: &str) -> (Workspace, Values, Vec<String>) {
    let (ws, expected) = project(dotenv);
    ws.write("github_env", "EXISTING=kept\n");
    let out = ws.envcloak().env("GITHUB_ENV", ws.join("github_env")).args(["export", "--format", "github"]).run();
    out.expect(0);
    let masks = out.stdout().lines().filter_map(|l| l.strip_prefix("::add-mask::")).map(github_unescape).collect();
    (ws, expected, masks)
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_github_masks_every_line_and_appends_heredocs() {
    require!(Age, PythonDotenv);
    let (ws, expected, masks) = export_github(TRICKY);
    for (name, value) in &expected {
        // Lines under 4 bytes are not masked (as in envcloak's own masking).
        for line in value.lines().filter(|l| !l.trim().is_empty() && l.len() >= 4) {
            assert!(masks.iter().any(|m| m == line), "no ::add-mask:: for a line of {name}");
        }
    }
    // Encoded forms of long enough values are masked too (base64 here).
    let b64 = |v: &str| {
        let out = ws
            .command("python3")
            .args(["-c", "import base64,sys; print(base64.b64encode(sys.argv[1].encode()).decode())", v])
            .run();
        out.stdout().trim().to_owned()
    };
    for (name, value) in expected.iter().filter(|(_, v)| v.len() >= 8) {
        assert!(masks.iter().any(|m| *m == b64(value)), "no ::add-mask:: for the base64 form of {name}");
    }
    assert!(masks.iter().all(|m| !m.contains(['\n', '\r'])), "an ::add-mask:: spans lines");
    let text = String::from_utf8(ws.read("github_env")).unwrap();
    assert!(text.starts_with("EXISTING=kept\n"), "GITHUB_ENV is appended to, not replaced");
    let got = parse_github_env(&text["EXISTING=kept\n".len()..]);
    compare(&expected, &got, "GITHUB_ENV heredoc entries");
    let delimiters: Vec<&str> = text.lines().filter_map(|l| l.split_once("<<").map(|(_, d)| d)).collect();
    assert!(delimiters.iter().all(|d| d.len() >= 16), "heredoc delimiters should be random: {delimiters:?}");
    // Without GITHUB_ENV it fails.
    ws.envcloak().args(["export", "--format", "github"]).run().expect(125).stderr_has(&["GITHUB_ENV"]);
}

/// A value containing `%25` or `%0A` must be escaped in `::add-mask::`, or
/// the runner masks a different string and the real value shows in the log.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_github_add_mask_escapes_percent() {
    require!(Age, PythonDotenv);
    let (_ws, expected, masks) = export_github("PCT='fake%25pct%0Avalue%'\n");
    let value = &expected["PCT"];
    assert!(
        masks.iter().any(|m| m == value),
        "after the runner unescapes ::add-mask::, no mask equals the value of PCT"
    );
    assert!(
        !masks.iter().any(|m| contains(m.as_bytes(), b"\n") && !contains(value.as_bytes(), b"\n")),
        "a mask changed shape"
    );
}

/// A value ending in a backslash used to make python-dotenv read on into the
/// next line and drop both; an `as = "file"` value would be printed where
/// the command expects a path; a 1-byte `::add-mask::1` would mask every
/// `1` in the job's log; a new GITHUB_ENV was created readable by all.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_python_dotenv, ignore = "needs python-dotenv: pip install python-dotenv==1.2.2")]
fn export_keeps_trailing_backslashes_refuses_file_values_and_never_masks_short_values() {
    require!(Age, PythonDotenv);
    // Unquoted values keep their backslashes as written.
    let (ws, expected) = project("ENDS=fake-ends-with\\\nNEXT=\"fake next\"\nDOUBLE=fake\\\\\nLAST='fake last'\n");
    let out = ws.envcloak().args(["export", "--format", "dotenv"]).run();
    out.expect(0);
    ws.write("exported.env", &out.stdout);
    compare(&expected, &python_dotenv(&ws, "exported.env"), "values ending in backslashes, read by python-dotenv");

    let (ws, _) = project("SHORT=1\nLONG=fake-long-enough\n");
    let github_env = ws.join("new/github_env");
    std::fs::create_dir(ws.join("new")).unwrap();
    let out = ws.envcloak().env("GITHUB_ENV", &github_env).args(["export", "--format", "github"]).run();
    out.expect(0);
    let masks: Vec<&str> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|l| l.strip_prefix(b"::add-mask::"))
        .map(|m| std::str::from_utf8(m).unwrap())
        .collect();
    assert!(!masks.contains(&"1"), "a 1-byte value was given to ::add-mask::");
    assert!(masks.contains(&"fake-long-enough"), "the long value was not masked");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&github_env).unwrap().permissions()) & 0o777;
    assert_eq!(mode, 0o600, "a new GITHUB_ENV was created with mode {mode:o}");

    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\n[profiles.dev.env]\n\
         KEY_FILE = { ref = \"age://secrets.env.age#LONG\", as = \"file\" }\n",
    );
    let out = ws.envcloak().args(["export", "--format", "json"]).run();
    out.expect(0).stderr_has(&["KEY_FILE", "as = \"file\"", "not a path"]);
}
