//! Unit tests of the Vault provider: stamps, leases, logins.

use std::sync::Arc;
use std::time::Duration;

use super::auth::Granted;
use super::http::{HttpError, Transport};
use super::kv::{Lease, Mount};
use super::{lock, metadata_stamp, stamp_plan, HeldLease, HeldLogin, StampPlan, VaultProvider, VaultSettings, MODULE};
use crate::{Backend, FailureKind, Provider, Selector, Source, Stamp};

fn source(location: &str, version: Option<&str>) -> Source {
    let selector = version.map(|v| Selector { name: "version".into(), value: v.into() });
    Source { backend: Backend::new(&MODULE), location: location.into(), selector }
}

fn mount(path: &str, engine: &str, version: u8) -> Mount {
    Mount { path: path.into(), engine: engine.into(), version }
}

fn refused(status: u16) -> HttpError {
    HttpError { status: Some(status), message: "fake reason".into(), body: None, tls: false, redirect: false }
}

#[test]
fn stamps_read_kv_v2_metadata_only_and_never_a_dynamic_path() {
    let v2 = mount("secret/", "kv", 2);
    assert_eq!(stamp_plan(&v2, &source("secret/app", None)), StampPlan::Metadata("secret/metadata/app".into()));
    assert_eq!(stamp_plan(&v2, &source("secret/app", Some("4"))), StampPlan::Known(Ok(Stamp::Version("4".into()))));
    let v1 = mount("kv1/", "kv", 1);
    assert_eq!(stamp_plan(&v1, &source("kv1/app", None)), StampPlan::Unstamped);
    let database = mount("database/", "database", 0);
    assert_eq!(stamp_plan(&database, &source("database/creds/app", None)), StampPlan::Known(Ok(Stamp::Dynamic)));
    match stamp_plan(&v1, &source("kv1/app", Some("2"))) {
        StampPlan::Known(Err(e)) => assert_eq!(e.kind, FailureKind::Settings, "{}", e.reason),
        other => panic!("a version outside KV v2 must be refused as a fetch refuses it: {other:?}"),
    }
}

#[test]
fn a_metadata_read_fails_as_a_value_read_does_but_a_denial_leaves_the_source_to_the_caller() {
    let v2 = mount("secret/", "kv", 2);
    let app = source("secret/app", None);
    assert_eq!(metadata_stamp(Err(refused(403)), &v2, &app), None);
    let missing = metadata_stamp(Err(refused(404)), &v2, &app).expect("a stamp").expect_err("an error");
    assert_eq!(missing.kind, FailureKind::NotFound);
    assert!(missing.hint.is_some());
    let token = metadata_stamp(Err(refused(401)), &v2, &app).expect("a stamp").expect_err("an error");
    assert_eq!(token.kind, FailureKind::Credentials);
    let body = zeroize::Zeroizing::new(br#"{"data":{"current_version":2}}"#.to_vec());
    assert_eq!(metadata_stamp(Ok(body), &v2, &app), Some(Ok(Stamp::Version("2".into()))));
}

fn transport() -> Arc<Transport> {
    let base = reqwest::Url::parse("http://127.0.0.1:1").unwrap();
    Arc::new(Transport { http: reqwest::Client::new(), base, namespace: None })
}

fn lease(seconds: u64, renewable: bool) -> Lease {
    Lease { id: "database/creds/app/fake".into(), seconds, renewable }
}

fn provider() -> VaultProvider {
    let settings = VaultSettings::for_tests("http://127.0.0.1:1");
    VaultProvider::new(settings, tokio::time::Instant::now(), Arc::new(|_: &str| {}))
}

/// Seconds from now until `end`, rounded.
fn left(end: Option<std::time::Instant>) -> Option<u64> {
    end.map(|end| (end.saturating_duration_since(std::time::Instant::now()) + Duration::from_millis(500)).as_secs())
}

#[test]
fn credentials_end_with_the_first_lease_or_lease_holding_login_that_cannot_be_renewed() {
    let vault = provider();
    let token = || secrecy::SecretString::from("fake-token");
    assert_eq!(vault.credentials_end(), None, "nothing held");

    let session = transport();
    let renewable = Granted { lease_duration: 60, renewable: true };
    lock(&vault.logins).push(HeldLogin::new(Arc::clone(&session), token(), renewable));
    lock(&vault.leases).push(HeldLease::new(Arc::clone(&session), token(), true, lease(300, true)));
    assert_eq!(vault.credentials_end(), None, "everything can be renewed");

    lock(&vault.leases).push(HeldLease::new(Arc::clone(&session), token(), true, lease(200, false)));
    assert_eq!(left(vault.credentials_end()), Some(200), "a lease that cannot be renewed");

    // A login that holds no lease (a stamps-only login) does not count.
    let fixed = Granted { lease_duration: 100, renewable: false };
    lock(&vault.logins).push(HeldLogin::new(transport(), token(), fixed));
    assert_eq!(left(vault.credentials_end()), Some(200));

    let other = transport();
    lock(&vault.logins).push(HeldLogin::new(Arc::clone(&other), token(), fixed));
    lock(&vault.leases).push(HeldLease::new(Arc::clone(&other), token(), true, lease(300, true)));
    assert_eq!(left(vault.credentials_end()), Some(100), "the login holding a lease ends first");

    // A token without a TTL never ends.
    let endless = HeldLogin::new(transport(), token(), Granted { lease_duration: 0, renewable: false });
    assert_eq!((endless.due, endless.ends), (None, None));
    let due = lock(&vault.logins)[0].due.expect("a renewable login is due");
    let after = due.saturating_duration_since(tokio::time::Instant::now());
    assert!(after <= Duration::from_secs(40) && after >= Duration::from_secs(33), "{after:?}");
}
