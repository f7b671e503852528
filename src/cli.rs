//! Command-line definitions (clap derive), with worked examples in the help.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::sys::signal::Signal;

use crate::supervision::OnChange;

use crate::plan::AdHoc;

mod age_files;
pub use age_files::{
    DecryptArgs, EditArgs, EncryptArgs, GetArgs, GitMergeArgs, GitSetupArgs, GitTextconvArgs, KeyArgs, KeygenArgs,
    RekeyArgs, SetArgs, UnsetArgs,
};

const EXAMPLES: &str = "\
Examples:
  envcloak run -- flask run                  local development, encrypted file in the repo
  envcloak run -p ci -- pytest               CI job
  envcloak run -p prod -- ./deploy.sh        deploy, prefixed
  envcloak run -e API_KEY=age://keys.env.age#API_KEY -- ./script.sh
  envcloak check -p prod                     what would be injected, and from where
  envcloak keygen -o ~/.config/envcloak/identity.txt

Exit status: the child's own; 128+N when it died of signal N; 125 when envcloak
failed before starting it; 126 when the command cannot be executed; 127 when it
is not found.";

/// Run a command with secrets from Vault/OpenBao, AWS Secrets Manager or
/// age-encrypted files as environment variables.
#[derive(Parser, Debug)]
#[command(name = "envcloak", version, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Configuration file [default: envcloak.toml in the current folder or the nearest parent]
    #[arg(short, long, global = true, env = "ENVCLOAK_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Profile to use [default: the config's default_profile]
    #[arg(short, long, global = true, env = "ENVCLOAK_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// More diagnostics on stderr (repeat for more); never shows a value
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// No diagnostics, only fatal errors
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve the profile's secrets and run COMMAND with them in its environment
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Resolve every secret and show NAME, SOURCE, STATUS (never a value)
    Check(CheckArgs),
    /// Print the resolved secrets for tools that cannot be wrapped
    Export(ExportArgs),
    /// Create a new age identity, X25519 or with --pq post-quantum (file mode 0600); the public key goes to stderr
    Keygen(KeygenArgs),
    /// Encrypt with age (interoperable with age and rage)
    Encrypt(EncryptArgs),
    /// Decrypt an age file (interoperable with age and rage)
    Decrypt(DecryptArgs),
    /// Edit an age-encrypted dotenv file in $VISUAL/$EDITOR, then re-encrypt it
    Edit(EditArgs),
    /// Set one variable of an age-encrypted dotenv file (value from stdin or a no-echo prompt)
    #[command(after_help = SET_HELP)]
    Set(SetArgs),
    /// Remove variables from an age-encrypted dotenv file
    Unset(UnsetArgs),
    /// Print one variable's value from an age-encrypted dotenv file, for scripts
    Get(GetArgs),
    /// Re-encrypt age files to the current recipients; --check reports, without a key, which are not
    #[command(after_help = REKEY_HELP)]
    Rekey(RekeyArgs),
    /// Set up git to diff (names and keyed fingerprints, never values) and merge (per variable) *.env.age files
    #[command(name = "git-setup", after_help = GIT_SETUP_HELP)]
    GitSetup(GitSetupArgs),
    /// The git diff driver: a file's names with keyed fingerprints of their values (run by git)
    #[command(name = "git-textconv", hide = true)]
    GitTextconv(GitTextconvArgs),
    /// The git merge driver: a three-way merge per variable (run by git)
    #[command(name = "git-merge", hide = true)]
    GitMerge(GitMergeArgs),
    /// Search files (and git history) for the profile's secret values; report path:line: NAME
    #[command(after_help = SCAN_HELP)]
    Scan(ScanArgs),
    /// Trust a config file to send credentials to the addresses it names
    #[command(after_help = TRUST_HELP)]
    Trust(TrustArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of envcloak or of one of its commands
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
}

const SET_HELP: &str = "\
Examples:
  envcloak set secrets/dev.env.age API_KEY                  asks for the value (no echo)
  pass show api-key | envcloak set secrets/dev.env.age API_KEY
  envcloak set secrets/dev.env.age TLS_KEY < tls.key        a multi-line value

One trailing newline of what stdin gives is dropped (as $(…) does). Every
other line of the file is kept byte for byte; the file is re-encrypted to the
current recipients.";

