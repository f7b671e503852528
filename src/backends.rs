//! The backends of a run: each backend of the registry with its settings
//! from the config file, and what the CLI gives their providers (the
//! terminal prompt, the variables `${VAR}` may read, its warnings).

use std::sync::Arc;

use envcloak_providers::backend::{PassphrasePrompt, Section, SectionError};
use envcloak_providers::{
    registry, Backend, BackendConfig, Destination, FailureKind, FetchError, Provider, RunContext,
};

use crate::inject::Passthrough;
use crate::trust::Reasons;
use crate::tty::TerminalPrompt;

/// Every built-in backend with its settings.
pub struct Backends {
    configs: Vec<(Backend, Box<dyn BackendConfig>)>,
    /// Which of envcloak's variables the command gets (and so `${VAR}` in
    /// an age file may read).
    pub passthrough: Passthrough,
    /// Whether a local backend may ask on the terminal (a passphrase); not
    /// while the command runs and has the terminal.
    pub interactive: bool,
}

impl Backends {
    /// Each backend configured from its section, as `section` finds it in
    /// the config file; relative paths are relative to `dir`.
    pub fn configure<'s>(
        section: impl Fn(&str) -> Option<&'s Section<'s>>,
        dir: &std::path::Path,
    ) -> Result<Self, SectionError> {
        let configs = registry::built()
            .map(|backend| {
                let module = backend.module();
                module.configure(section(module.section()), dir).map(|config| (backend, config))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { configs, passthrough: Passthrough::default(), interactive: true })
    }

    /// The settings without a config file: each backend's variables decide.
    pub fn defaults() -> Self {
        let configs = registry::built()
            .filter_map(|backend| {
                backend.module().configure(None, std::path::Path::new(".")).ok().map(|c| (backend, c))
            })
            .collect();
        Self { configs, passthrough: Passthrough::default(), interactive: true }
    }

    /// The settings of type `T` (a backend's own, e.g. the age backend's
    /// `AgeConfig`), if that backend is built in.
    pub fn settings<T: 'static>(&self) -> Option<&T> {
        self.configs.iter().find_map(|(_, config)| config.as_any().downcast_ref::<T>())
    }

    fn config(&self, backend: Backend) -> Option<&dyn BackendConfig> {
        self.configs.iter().find(|(b, _)| *b == backend).map(|(_, config)| config.as_ref())
    }

    /// The provider of `backend`; `deadline` bounds network backends.
    pub fn provider(&self, backend: Backend, deadline: tokio::time::Instant) -> Result<Arc<dyn Provider>, FetchError> {
        let passthrough = self.passthrough.clone();
        let run = RunContext {
            deadline,
            prompt: if backend.is_local() && self.interactive { prompt() } else { None },
            expandable: Arc::new(move |name: &str| passthrough.expandable(name)),
            warn: Arc::new(|message: &str| crate::diag::warning!("{message}")),
        };
        let config = self
            .config(backend)
            .ok_or_else(|| FetchError::new(FailureKind::Internal, format!("the {backend} backend has no settings")))?;
        config.provider(&run)
    }

    /// Where each network backend in `used` connects, and which setting
    /// named the address (the environment wins over the file, as with the
    /// Vault CLI and the AWS SDK).
    pub fn destinations(&self, used: &[Backend]) -> Vec<(Backend, Destination)> {
        self.configs
            .iter()
            .filter(|(backend, _)| used.contains(backend))
            .filter_map(|(backend, config)| config.destination().map(|d| (*backend, d)))
            .collect()
    }

    /// What the config file decides about where credentials go, for the
    /// backends in `used`: each is a reason it must be trusted first.
    pub fn trust_reasons(&self, used: &[Backend]) -> Reasons {
        self.configs.iter().filter(|(backend, _)| used.contains(backend)).flat_map(|(_, c)| c.trust_reasons()).collect()
    }

    /// Variables that carry credentials for envcloak itself; the child does
    /// not get them unless `--keep` names them.
    pub fn bootstrap_credentials(&self) -> Vec<String> {
        self.configs.iter().flat_map(|(_, config)| config.bootstrap_credentials()).collect()
    }
}

/// The terminal prompt, where there is a terminal.
pub fn prompt() -> Option<Arc<dyn PassphrasePrompt>> {
    TerminalPrompt::if_available().map(|p| Arc::new(p) as Arc<dyn PassphrasePrompt>)
}
