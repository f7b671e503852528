//! Plaintext dotenv files: `.env`, `.env.local`, `prod.env`, `.flaskenv` and
//! the like, which should not define a name the profile holds as a secret.
//! Templates (`.env.example`, `.env.sample`, `.env.template`, `.env.dist`)
//! and encrypted files (`*.age`) are not plaintext dotenv files.

use std::path::Path;

/// Suffixes of dotenv files that are meant to be committed without values.
const TEMPLATE_SUFFIXES: [&str; 4] = [".example", ".sample", ".template", ".dist"];

/// Whether `path` names a plaintext dotenv file.
pub fn is_plaintext_dotenv(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let dotenv = name == ".env" || name == ".flaskenv" || name.starts_with(".env.") || name.ends_with(".env");
    dotenv && !name.ends_with(".age") && !TEMPLATE_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// The lines (from 1) of `text` that give one of `names` a non-empty value,
/// with the name: `NAME=value` or `export NAME=value`.
pub fn definitions<'a>(text: &[u8], names: &[&'a str]) -> Vec<(usize, &'a str)> {
    let mut found = Vec::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(line) else { continue };
        let line = line.trim();
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        if matches!(value, "" | "\"\"" | "''") || value.starts_with('#') {
            continue;
        }
        if let Some(name) = names.iter().find(|n| **n == name.trim()) {
            found.push((index + 1, *name));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_plaintext_dotenv_files() {
        for yes in [".env", ".env.local", ".env.production", "prod.env", ".flaskenv", "config/.env"] {
            assert!(is_plaintext_dotenv(Path::new(yes)), "{yes}");
        }
        for no in ["secrets.env.age", ".env.example", ".env.sample", ".env.template", ".env.dist", "env.py", "app.py"] {
            assert!(!is_plaintext_dotenv(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn only_non_empty_definitions_of_known_names() {
        let text = b"# comment\nFLASK_SECRET_KEY=abc\nexport  FLASK_API_TOKEN = \"x\"\nFLASK_DATABASE_URL=\nOTHER=1\nFLASK_MAIL=''\nFLASK_X= # later\n";
        let names = ["FLASK_SECRET_KEY", "FLASK_API_TOKEN", "FLASK_DATABASE_URL", "FLASK_MAIL", "FLASK_X"];
        assert_eq!(definitions(text, &names), [(2, "FLASK_SECRET_KEY"), (3, "FLASK_API_TOKEN")]);
    }
}
