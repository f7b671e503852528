use super::*;
use std::path::PathBuf;

fn config(text: &str) -> Config {
    Config::parse(PathBuf::from("/project/envcloak.toml"), text.to_owned()).unwrap()
}

/// `-e` and `-i` as a command line gives them.
struct Flags {
    env: Vec<String>,
    import: Vec<String>,
}

impl Flags {
    fn ad_hoc(&self) -> AdHoc<'_> {
        AdHoc { env: &self.env, import: &self.import }
    }
}

fn args(env: &[&str], import: &[&str]) -> Flags {
    Flags { env: env.iter().map(|s| s.to_string()).collect(), import: import.iter().map(|s| s.to_string()).collect() }
}

fn names(plan: &Plan) -> Vec<String> {
    plan.mappings
        .iter()
        .map(|m| match &m.target {
            Target::Variable { name, .. } => format!("{name}={}", m.reference),
            Target::Import { prefix } => format!("import {prefix}{}", m.reference),
        })
        .collect()
}

const CONFIG: &str = r#"
default_profile = "dev"
[profiles.base]
import = ["age://base.env.age"]
[profiles.base.env]
SHARED = "age://base.env.age#SHARED"
[profiles.dev]
extends = "base"
import = ["age://dev.env.age", { from = "age://more.env.age", prefix = "MORE_" }]
[profiles.dev.env]
DB = "age://dev.env.age#DB"
"#;

#[test]
fn precedence_is_base_then_imports_then_env_then_flags() {
    let config = config(CONFIG);
    let plan = build(
        Some(&config),
        None,
        args(&["X=age://cli.env.age#X"], &["age://cli.env.age"]).ad_hoc(),
        Path::new("/cwd"),
    )
    .unwrap();
    assert_eq!(plan.profile.as_deref(), Some("dev"));
    assert_eq!(
        names(&plan),
        [
            "import age://base.env.age",
            "SHARED=age://base.env.age#SHARED",
            "import age://dev.env.age",
            "import MORE_age://more.env.age",
            "DB=age://dev.env.age#DB",
            "import age://cli.env.age",
            "X=age://cli.env.age#X",
        ]
    );
}

#[test]
fn age_paths_are_relative_to_the_config_or_the_current_folder() {
    let config = config(CONFIG);
    let plan =
        build(Some(&config), Some("base"), args(&["X=age://cli.env.age#X"], &[]).ad_hoc(), Path::new("/cwd")).unwrap();
    let locations: Vec<&str> = plan.mappings.iter().map(|m| m.reference.source.location.as_str()).collect();
    assert_eq!(locations, ["/project/base.env.age", "/project/base.env.age", "/cwd/cli.env.age"]);
}

#[test]
fn works_without_a_config_file() {
    let plan = build(None, None, args(&["API=age://k.env.age#API"], &[]).ad_hoc(), Path::new("/cwd")).unwrap();
    assert_eq!(plan.mappings.len(), 1);
    assert!(plan.profile.is_none());
    let error = build(None, None, args(&[], &[]).ad_hoc(), Path::new("/cwd")).unwrap_err();
    assert!(error.message.contains("nothing to resolve"), "{}", error.message);
    let error = build(None, Some("ci"), args(&[], &[]).ad_hoc(), Path::new("/cwd")).unwrap_err();
    assert!(error.message.contains("profile `ci`"), "{}", error.message);
}

#[test]
fn unknown_profiles_list_the_existing_ones() {
    let config = config(CONFIG);
    let error = build(Some(&config), Some("prod"), args(&[], &[]).ad_hoc(), Path::new("/cwd")).unwrap_err();
    assert!(error.message.contains("unknown profile `prod` (profiles: base, dev)"), "{}", error.message);
}

#[test]
fn extends_loops_and_unknown_bases_are_refused() {
    let looped = config("[profiles.a]\nextends = \"b\"\n[profiles.b]\nextends = \"a\"\n");
    let error = build(Some(&looped), Some("a"), args(&[], &[]).ad_hoc(), Path::new("/")).unwrap_err();
    assert!(error.message.contains("loop"), "{}", error.message);
    let unknown = config("[profiles.a]\nextends = \"zzz\"\n");
    let error = build(Some(&unknown), Some("a"), args(&[], &[]).ad_hoc(), Path::new("/")).unwrap_err();
    assert!(
        error.message.contains("/project/envcloak.toml:2:11") && error.message.contains("zzz"),
        "{}",
        error.message
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = config(
        "[profiles.a]\nimport = [\"age://x.age#K\", { from = \"age://y.age\", prefix = \"1X\" }]\n[profiles.a.env]\n\"BAD-NAME\" = \"age://x.age#K\"\nWHOLE = \"age://x.age\"\nS = \"s3://b/k\"\n",
    );
    let error = build(Some(&bad), Some("a"), args(&["NOEQUALS"], &[]).ad_hoc(), Path::new("/")).unwrap_err();
    assert_eq!(error.details.len(), 6, "{:?}", error.details);
    let all = error.details.join("\n");
    for expected in [
        "single key `K`",
        "prefix `1X`",
        "`BAD-NAME` is not a valid",
        "whole age document",
        "unknown reference scheme `s3://`",
        "expected NAME=REF",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
}

#[test]
fn variable_names_follow_the_shell_rule() {
    for good in ["A", "_", "a_1", "FLASK_SECRET_KEY"] {
        assert!(is_valid_name(good), "{good}");
    }
    for bad in ["", "1A", "A-B", "A.B", "É", "A B"] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}
