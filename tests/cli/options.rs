//! Precedence and the options of `run`: profiles, `extends`, prefixes,
//! optional secrets, `--clean-env`, `--no-override`, identity sources and
//! how the config is found.

use std::collections::BTreeMap;

use crate::support::{parse_env0, Cmd, Identity, Workspace};

/// `envcloak run ARGS -- env -0` must succeed; the child's environment.
fn child_env(cmd: Cmd, args: &[&str]) -> BTreeMap<String, String> {
    let out = cmd.arg("run").args(args).args(["--", "env", "-0"]).run();
    out.expect(0);
    parse_env0(&out.stdout)
}

/// Like [`child_env`], through a file, for supervised mode (where stdout is
/// masked); `sh` adds `PWD`.
fn child_env_file(cmd: Cmd, ws: &Workspace, args: &[&str]) -> BTreeMap<String, String> {
    let out = cmd.arg("run").args(args).args(["--", "sh", "-c", "exec env -0 > child.env0"]).run();
    out.expect(0);
    parse_env0(&ws.read("child.env0"))
}

fn assert_var(env: &BTreeMap<String, String>, name: &str, expected: Option<&str>, case: &str) {
    assert!(env.get(name).map(String::as_str) == expected, "{case}: child saw a different value for {name}");
}

fn encrypt(ws: &Workspace, id: &Identity, rel: &str, dotenv: &str) {
    ws.age_encrypt(rel, dotenv, &[&id.recipient], false);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn precedence_is_imports_then_env_then_i_then_e() {
    require!(Age);
    let (ws, id) = Workspace::project("A=fake-import\nB=fake-import\nC=fake-import\nD=fake-import\nE=fake-import\n");
    encrypt(&ws, &id, "second.env.age", "E=fake-second-import\n");
    encrypt(&ws, &id, "env.env.age", "V=fake-env-entry\n");
    encrypt(&ws, &id, "i.env.age", "A=fake-dash-i\nB=fake-dash-i\n");
    encrypt(&ws, &id, "e.env.age", "V=fake-dash-e\n");
    // env written before import: the order is by kind, not by position.
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\n[profiles.dev]\n\
         env = { A = \"age://env.env.age#V\", B = \"age://env.env.age#V\", C = \"age://env.env.age#V\" }\n\
         import = [\"age://secrets.env.age\", \"age://second.env.age\"]\n",
    );
    let env = child_env(ws.envcloak(), &["-e", "A=age://e.env.age#V", "-i", "age://i.env.age"]);
    assert_var(&env, "A", Some("fake-dash-e"), "-e wins over everything");
    assert_var(&env, "B", Some("fake-dash-i"), "-i wins over env and import");
    assert_var(&env, "C", Some("fake-env-entry"), "env wins over import");
    assert_var(&env, "D", Some("fake-import"), "import alone");
    assert_var(&env, "E", Some("fake-second-import"), "a later import wins");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn extends_starts_from_the_base_profile() {
    require!(Age);
    let (ws, id) = Workspace::project("X=fake-base-x\nY=fake-base-y\n");
    encrypt(&ws, &id, "child.env.age", "Y=fake-child-y\n");
    ws.write(
        "envcloak.toml",
        "[age]\nidentity = \"key.txt\"\n[profiles.base]\nimport = [\"age://secrets.env.age\"]\n\
         [profiles.child]\nextends = \"base\"\n[profiles.child.env]\nY = \"age://child.env.age#Y\"\n\
         [profiles.loop1]\nextends = \"loop2\"\n[profiles.loop2]\nextends = \"loop1\"\n",
    );
    let env = child_env(ws.envcloak(), &["-p", "child"]);
    assert_var(&env, "X", Some("fake-base-x"), "from the base profile");
    assert_var(&env, "Y", Some("fake-child-y"), "the extending profile wins");
    let out = ws.envcloak().args(["run", "-p", "loop1", "--", "true"]).run();
    out.expect(125).stderr_has(&["loop"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn import_with_prefix() {
    require!(Age);
    let (ws, _) = Workspace::project("SECRET_KEY=fake-prefixed\n");
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\n[profiles.dev]\nimport = [{ from = \"age://secrets.env.age\", prefix = \"FLASK_\" }]\n",
    );
    let env = child_env(ws.envcloak(), &[]);
    assert_var(&env, "FLASK_SECRET_KEY", Some("fake-prefixed"), "prefixed import");
    assert_var(&env, "SECRET_KEY", None, "only the prefixed name");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn optional_missing_secret_warns_and_still_runs() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-required\n");
    ws.write(
        "envcloak.toml",
        format!(
            "{}[profiles.dev.env]\nSENTRY_DSN = {{ ref = \"age://secrets.env.age#SENTRY_DSN\", optional = true }}\nGONE = {{ ref = \"age://gone.env.age#X\", optional = true }}\n",
            crate::support::PROJECT_TOML
        ),
    );
    let out = ws.envcloak().args(["run", "--", "env", "-0"]).run();
    out.expect(0).stderr_has(&["SENTRY_DSN", "GONE"]);
    assert!(out.stderr().to_lowercase().contains("warning"), "a skipped optional secret is a warning\n{}", out.diag());
    let env = parse_env0(&out.stdout);
    assert_var(&env, "A", Some("fake-required"), "required secret");
    assert_var(&env, "SENTRY_DSN", None, "skipped optional secret");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn clean_env_keeps_only_kept_variables_and_secrets() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-clean-a\nB=fake-clean-b\n");
    let base = || ws.envcloak().env("UNRELATED", "fake-unrelated").env("LANG", "C");
    let names = |env: &BTreeMap<String, String>| env.keys().cloned().collect::<Vec<_>>();
    let env = child_env(base(), &["--clean-env", "--keep", "PATH"]);
    assert!(names(&env) == ["A", "B", "PATH"], "child saw variables {:?}", names(&env));
    assert!(env["PATH"] == std::env::var("PATH").unwrap_or_default(), "PATH was kept with a different value");
    let env = child_env(base(), &["--clean-env", "--keep", "PATH,HOME", "--keep", "LANG"]);
    assert!(names(&env) == ["A", "B", "HOME", "LANG", "PATH"], "child saw variables {:?}", names(&env));
    let env = child_env(base(), &["--clean-env"]);
    assert!(names(&env) == ["A", "B"], "child saw variables {:?}", names(&env));
    let env = child_env(base(), &[]);
    assert_var(&env, "UNRELATED", Some("fake-unrelated"), "without --clean-env the environment passes");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn no_override_leaves_set_variables_alone() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-secret-a\nB=fake-secret-b\n");
    let env = child_env(ws.envcloak().env("A", "fake-preset-a"), &["--no-override"]);
    assert_var(&env, "A", Some("fake-preset-a"), "--no-override keeps the set value");
    assert_var(&env, "B", Some("fake-secret-b"), "--no-override still adds unset ones");
    let env = child_env(ws.envcloak().env("A", "fake-preset-a"), &[]);
    assert_var(&env, "A", Some("fake-secret-a"), "by default the secret replaces it");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn age_key_variable_works_and_is_hidden_from_the_child() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-from-key-var\n");
    let key = std::fs::read_to_string(ws.join("key.txt")).unwrap();
    std::fs::remove_file(ws.join("key.txt")).unwrap();
    ws.write("envcloak.toml", "default_profile = \"dev\"\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n");
    for mode in [&[][..], &["--mask"][..]] {
        let env = child_env_file(ws.envcloak().env("ENVCLOAK_AGE_KEY", &key), &ws, mode);
        assert_var(&env, "A", Some("fake-from-key-var"), "decrypted with ENVCLOAK_AGE_KEY");
        assert!(!env.contains_key("ENVCLOAK_AGE_KEY"), "{mode:?}: the child got ENVCLOAK_AGE_KEY");
        let kept = child_env_file(
            ws.envcloak().env("ENVCLOAK_AGE_KEY", &key),
            &ws,
            &[mode, &["--keep", "ENVCLOAK_AGE_KEY"]].concat(),
        );
        assert!(kept.get("ENVCLOAK_AGE_KEY") == Some(&key), "{mode:?}: --keep ENVCLOAK_AGE_KEY passes it unchanged");
        let kept = child_env_file(
            ws.envcloak().env("ENVCLOAK_AGE_KEY", &key),
            &ws,
            &[mode, &["--clean-env", "--keep", "ENVCLOAK_AGE_KEY"]].concat(),
        );
        assert!(kept.get("ENVCLOAK_AGE_KEY") == Some(&key), "{mode:?}: --clean-env --keep ENVCLOAK_AGE_KEY passes it");
    }
    // Without any identity source it fails closed.
    ws.envcloak().args(["run", "--", "true"]).run().expect(125).stderr_has(&["ENVCLOAK_AGE_KEY"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn age_key_file_variable_and_default_location() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-from-key-file\n");
    ws.write("envcloak.toml", "default_profile = \"dev\"\n[profiles.dev]\nimport = [\"age://secrets.env.age\"]\n");
    std::fs::create_dir_all(ws.join("keys")).unwrap();
    std::fs::rename(ws.join("key.txt"), ws.join("keys/mine.txt")).unwrap();
    let env = child_env(ws.envcloak().env("ENVCLOAK_AGE_KEY_FILE", ws.join("keys/mine.txt")), &[]);
    assert_var(&env, "A", Some("fake-from-key-file"), "ENVCLOAK_AGE_KEY_FILE");
    // ~/.config/envcloak/identity.txt when nothing else is set (HOME is the workspace).
    std::fs::create_dir_all(ws.join(".config/envcloak")).unwrap();
    std::fs::rename(ws.join("keys/mine.txt"), ws.join(".config/envcloak/identity.txt")).unwrap();
    let env = child_env(ws.envcloak(), &[]);
    assert_var(&env, "A", Some("fake-from-key-file"), "default identity location");
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn config_flag_and_variable() {
    require!(Age);
    let (ws, id) = Workspace::project("A=fake-default-config\n");
    encrypt(&ws, &id, "conf/alt.env.age", "A=fake-alt-config\n");
    // Relative paths in a config are relative to its folder.
    ws.write("conf/alt.toml", "default_profile = \"alt\"\n[age]\nidentity = \"../key.txt\"\n[profiles.alt]\nimport = [\"age://alt.env.age\"]\n");
    assert_var(&child_env(ws.envcloak(), &[]), "A", Some("fake-default-config"), "discovered envcloak.toml");
    assert_var(&child_env(ws.envcloak(), &["-c", "conf/alt.toml"]), "A", Some("fake-alt-config"), "-c");
    assert_var(
        &child_env(ws.envcloak().arg("--config").arg(ws.join("conf/alt.toml")), &[]),
        "A",
        Some("fake-alt-config"),
        "--config before run",
    );
    assert_var(
        &child_env(ws.envcloak().env("ENVCLOAK_CONFIG", "conf/alt.toml"), &[]),
        "A",
        Some("fake-alt-config"),
        "ENVCLOAK_CONFIG",
    );
    let out = ws.envcloak().args(["run", "-c", "conf/missing.toml", "--", "true"]).run();
    out.expect(125).stderr_has(&["conf/missing.toml"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn profile_flag_and_variable() {
    require!(Age);
    let (ws, id) = Workspace::project("A=fake-dev-profile\n");
    encrypt(&ws, &id, "ci.env.age", "A=fake-ci-profile\n");
    ws.write(
        "envcloak.toml",
        format!("{}[profiles.ci]\nimport = [\"age://ci.env.age\"]\n", crate::support::PROJECT_TOML),
    );
    assert_var(&child_env(ws.envcloak(), &[]), "A", Some("fake-dev-profile"), "default_profile");
    assert_var(&child_env(ws.envcloak(), &["-p", "ci"]), "A", Some("fake-ci-profile"), "-p");
    assert_var(
        &child_env(ws.envcloak().env("ENVCLOAK_PROFILE", "ci"), &[]),
        "A",
        Some("fake-ci-profile"),
        "ENVCLOAK_PROFILE",
    );
    assert_var(
        &child_env(ws.envcloak().env("ENVCLOAK_PROFILE", "ci"), &["-p", "dev"]),
        "A",
        Some("fake-dev-profile"),
        "-p beats ENVCLOAK_PROFILE",
    );
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn config_is_found_from_a_subfolder_and_paths_are_relative_to_it() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-from-parent-config\n");
    std::fs::create_dir_all(ws.join("src/app/deep")).unwrap();
    let env = child_env(ws.envcloak().current_dir(ws.join("src/app/deep")), &[]);
    assert_var(&env, "A", Some("fake-from-parent-config"), "config found in a parent folder");
    // On the command line, age paths are relative to the current folder.
    let env = child_env(ws.envcloak().current_dir(ws.join("src/app")), &["-e", "B=age://../../secrets.env.age#A"]);
    assert_var(&env, "B", Some("fake-from-parent-config"), "-e path relative to the current folder");
}

/// `-e`/`-i` work with no config file at all.
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn flags_work_without_a_config() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-no-config\n");
    std::fs::remove_file(ws.join("envcloak.toml")).unwrap();
    let cmd = || ws.envcloak().env("ENVCLOAK_AGE_KEY_FILE", "key.txt");
    assert_var(&child_env(cmd(), &["-i", "age://secrets.env.age"]), "A", Some("fake-no-config"), "-i without config");
    assert_var(
        &child_env(cmd(), &["-e", "Z=age://secrets.env.age#A"]),
        "Z",
        Some("fake-no-config"),
        "-e without config",
    );
    cmd().args(["run", "--", "true"]).run().expect(125).stderr_has(&["envcloak.toml"]);
}

/// `--timeout` bounds the whole resolution, even when reading a source
/// blocks (here an age "file" that is a FIFO nobody writes to; the same
/// happens with a hung network file system or a slow passphrase KDF).
#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn timeout_bounds_resolution_even_when_a_read_blocks() {
    require!(Age);
    let (ws, _) = Workspace::project("A=fake-timeout\n");
    ws.command("mkfifo").arg("blocked.env.age").run().expect(0);
    let started = std::time::Instant::now();
    // A hang is killed after 8 s and fails the test.
    let out = ws
        .envcloak()
        .args(["run", "--timeout", "1s", "-i", "age://blocked.env.age", "--", "sh", "-c", "touch started.marker"])
        .timeout(std::time::Duration::from_secs(8))
        .run();
    out.expect(125).stderr_has(&["timeout"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "--timeout 1s took {:?}", started.elapsed());
    assert!(!ws.join("started.marker").exists(), "the child was started");
}
