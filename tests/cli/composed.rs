//! Composed values: an `env` value made of text and `{{ references }}`,
//! with the `url` filter; the child gets the whole value, `check` shows the
//! text with its references (never a value), masking covers the whole
//! value and each part, and mistakes are named with their place.

use crate::support::{contains, Workspace};

const SECRETS: &str = "DB_USER=fake-composed-user\nDB_PASS=\"fake p@ss:w/rd\"\n";

fn project(env: &str) -> Workspace {
    let (ws, _) = Workspace::project(SECRETS);
    ws.secret("fake-composed-user");
    ws.secret("fake p@ss:w/rd");
    ws.write(
        "envcloak.toml",
        format!("default_profile = \"dev\"\n\n[age]\nidentity = \"key.txt\"\n\n[profiles.dev.env]\n{env}\n"),
    );
    ws
}

const URL: &str = "DATABASE_URL = \"postgresql://{{ age://secrets.env.age#DB_USER }}:{{ age://secrets.env.age#DB_PASS | url }}@db:5432/app\"";

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn the_child_gets_the_composed_value_and_check_shows_its_text() {
    require!(Age);
    let ws = project(URL);
    let out = ws.envcloak().args(["run", "--", "sh", "-c", "printf %s \"$DATABASE_URL\" > url.txt"]).run();
    out.expect(0);
    assert!(
        ws.read("url.txt") == b"postgresql://fake-composed-user:fake%20p%40ss%3Aw%2Frd@db:5432/app",
        "the child got another value: {}",
        ws.redact(&ws.read("url.txt"))
    );
    let out = ws.envcloak().arg("check").run();
    out.expect(0).no_leak(&["fake-composed-user", "fake p@ss:w/rd", "fake%20p%40ss"]);
    assert!(out.stdout().contains("{{ age://secrets.env.age#DB_PASS | url }}"), "{}", out.diag());
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn masking_covers_the_composed_value_and_each_part() {
    require!(Age);
    let ws = project(URL);
    let script = "printf '%s\\n%s\\n%s\\n' \"$DATABASE_URL\" fake-composed-user 'fake p@ss:w/rd'";
    let out = ws.envcloak().args(["run", "--mask", "--", "sh", "-c", script]).run();
    out.expect(0);
    for (i, value) in
        ["postgresql://", "fake-composed-user", "fake p@ss:w/rd", "fake%20p%40ss"].iter().enumerate().skip(1)
    {
        assert!(!contains(&out.stdout, value.as_bytes()), "part #{i} shows in the masked output");
    }
    assert!(out.stdout().matches("*****").count() >= 3, "{}", out.diag());
}

#[test]
fn mistakes_in_a_composed_value_are_named_where_they_are() {
    for (env, needles) in [
        ("X = \"a{{ age://s.env.age#K\"", &["envcloak.toml:", "`{{` is not closed by `}}` (at byte 1)"][..]),
        ("X = \"{{ age://s.env.age#K | base64 }}\"", &["unknown filter `base64`"][..]),
        ("X = \"{{ age://s.env.age }}\"", &["whole age document, not one value"][..]),
        ("X = \"{{ nope://x#K }}\"", &["nope://x#K"][..]),
    ] {
        let ws = Workspace::new();
        ws.write("envcloak.toml", format!("[profiles.dev.env]\n{env}\n"));
        let out = ws.envcloak().args(["run", "--", "true"]).run();
        out.expect(125).stderr_has(needles);
    }
}
