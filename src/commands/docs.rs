//! `completions` and `man`: shell completion scripts and man pages, made
//! from the command-line definitions so they never drift from `--help`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::CliError;
use crate::exit::Outcome;

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) -> Result<Outcome, CliError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "envcloak", &mut script);
    print(&script)
}

/// Prints envcloak(1), or envcloak-COMMAND(1) for `args.command`.
pub fn man(args: &ManArgs) -> Result<Outcome, CliError> {
    let mut top = Cli::command();
    top.build();
    let page = match &args.command {
        None => top,
        Some(name) => {
            let names: Vec<String> =
                top.get_subcommands().filter(|c| c.get_name() != "help").map(|c| c.get_name().to_owned()).collect();
            let sub = top.find_subcommand(name).cloned().ok_or_else(|| {
                CliError::new(format!("no command `{name}`")).hint(format!("one of: {}", names.join(", ")))
            })?;
            // envcloak-run(1), with "envcloak run" in its synopsis.
            sub.name(format!("envcloak-{name}"))
                .display_name(format!("envcloak-{name}"))
                .bin_name(format!("envcloak {name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .map_err(|e| CliError::new(format!("cannot render the man page: {e}")))?;
    super::print_stdout(&ascii_roff(&String::from_utf8_lossy(&roff)))?;
    Ok(Outcome::Success)
}

/// Roff with every non-ASCII character written as a `\[uXXXX]` escape, so
/// the page renders the same with or without a UTF-8 preprocessor.
fn ascii_roff(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

fn print(bytes: &[u8]) -> Result<Outcome, CliError> {
    super::print_stdout(&String::from_utf8_lossy(bytes))?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_ascii_characters_become_roff_escapes() {
        assert_eq!(super::ascii_roff("a \u{2014} b \u{2026} \u{1F600}"), "a \\[u2014] b \\[u2026] \\[u1F600]");
    }
}
