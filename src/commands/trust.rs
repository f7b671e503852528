//! `envcloak trust`: record a config file as allowed to send credentials to
//! the addresses it names (see [`crate::trust`]).

use std::path::PathBuf;

use envcloak_providers::{registry, Backend};

use crate::cli::TrustArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::exit::Outcome;
use crate::trust::{digest, TrustStore};

use super::Context;

/// What `trust` did, on stderr (`-q` silences it); never a value.
macro_rules! tell {
    ($($arg:tt)*) => {
        if crate::diag::enabled(crate::diag::Level::Warn) {
            eprintln!("envcloak: {}", crate::error::printable(&format!($($arg)*)));
        }
    };
}

/// Trusts, forgets or lists config files.
pub fn trust(context: &Context, args: &TrustArgs) -> Result<Outcome, CliError> {
    let mut store = TrustStore::open()?;
    if args.list {
        let mut text = String::new();
        for path in store.paths() {
            text.push_str(&format!("{}\n", crate::error::printable(&path.display().to_string())));
        }
        super::print_stdout(&text)?;
        return Ok(Outcome::Success);
    }
    let path = config_path(context, args)?;
    if args.remove {
        if !store.remove(&path)? {
            return Err(CliError::new(format!("{} was not trusted", path.display())).hint("see envcloak trust --list"));
        }
        tell!("{} is no longer trusted", path.display());
        return Ok(Outcome::Success);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
    // A file that does not parse is not worth trusting: say why now.
    let config = Config::parse(path.clone(), text)?;
    store.add(&path, config.text())?;
    let hash = digest(config.text());
    tell!("trusted {} (sha256 {})", path.display(), &hash[..16]);
    let every: Vec<Backend> = registry::built().collect();
    let reasons = config.backends.trust_reasons(&every);
    if reasons.is_empty() {
        tell!("it names no address of its own: credentials go where VAULT_ADDR / AWS_ENDPOINT_URL say");
    }
    for reason in reasons {
        tell!("it may send credentials to {reason}");
    }
    Ok(Outcome::Success)
}

/// The file to trust: the argument, else `--config`, else the one
/// discovery finds; made absolute and free of symlinks, as recorded.
fn config_path(context: &Context, args: &TrustArgs) -> Result<PathBuf, CliError> {
    let explicit = args.file.as_deref().or(context.config_flag.as_deref());
    let path = Config::locate(explicit, &context.cwd)?.ok_or_else(|| {
        CliError::new(format!("no {} here or in a parent folder", crate::config::FILE_NAME))
            .hint("name the file: envcloak trust path/to/envcloak.toml")
    })?;
    path.canonicalize().map_err(|e| CliError::new(format!("cannot resolve {}: {e}", path.display())))
}
