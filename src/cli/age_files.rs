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

    /// Encrypt to the recipients listed in FILE; repeatable [default: the config's [age] recipients_file]
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

    /// Identity file to try first; repeatable
    #[arg(short, long = "identity", value_name = "IDENTITY")]
    pub identities: Vec<PathBuf>,

    /// Re-encrypt to this recipient; repeatable [default: the config's recipients_file]
    #[arg(short, long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Re-encrypt to the recipients listed in FILE; repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}
