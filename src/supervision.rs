//! How a supervised run follows its secrets while the command runs: how
//! often to look for changes (`--watch`, `watch`), what a change does
//! (`--on-change`, `on_change`), and how the command is stopped for a
//! restart (`--stop-signal`, `--stop-grace`). A profile's keys are the
//! defaults; the command line wins.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::supervise::Stopping;

/// How often `--watch` without an interval polls.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(60);

/// How long a command may take to stop before `KILL`, as in Vault Agent and
/// envconsul.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// What a change of the secrets does to the running command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// Stop it and start it again with the new environment.
    Restart,
    /// Replace its secret files in place and send it this signal (a command
    /// that re-reads its files on `HUP`, like gunicorn, needs no restart);
    /// a change of a variable that is not a file still restarts it.
    Signal(Signal),
    /// Leave it running; the change is reported.
    Never,
}

/// A profile's keys (each `None` unless written), or the command line's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SupervisionKeys {
    /// `watch`: `Some(None)` for `watch = false`.
    pub watch: Option<Option<Duration>>,
    /// `on_change`.
    pub on_change: Option<OnChange>,
    /// `stop_signal`.
    pub stop_signal: Option<Signal>,
    /// `stop_grace`.
    pub stop_grace: Option<Duration>,
}

impl SupervisionKeys {
    /// `self` with every key `over` sets replaced.
    pub fn overridden_by(self, over: SupervisionKeys) -> SupervisionKeys {
        SupervisionKeys {
            watch: over.watch.or(self.watch),
            on_change: over.on_change.or(self.on_change),
            stop_signal: over.stop_signal.or(self.stop_signal),
            stop_grace: over.stop_grace.or(self.stop_grace),
        }
    }

    /// The settings, with defaults for what is not set.
    pub fn settle(self) -> Supervision {
        Supervision {
            watch: self.watch.flatten(),
            on_change: self.on_change.unwrap_or(OnChange::Restart),
            stopping: Stopping {
                signal: self.stop_signal.unwrap_or(Signal::SIGTERM),
                grace: self.stop_grace.unwrap_or(DEFAULT_GRACE),
            },
        }
    }
}

/// The settled settings of a run.
#[derive(Clone, Copy, Debug)]
pub struct Supervision {
    /// Poll for changes this often; `None`: do not watch.
    pub watch: Option<Duration>,
    /// What a change does.
    pub on_change: OnChange,
    /// How the command is stopped for a restart.
    pub stopping: Stopping,
}

impl Supervision {
    /// One line for `check`: how the profile keeps its secrets current, or
    /// `None` when it does not watch.
    pub fn describe(&self) -> Option<String> {
        let interval = self.watch?;
        let stop = format!("{}, then KILL after {} s", self.stopping.signal, self.stopping.grace.as_secs_f64());
        let policy = match self.on_change {
            OnChange::Restart => format!("restart ({stop})"),
            OnChange::Signal(signal) => format!("replace the secret files and send {signal} (else restart: {stop})"),
            OnChange::Never => "keep the running command's secrets".to_owned(),
        };
        Some(format!("watch: every {} s; on change: {policy}", interval.as_secs_f64()))
    }
}

/// Parses `restart`, `never` or `signal:NAME`.
pub fn parse_on_change(text: &str) -> Result<OnChange, String> {
    match text.trim() {
        "restart" => Ok(OnChange::Restart),
        "never" => Ok(OnChange::Never),
        other => match other.strip_prefix("signal:") {
            Some(name) => parse_signal(name).map(OnChange::Signal),
            None => Err(format!("`{other}` is not a policy: use restart, never or signal:NAME (e.g. signal:HUP)")),
        },
    }
}

/// Parses a signal name: `TERM`, `SIGTERM`, `hup`…, limited to those a
/// command can be asked to stop or reload with.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    let allowed = [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ];
    allowed.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
        format!("`{}` is not a signal envcloak sends: use TERM, INT, QUIT, HUP, USR1, USR2 or WINCH", text.trim())
    })
}

/// Parses `--watch`'s interval (`30s`, `5m`…), at least one second.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = crate::duration::parse(text)?;
    if interval < Duration::from_secs(1) {
        return Err(format!("`{}` is too short to poll with: use 1s or more", text.trim()));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_and_signals() {
        assert_eq!(parse_on_change("restart"), Ok(OnChange::Restart));
        assert_eq!(parse_on_change("never"), Ok(OnChange::Never));
        assert_eq!(parse_on_change("signal:HUP"), Ok(OnChange::Signal(Signal::SIGHUP)));
        assert_eq!(parse_on_change("signal:sigusr2"), Ok(OnChange::Signal(Signal::SIGUSR2)));
        assert!(parse_on_change("signal:KILL").is_err());
        assert!(parse_on_change("reload").is_err());
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert!(parse_signal("STOP").is_err());
        assert!(parse_interval("500ms").is_err());
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn the_command_line_wins_over_the_profile() {
        let profile = SupervisionKeys {
            watch: Some(Some(Duration::from_secs(10))),
            on_change: Some(OnChange::Never),
            ..SupervisionKeys::default()
        };
        let flags = SupervisionKeys { on_change: Some(OnChange::Restart), ..SupervisionKeys::default() };
        let settled = profile.overridden_by(flags).settle();
        assert_eq!(settled.watch, Some(Duration::from_secs(10)));
        assert_eq!(settled.on_change, OnChange::Restart);
        assert_eq!(settled.stopping.grace, DEFAULT_GRACE);
        assert_eq!(settled.stopping.signal, Signal::SIGTERM);
        let off = SupervisionKeys { watch: Some(None), ..SupervisionKeys::default() };
        assert_eq!(profile.overridden_by(off).settle().watch, None);
    }
}
