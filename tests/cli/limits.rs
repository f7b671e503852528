//! Documented limits with clear errors instead of an abort, a panic or an
//! exec failure blamed on the command.

use crate::support::Workspace;

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_doubling_expansion_stops_at_one_mib() {
    let mut dotenv = String::from("A0=fake-doubling-seed\n");
    for i in 1..40 {
        dotenv.push_str(&format!("A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
    }
    let (ws, _identity) = Workspace::project(&dotenv);
    ws.envcloak().args(["run", "--", "true"]).run().expect(125).stderr_has(&["longer than 1 MiB"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_value_over_the_kernels_string_limit_is_named_before_the_exec() {
    let big = "f".repeat(200 * 1024);
    let (ws, _identity) = Workspace::project(&format!("BIG={big}\nSMALL=fake-small-value\n"));
    ws.secret(&big);
    let out = ws.envcloak().args(["check"]).run();
    out.expect(1);
    assert!(out.stdout().contains("MAX_ARG_STRLEN"), "check does not name the limit\n{}", out.diag());
    ws.envcloak().args(["run", "--", "true"]).run().expect(125).stderr_has(&["BIG", "MAX_ARG_STRLEN", "as = \"file\""]);
    // As a file it is fine.
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\n[profiles.dev.env]\n\
         BIG = { ref = \"age://secrets.env.age#BIG\", as = \"file\" }\n",
    );
    let out = ws.envcloak().args(["run", "--", "sh", "-c", "test $(wc -c < \"$BIG\") -eq 204800"]).run();
    out.expect(0);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn a_very_long_name_is_reported_not_a_panic() {
    let name = "N".repeat(140_000);
    let (ws, _identity) = Workspace::project(&format!("{name}=fake-long-name-value\n"));
    let out = ws.envcloak().args(["check"]).run();
    assert_ne!(out.code(), 101, "check panicked\n{}", out.diag());
    let out = ws.envcloak().args(["run", "--", "true"]).run();
    out.expect(125).stderr_has(&["MAX_ARG_STRLEN"]);
}

#[test]
#[cfg_attr(missing_age, ignore = "needs age: apt-get install age")]
fn values_over_one_mib_and_age_files_over_16_mib_are_refused() {
    let big = "g".repeat(2 << 20);
    let (ws, identity) = Workspace::project("SMALL=fake-small-value\n");
    ws.age_encrypt("big.env.age", format!("BIG={big}\n"), &[&identity.recipient], false);
    ws.secret(&big);
    ws.write(
        "envcloak.toml",
        "default_profile = \"dev\"\n[age]\nidentity = \"key.txt\"\n[profiles.dev.env]\n\
         BIG = { ref = \"age://big.env.age#BIG\", as = \"file\" }\n",
    );
    ws.envcloak().args(["run", "--mask", "--", "true"]).run().expect(125).stderr_has(&["BIG", "longer than 1 MiB"]);

    ws.write("huge.env.age", vec![b'x'; 17 << 20]);
    let out = ws.envcloak().args(["run", "-i", "age://huge.env.age", "--", "true"]).run();
    out.expect(125).stderr_has(&["huge.env.age", "larger than 16 MiB"]);
}
