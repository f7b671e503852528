//! Values and names a run refuses to inject: an invalid name, a NUL byte,
//! a value over the kernel's limits, and, from a bulk import, a variable
//! that decides which code a program loads.

use envcloak_providers::{FailureKind, FetchError, SecretValue};

use crate::plan::is_valid_name;

/// Variables that decide which code a program loads or runs (the dynamic
/// loader's, shells', interpreters'): a bulk import never sets them, so a
/// key added to a secret cannot make the command run other code; an
/// explicit `env` entry may.
const LOADER_NAMES: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
];
/// Prefixes of such variables.
const LOADER_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_"];

/// Why an import may not set `name`, if it may not.
pub(super) fn controls_loading(name: &str) -> Option<FetchError> {
    let matched = LOADER_NAMES.contains(&name) || LOADER_PREFIXES.iter().any(|p| name.starts_with(p));
    matched.then(|| {
        FetchError::new(
            FailureKind::Denied,
            format!("{name} decides which code the command loads; an import never sets it"),
        )
        .with_hint(format!(
            "if the command should get it, map it explicitly: {name} = \"REF#KEY\" in the profile's env"
        ))
    })
}

/// Linux's limit on one environment string, `NAME=value` and its NUL
/// (`MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ENV_STRING: usize = 128 * 1024;

/// The longest value envcloak holds (an `as = "file"` one too): masking and
/// `scan` search for every form of every value, and their memory grows with
/// its length.
pub const MAX_VALUE: usize = 1 << 20;

/// Why a value is longer than envcloak holds, if it is.
pub(super) fn too_big(name: &str, value: &SecretValue) -> Option<FetchError> {
    let length = value.expose().len();
    (length > MAX_VALUE).then(|| {
        FetchError::new(
            FailureKind::Malformed,
            format!("the value of {name} is {length} bytes; envcloak holds values up to 1 MiB"),
        )
        .with_hint("keep large files (bundles, archives) out of secrets; store a key that opens them instead")
    })
}

/// Why `NAME=value` is too long for the kernel, if it is: said here, naming
/// the variable, rather than as "Argument list too long" from the exec.
pub(super) fn too_long(name: &str, value: &SecretValue) -> Option<FetchError> {
    let length = name.len() + 1 + value.expose().len() + 1;
    (length > MAX_ENV_STRING).then(|| {
        FetchError::new(
            FailureKind::Malformed,
            format!(
            "{name}={{value}} is {length} bytes; Linux takes at most {} KiB per environment string (MAX_ARG_STRLEN)",
            MAX_ENV_STRING / 1024
        ),
        )
        .with_hint(format!("pass it as a file instead: {name} = {{ ref = \"…\", as = \"file\" }}"))
    })
}

/// Why `name`/`value` cannot go into an environment, if they cannot.
pub(super) fn invalid(name: &str, value: &SecretValue) -> Option<FetchError> {
    if !is_valid_name(name) {
        return Some(
            FetchError::new(FailureKind::Malformed, format!("`{name}` is not a valid variable name"))
                .with_hint("rename the key, or import it with a prefix that makes it valid"),
        );
    }
    if value.expose().contains('\0') {
        return Some(FetchError::new(
            FailureKind::Malformed,
            format!("the value of {name} contains a NUL byte, which an environment variable cannot hold"),
        ));
    }
    None
}
