use envcloak_providers::age_file::AgeConfig;
use envcloak_providers::aws::AwsConfig;
use envcloak_providers::vault::{AuthMethod, VaultConfig};

use super::*;

fn parse(text: &str) -> Result<Config, CliError> {
    Config::parse(PathBuf::from("/project/envcloak.toml"), text.to_owned())
}

fn message(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("config should be refused"),
        Err(e) => e.message,
    }
}

#[test]
fn reads_the_documented_example() {
    let config = parse(
        r#"
default_profile = "dev"

[vault]
address = "https://vault.internal:8200"
auth = { method = "approle", role_id_env = "VAULT_ROLE_ID", secret_id_env = "VAULT_SECRET_ID" }

[aws]
region = "eu-west-1"
profile = "deploy"
endpoint_url = "http://127.0.0.1:5000"
batch = false

[age]
identity = "keys/id.txt"
recipients_file = "secrets/recipients.txt"

[profiles.dev]
import = ["age://secrets/dev.env.age"]

[profiles.prod]
extends = "dev"
import = [{ from = "vault://secret/flask/prod", prefix = "FLASK_" }]
[profiles.prod.env]
DATABASE_URL = "aws-sm://prod/flask/db#url"
SENTRY_DSN = { ref = "vault://secret/flask/prod#sentry_dsn", optional = true }
TLS_KEY = { ref = "vault://secret/flask/tls#key", as = "file" }
"#,
    )
    .unwrap();
    assert_eq!(config.default_profile.as_ref().map(|(n, _)| n.as_str()), Some("dev"));
    let age = config.backends.settings::<AgeConfig>().unwrap();
    assert_eq!(age.identity, Some(PathBuf::from("/project/keys/id.txt")));
    assert_eq!(age.recipients_files, [PathBuf::from("/project/secrets/recipients.txt")]);
    assert!(matches!(config.backends.settings::<VaultConfig>().unwrap().auth, AuthMethod::AppRole { .. }));
    assert_eq!(
        config.backends.settings::<AwsConfig>().unwrap(),
        &AwsConfig {
            region: Some("eu-west-1".into()),
            profile: Some("deploy".into()),
            endpoint_url: Some("http://127.0.0.1:5000".into()),
            batch: Some(false),
        }
    );
    let prod = config.profile("prod").unwrap();
    assert_eq!(prod.extends.as_ref().map(|(n, _)| n.as_str()), Some("dev"));
    assert_eq!(prod.imports[0].reference, "vault://secret/flask/prod");
    assert_eq!(prod.imports[0].prefix, "FLASK_");
    let names: Vec<&str> = prod.env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["DATABASE_URL", "SENTRY_DSN", "TLS_KEY"], "env keeps file order");
    assert!(prod.env[1].optional && !prod.env[1].as_file);
    assert!(prod.env[2].as_file && !prod.env[2].optional);
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let msg = message("default_profile = \"dev\"\n[profiles.dev]\nimport = [\"age://x\"\n");
    assert!(msg.starts_with("/project/envcloak.toml:3:"), "{msg}");
}

#[test]
fn unknown_keys_are_named_with_their_location() {
    let msg = message("[profiles.dev]\nimprot = []\n");
    assert!(msg.starts_with("/project/envcloak.toml:2:1:"), "{msg}");
    assert!(msg.contains("unknown key `improt`") && msg.contains("extends, import, env"), "{msg}");
    // A backend's section: the same wording, with the file, line and column, without the value.
    let msg = message("[vault]\nadress = \"x\"\n");
    assert!(msg.starts_with("/project/envcloak.toml:2:1: unknown key `adress` in [vault]"), "{msg}");
    let msg = message("[age]\nidentity = 3\n");
    assert!(msg.starts_with("/project/envcloak.toml:2:12: [age] `identity` must be a string, not integer"), "{msg}");
    let msg = message("[aws]\nbatch = \"hidden\"\n");
    assert!(msg.starts_with("/project/envcloak.toml:2:9: [aws] `batch` must be true or false, not string"), "{msg}");
    assert!(!msg.contains("hidden"), "{msg}");
    let msg = message("[gcp]\nproject = \"x\"\n");
    assert!(msg.contains("unknown key `gcp` in the top level") && msg.contains("age, vault, aws"), "{msg}");
}

#[test]
fn wrong_types_are_explained() {
    let msg = message("[profiles.dev]\nimport = \"age://x\"\n");
    assert!(msg.contains("2:10") && msg.contains("must be a list"), "{msg}");
    let msg = message("[profiles.dev.env]\nX = { ref = \"age://x#X\", as = \"disk\" }\n");
    assert!(msg.contains("as = \"disk\"") && msg.contains("\"file\""), "{msg}");
    let msg = message("[profiles.dev.env]\nX = 3\n");
    assert!(msg.contains("env entry `X`"), "{msg}");
    let msg = message("[profiles.dev.env]\nX = { optional = true }\n");
    assert!(msg.contains("has no `ref`"), "{msg}");
}

#[test]
fn discovery_walks_up_to_the_nearest_config() {
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(root.path().join(FILE_NAME), "default_profile = \"x\"\n[profiles.x]\n").unwrap();
    let found = Config::discover(None, &nested, |_, _| Ok(())).unwrap().unwrap();
    assert_eq!(found.path, root.path().join(FILE_NAME));
    assert_eq!(found.dir, root.path());
    let none = tempfile::tempdir().unwrap();
    assert!(
        Config::discover(None, none.path(), |_, _| Ok(())).unwrap().is_none()
            || none.path().ancestors().any(|d| d.join(FILE_NAME).is_file())
    );
    assert!(Config::discover(Some(Path::new("missing.toml")), none.path(), |_, _| Ok(())).is_err());
}

#[test]
fn vault_section_is_typed_and_checked() {
    let config = parse(
        "[vault]\naddress = \"https://vault.example.com:8200\"\nca_cert = \"ca.pem\"\nauth = { method = \"approle\", role_id_env = \"MY_ROLE\", mount = \"/ci-approle/\" }\n",
    )
    .unwrap();
    let vault = config.backends.settings::<VaultConfig>().unwrap();
    assert_eq!(vault.address.as_deref(), Some("https://vault.example.com:8200"));
    assert_eq!(vault.ca_cert, Some(PathBuf::from("/project/ca.pem")));
    assert!(matches!(&vault.auth, AuthMethod::AppRole { mount, .. } if mount == "ci-approle"));
    let msg = message("[vault]\nauth = { method = \"ldap\" }\n");
    assert!(
        msg.contains("2:19")
            && msg.contains("`auth.method` must be one of token, approle, jwt, kubernetes (got `ldap`)"),
        "{msg}"
    );
    let msg = message("[vault]\nauth = { method = \"kubernetes\" }\n");
    assert!(msg.contains("[vault] `auth` needs `role`"), "{msg}");
    let msg = message("[vault]\nskip_verify = \"yes\"\n");
    assert!(msg.contains("2:15") && msg.contains("`skip_verify` must be true or false"), "{msg}");
}
