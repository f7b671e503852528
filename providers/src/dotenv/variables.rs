//! `${NAME}` and `${NAME:-default}` in unquoted and double-quoted values, as
//! python-dotenv's `variables.py` and `resolve_variables` expand them.

use std::collections::HashMap;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::{push_wiped, DotenvEntry, MAX_EXPANDED};

/// One match of variables.py's `\$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\}`
/// at the start of `s`: the name, the default and the length of the match.
fn variable(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let body = s.strip_prefix("${")?;
    let name_len = body.find(['}', ':']).unwrap_or(body.len());
    let (name, after) = body.split_at(name_len);
    if after.starts_with('}') {
        return Some((name, None, 2 + name_len + 1));
    }
    let default = after.strip_prefix(":-")?;
    let end = default.find('}')?;
    Some((name, Some(&default[..end]), 2 + name_len + 2 + end + 1))
}

/// main.py's `resolve_variables` for one value: the latest earlier value in
/// the document, else `lookup`, else the default, else empty; `None` when it
/// would grow past [`MAX_EXPANDED`].
pub(super) fn expand(
    raw: &str,
    entries: &[DotenvEntry],
    latest: &HashMap<String, usize>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let push = |out: &mut Zeroizing<String>, piece: &str| {
        (out.len() + piece.len() <= MAX_EXPANDED).then(|| push_wiped(out, piece))
    };
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        push(&mut out, &rest[..start])?;
        let Some((name, default, len)) = variable(&rest[start..]) else {
            push(&mut out, "$")?;
            rest = &rest[start + 1..];
            continue;
        };
        if let Some(&index) = latest.get(name) {
            push(&mut out, entries[index].value.expose_secret())?;
        } else if let Some(found) = env_lookup(name, lookup) {
            push(&mut out, &found)?;
        } else {
            push(&mut out, default.unwrap_or(""))?;
        }
        rest = &rest[start + len..];
    }
    push(&mut out, rest)?;
    Some(out)
}

/// `lookup(name)`, for a name the environment can hold.
fn env_lookup(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<Zeroizing<String>> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    lookup(name).map(Zeroizing::new)
}
