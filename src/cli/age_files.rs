//! Options of the commands that make keys and write age files: `keygen`,
//! `encrypt`, `decrypt`, `edit`.

use std::path::PathBuf;

use clap::Args;

/// Options of `keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write the identity to FILE (created with mode 0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// A hybrid post-quantum identity (ML-KEM-768 + X25519, recipient age1pq1…, as age-keygen -pq)
    #[arg(long)]
    pub pq: bool,
}

/// Options of `encrypt`.
#[derive(Args, Debug)]
pub struct EncryptArgs {
    /// Encrypt to this recipient (age1…, post-quantum age1pq1…, or an SSH public key); repeatable
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Encrypt to the recipients listed in FILE (or every file in a folder); repeatable [default: the config's [age] recipients_file]
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Write ASCII-armored output
    #[arg(short, long)]
    pub armor: bool,

    /// Write to OUT instead of stdout
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Encrypt empty input too (refused by default: it is usually a failed command before the pipe)
    #[arg(long)]
    pub allow_empty: bool,

    /// Read from IN instead of stdin
    #[arg(value_name = "IN")]
    pub input: Option<PathBuf>,
}

/// Options of `decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// Identity file to try first (age or SSH); repeatable
    #[arg(short, long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,

    /// Write to OUT instead of stdout
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Read from IN instead of stdin
    #[arg(value_name = "IN")]
    pub input: Option<PathBuf>,
}

/// Options of `edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// The age-encrypted dotenv file (created if it does not exist)
    #[arg(value_name = "FILE.age")]
    pub file: PathBuf,

    /// Identities to decrypt with, recipients to encrypt to.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Options of `set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The age-encrypted dotenv file (created if it does not exist)
    #[arg(value_name = "FILE.age")]
    pub file: PathBuf,

    /// The variable to set; its value is read from stdin, or asked for without echo on a terminal
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Refused: a value on the command line shows in `ps` and in shell history
    #[arg(value_name = "VALUE", hide = true)]
    pub value_on_command_line: Option<std::ffi::OsString>,

    /// Identities to decrypt with, recipients to encrypt to.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Options of `unset`.
#[derive(Args, Debug)]
pub struct UnsetArgs {
    /// The age-encrypted dotenv file
    #[arg(value_name = "FILE.age")]
    pub file: PathBuf,

    /// The variables to remove (every assignment of each, with its line)
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,

    /// Identities to decrypt with, recipients to encrypt to.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Options of `get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The age-encrypted dotenv file
    #[arg(value_name = "FILE.age")]
    pub file: PathBuf,

    /// The variable whose value to print (raw, then a newline)
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Identity file to try first; repeatable
    #[arg(short, long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,
}

/// Who may decrypt and who to re-encrypt to, for the commands that change
/// an encrypted file.
#[derive(Args, Debug, Default)]
pub struct KeyArgs {
    /// Identity file to try first; repeatable
    #[arg(short, long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,

    /// Re-encrypt to this recipient; repeatable [default: the config's recipients_file]
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Re-encrypt to the recipients listed in FILE (or every file in a folder); repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

/// Options of `rekey`.
#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// The age files [default: every age file the config's profiles use]
    #[arg(value_name = "FILE.age")]
    pub files: Vec<PathBuf>,

    /// Only report: exit 1 when a file is not encrypted to exactly the current recipients (needs no private key)
    #[arg(long)]
    pub check: bool,

    /// Identities to decrypt with, recipients to encrypt to.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Options of `git-setup`.
#[derive(Args, Debug)]
pub struct GitSetupArgs {
    /// The envcloak command git runs for the drivers
    #[arg(long, value_name = "COMMAND", default_value = "envcloak")]
    pub program: String,
}

/// Options of `git-textconv` (run by git).
#[derive(Args, Debug)]
pub struct GitTextconvArgs {
    /// The encrypted file git asks about
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Options of `git-merge` (run by git as `git-merge %O %A %B %P`).
#[derive(Args, Debug)]
pub struct GitMergeArgs {
    /// The common ancestor's version (%O)
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// Our version (%A), replaced by the result
    #[arg(value_name = "OURS")]
    pub ours: PathBuf,
    /// Their version (%B)
    #[arg(value_name = "THEIRS")]
    pub theirs: PathBuf,
    /// The file's path in the repository (%P), for messages
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}
