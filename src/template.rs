//! Composed values: an `env` value that mixes text and references, for apps
//! that take one URL made of several secrets:
//!
//! ```toml
//! DATABASE_URL = "postgresql://{{ vault://database/creds/app#username }}:{{ vault://database/creds/app#password | url }}@db:5432/app"
//! ```
//!
//! `{{ REF }}` is the referenced value; `{{ REF | url }}` is the value
//! percent-encoded (every byte but letters, digits and `-._~`), for a part
//! of a URL. Everything else is literal text; `{{` cannot appear as text.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

/// The bytes `| url` encodes: all but RFC 3986's unreserved characters.
const URL_ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A parsed composed value, its references not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<R> {
    /// As written (no value in it): what `check` and messages show.
    pub text: String,
    /// Text and references, in order.
    pub pieces: Vec<Piece<R>>,
}

/// One piece of a composed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<R> {
    /// Literal text.
    Text(String),
    /// A reference's value, percent-encoded with `url`.
    Value {
        /// The reference.
        reference: R,
        /// `| url`.
        url: bool,
    },
}

/// Whether a value is composed (holds `{{`).
pub fn is_composed(raw: &str) -> bool {
    raw.contains("{{")
}

/// Splits `raw` into text and `{{ REF [| url] }}` pieces; an error says what
/// is wrong and at which byte of `raw`.
pub fn parse(raw: &str) -> Result<Template<String>, (String, usize)> {
    let mut pieces = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find("{{") {
        let at = raw.len() - rest.len() + open;
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let inside = &rest[open + 2..];
        let Some(close) = inside.find("}}") else {
            return Err(("`{{` is not closed by `}}`".into(), at));
        };
        let (reference, filter) = match inside[..close].split_once('|') {
            Some((reference, filter)) => (reference.trim(), Some(filter.trim())),
            None => (inside[..close].trim(), None),
        };
        if reference.is_empty() {
            return Err(("`{{ }}` holds no reference".into(), at));
        }
        if reference.contains("{{") {
            return Err(("`{{` inside `{{ … }}`".into(), at));
        }
        let url = match filter {
            None => false,
            Some("url") => true,
            Some(other) => return Err((format!("unknown filter `{other}` (the only one is `url`)"), at)),
        };
        pieces.push(Piece::Value { reference: reference.to_owned(), url });
        rest = &inside[close + 2..];
    }
    if rest.contains("}}") {
        return Err(("`}}` without `{{`".into(), raw.len() - rest.len() + rest.find("}}").unwrap_or(0)));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(Template { text: raw.to_owned(), pieces })
}

impl<R> Template<R> {
    /// The same template with each reference turned into another type.
    pub fn map<S, E>(self, mut f: impl FnMut(R) -> Result<S, E>) -> Result<Template<S>, E> {
        let mut pieces = Vec::with_capacity(self.pieces.len());
        for piece in self.pieces {
            pieces.push(match piece {
                Piece::Text(text) => Piece::Text(text),
                Piece::Value { reference, url } => Piece::Value { reference: f(reference)?, url },
            });
        }
        Ok(Template { text: self.text, pieces })
    }

    /// The references, in order.
    pub fn references(&self) -> impl Iterator<Item = &R> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Value { reference, .. } => Some(reference),
            Piece::Text(_) => None,
        })
    }

    /// The composed value, with `value` giving each reference's value, in a
    /// buffer sized up front (so no growth leaves a copy behind).
    pub fn render<E>(&self, mut value: impl FnMut(&R) -> Result<String, E>) -> Result<Zeroizing<String>, E> {
        let mut parts: Vec<Zeroizing<String>> = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            parts.push(match piece {
                Piece::Text(text) => Zeroizing::new(text.clone()),
                Piece::Value { reference, url: false } => Zeroizing::new(value(reference)?),
                Piece::Value { reference, url: true } => {
                    let raw = Zeroizing::new(value(reference)?);
                    let mut encoded = Zeroizing::new(String::with_capacity(raw.len() * 3));
                    for chunk in utf8_percent_encode(&raw, URL_ENCODED) {
                        encoded.push_str(chunk);
                    }
                    encoded
                }
            });
        }
        let mut out = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
        for part in &parts {
            out.push_str(part);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_references_and_the_url_filter() {
        let template =
            parse("postgresql://{{ vault://db/creds/app#username }}:{{vault://db/creds/app#password|url}}@db/app")
                .unwrap();
        let refs: Vec<&String> = template.references().collect();
        assert_eq!(refs, ["vault://db/creds/app#username", "vault://db/creds/app#password"]);
        let value = template
            .render(|r| {
                Ok::<_, std::convert::Infallible>(if r.ends_with("username") {
                    "u".into()
                } else {
                    "p@ss:w/rd é".into()
                })
            })
            .unwrap();
        assert_eq!(&*value, "postgresql://u:p%40ss%3Aw%2Frd%20%C3%A9@db/app");
    }

    #[test]
    fn mistakes_are_named_with_their_position() {
        assert_eq!(parse("a{{ x").unwrap_err(), ("`{{` is not closed by `}}`".into(), 1));
        assert_eq!(parse("a{{ }}").unwrap_err().1, 1);
        assert!(parse("{{ x | base64 }}").unwrap_err().0.contains("unknown filter `base64`"));
        assert_eq!(parse("x}}").unwrap_err().1, 1);
        assert!(!is_composed("age://a.env.age#K"));
    }
}