const REKEY_HELP: &str = "\
Examples:
  envcloak rekey                      every age file of every profile, to [age] recipients_file
  envcloak rekey --check              in CI or a pre-commit hook: exit 1 when a file is out of date
  envcloak rekey secrets/dev.env.age -R secrets/recipients/

envcloak records, in each file it encrypts, a fingerprint of every recipient
(an extra age stanza that age, rage and typage skip), so --check needs no
private key. When a recipient is removed, rekey names the variables that
person could read: rotate them, as git history keeps the old file.";

const GIT_SETUP_HELP: &str = "\
Adds `*.env.age diff=envcloak merge=envcloak` to .gitattributes (commit it) and
sets, in this repository's git config:
  diff.envcloak.textconv = envcloak git-textconv
  merge.envcloak.driver  = envcloak git-merge %O %A %B %P
Each teammate runs it once per clone (git config is not committed).

git diff then shows each variable's name with a fingerprint of its value keyed
by the viewer's identity, never the value; git merge merges per variable, and
a variable both branches changed differently becomes a conflict inside the
encrypted file, resolved with envcloak edit FILE.";

const TRUST_HELP: &str = "\
A config whose [vault] address or [aws] endpoint_url receives your credentials
(VAULT_TOKEN, ~/.vault-token, a login, the AWS credential chain), or that sets
Vault's ca_cert, ca_path or skip_verify, is used only once trusted: envcloak
records its path and SHA-256 in ~/.config/envcloak/trusted, and any change to
the file needs trusting again. Configs that only use age files, and addresses
named by VAULT_ADDR/BAO_ADDR/AWS_ENDPOINT_URL, need no trust.

Without trust: ENVCLOAK_TRUST=1 trusts the config of one run; with CI=true a
config inside the checked-out repository is trusted.

Examples:
  envcloak trust                   the config envcloak would use here
  envcloak trust deploy/envcloak.toml
  envcloak trust --list
  envcloak trust --remove";

/// Options of `trust`.
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// The config file [default: the one envcloak would use here]
    #[arg(value_name = "CONFIG")]
    pub file: Option<PathBuf>,

    /// Forget the file instead of trusting it
    #[arg(long, conflicts_with = "list")]
    pub remove: bool,

    /// List the trusted files
    #[arg(long)]
    pub list: bool,
}

const COMPLETIONS_HELP: &str = "\
Install (then start a new shell):
  bash: envcloak completions bash > ~/.local/share/bash-completion/completions/envcloak
  zsh:  envcloak completions zsh > ~/.zfunc/_envcloak   (with fpath+=~/.zfunc before compinit)
  fish: envcloak completions fish > ~/.config/fish/completions/envcloak.fish";

const MAN_HELP: &str = "\
Install:
  mkdir -p ~/.local/share/man/man1
  envcloak man > ~/.local/share/man/man1/envcloak.1
  for c in run check export keygen encrypt decrypt edit scan trust completions; do
    envcloak man $c > ~/.local/share/man/man1/envcloak-$c.1
  done
Read one without installing: envcloak man run | man -l -";

const SCAN_HELP: &str = "\
Searches for each value of at least 8 bytes, each line of a multi-line value, and
the value base64-encoded, URL-encoded and JSON-escaped; also reports plaintext
dotenv files (.env, .env.*, *.env, .flaskenv; not .env.example and the like) that
define one of the profile's names. Findings go to stdout as path:line: NAME, never
with the value.

Exit status: 0 when nothing was found, 1 when something was, 125 when the
profile could not be resolved or a path could not be searched (named on
stderr, even with -q).

Examples:
  envcloak scan                          the current folder, as .gitignore leaves it
  envcloak scan -p prod --history        also every line any commit added
  envcloak scan app.py config/           pre-commit hooks pass the changed files";

/// Options of `scan`.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The profile and ad-hoc mappings to resolve.
    #[command(flatten)]
    pub mappings: MappingArgs,

    /// Also search every line that a commit on any branch or tag added (git log -p --all)
    #[arg(long)]
    pub history: bool,

    /// Also search files that .gitignore, .ignore and .git/info/exclude leave out
    #[arg(long)]
    pub no_ignore: bool,

    /// Files and folders to search [default: .]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The command whose page to print (envcloak-COMMAND(1)); without it, envcloak(1)
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

