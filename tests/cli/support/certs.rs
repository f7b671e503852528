//! Certificates for TLS tests, made with the `openssl` CLI
//! ([`Tool::Openssl`]): a private CA and server certificates it signs.

use std::path::Path;
use std::process::{Command, Stdio};

use super::{need, Tool};

/// Runs `openssl ARGS` in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    need(Tool::Openssl);
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("run openssl");
    assert!(out.status.success(), "openssl {}: {}", args[0], String::from_utf8_lossy(&out.stderr));
}

/// A CA (`ca.pem`) and, for each name, `NAME.pem`/`NAME.key`: a server
/// certificate whose only subject alternative name is `DNS:NAME` (`IP:NAME`
/// for an IP address such as `127.0.0.1`).
pub fn make_certs(dir: &Path, names: &[&str]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=envcloak fake test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    for name in names {
        let san = if name.parse::<std::net::IpAddr>().is_ok() { "IP" } else { "DNS" };
        let (key, csr, cert, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        std::fs::write(
            dir.join(&ext),
            format!(
                "subjectAltName={san}:{name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("write the extensions file");
        openssl(
            dir,
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}
