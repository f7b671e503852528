//! A server that answers with more than 16 MiB gets an error naming the
//! backend, not an allocation: the answer is refused before it is held.

use super::{refusal, report, trusted, AWS_PROFILE, PROFILE};
use crate::support::net::{Answer, HttpStub};
use crate::vault::project;

/// 17 MiB of JSON-looking text.
fn huge() -> String {
    format!("{{\"data\":\"{}\"}}", "x".repeat(17 << 20))
}

#[test]
fn answers_over_16_mib_are_refused_by_vault_and_aws() {
    let mut failures = Vec::new();
    let vault = HttpStub::start(|_| Answer::json(200, huge()));
    let ws = project(&vault.addr(), "", PROFILE);
    let (out, mut problems) = refusal(&ws, trusted(ws.envcloak().env("VAULT_TOKEN", "fake-token")), &[]);
    if !out.stderr().contains("larger than 16 MiB") || !out.stderr().contains("Vault") {
        problems.push("stderr does not name Vault and the 16 MiB limit".into());
    }
    failures.extend(super::failure("Vault", &problems, &out));

    let aws = HttpStub::start(|_| Answer::json(200, huge()));
    let ws = crate::aws::project(&crate::aws::at(&aws.addr()), AWS_PROFILE);
    let (out, mut problems) = refusal(&ws, trusted(crate::aws::envcloak(&ws)), &[]);
    if !out.stderr().contains("larger than 16 MiB") || !out.stderr().contains("AWS Secrets Manager") {
        problems.push("stderr does not name AWS Secrets Manager and the 16 MiB limit".into());
    }
    failures.extend(super::failure("AWS", &problems, &out));
    report(&failures);
}