const RUN_HELP: &str = "\
Order: the profile's imports in the order listed (a later one wins), then its env
entries, then -i, then -e. With `extends`, the base profile is applied first.

envcloak replaces itself with COMMAND (exec) unless it must stay to mask output;
then it forwards every signal it receives to COMMAND, once (HUP, INT, QUIT, TERM
and CONT to COMMAND's whole process group).";

/// `-e` and `-i`, shared by the commands that resolve secrets.
#[derive(Args, Debug, Clone, Default)]
pub struct MappingArgs {
    /// Add NAME=REF on top of the profile (works without a config file)
    #[arg(short = 'e', long = "env", value_name = "NAME=REF")]
    pub env: Vec<String>,

    /// Import every key of REF on top of the profile (works without a config file)
    #[arg(short = 'i', long = "import", value_name = "REF")]
    pub import: Vec<String>,

    /// Give up resolving after this long (e.g. 30s, 1500ms, 2m)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::parse)]
    pub timeout: Duration,

    /// Go on when the profile resolves to no variable at all (by default an error: an emptied secrets file)
    #[arg(long)]
    pub allow_empty: bool,
}

impl MappingArgs {
    /// The `-e` and `-i` mappings, for [`plan::build`](crate::plan::build).
    pub fn ad_hoc(&self) -> AdHoc<'_> {
        AdHoc { env: &self.env, import: &self.import }
    }
}

/// Options of `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The profile and ad-hoc mappings to resolve.
    #[command(flatten)]
    pub mappings: MappingArgs,

    /// Mask secret values in the command's output [default: on when CI is true]
    #[arg(long, overrides_with = "no_mask")]
    pub mask: bool,

    /// Do not mask output (lets envcloak exec the command)
    #[arg(long, overrides_with = "mask")]
    pub no_mask: bool,

    /// Start the command with only the secrets and the --keep variables
    #[arg(long)]
    pub clean_env: bool,

    /// With --clean-env, variables to pass through (repeatable, or comma-separated);
    /// also keeps bootstrap credentials such as ENVCLOAK_AGE_KEY that are otherwise removed
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub keep: Vec<String>,

    /// Do not replace variables that are already set
    #[arg(long)]
    pub no_override: bool,

    /// Append JSON lines about this run to PATH, as the command starts and when it ends (names,
    /// references, versions, outcome; never a value); the command is then supervised, to record its exit status
    #[arg(long, env = "ENVCLOAK_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<PathBuf>,

    /// Write Prometheus metrics of this run to PATH (replaced atomically); the
    /// command is then supervised, to record its exit status
    #[arg(long, env = "ENVCLOAK_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Poll the profile's secrets every INTERVAL (default 60s) while the command runs, and apply
    /// --on-change when they change (KV v2 versions, AWS version ids, age files' modification)
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true, default_missing_value = "60s", value_parser = crate::supervision::parse_interval)]
    pub watch: Option<Duration>,

    /// What new secrets do to the running command: restart (default), signal:NAME (replace its
    /// secret files in place and send NAME, e.g. signal:HUP for gunicorn), or never
    #[arg(long, value_name = "POLICY", value_parser = crate::supervision::parse_on_change)]
    pub on_change: Option<OnChange>,

    /// The signal that stops the command for a restart [default: TERM]
    #[arg(long, value_name = "SIGNAL", value_parser = crate::supervision::parse_signal)]
    pub stop_signal: Option<Signal>,

    /// How long the command may take to stop for a restart before KILL [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub stop_grace: Option<Duration>,

    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Options of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The profile and ad-hoc mappings to resolve.
    #[command(flatten)]
    pub mappings: MappingArgs,

    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
    pub format: CheckFormat,
}

/// Output formats of `check`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// Aligned columns
    Table,
    /// A JSON document
    Json,
}

/// Options of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The profile and ad-hoc mappings to resolve.
    #[command(flatten)]
    pub mappings: MappingArgs,

    /// Output format
    #[arg(long, value_enum)]
    pub format: ExportFormat,
}

/// Output formats of `export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// NAME="value" lines that python-dotenv reads back exactly
    Dotenv,
    /// One JSON object
    Json,
    /// export NAME='value' lines for sh/bash/zsh
    Shell,
    /// GitHub Actions: ::add-mask:: lines, and entries appended to $GITHUB_ENV
    Github,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }
}
