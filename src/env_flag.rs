//! Yes/no settings from environment variables: `CI` and `ENVCLOAK_TRUST`.

/// Whether the variable `CI` is set to a true value.
pub fn in_ci() -> bool {
    is_true("CI")
}

/// Whether the variable `name` is set to a true value (`1`, `true`, `yes`,
/// `on`, in any case).
pub fn is_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}
