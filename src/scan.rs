//! Searching text for secret values: the values of a resolved profile and
//! their encoded forms, compiled into one automaton, reported by variable
//! name and line, never by value. PEM boundary lines of multi-line values
//! (`-----BEGIN PRIVATE KEY-----`) are public and not searched for. [`tree`] walks files, [`history`] reads
//! `git log -p`, and [`dotenv_files`] spots plaintext dotenv files.

pub mod dotenv_files;
pub mod history;
pub mod tree;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Input, MatchKind};

use crate::mask::{value_forms, Encoding};

/// Values shorter than this many bytes are not searched for: short values
/// (ports, user names, `true`) turn up everywhere.
pub const MIN_SEARCHED_LEN: usize = 8;

/// The secrets to look for. The pattern bytes live only inside the
/// automaton; there is no `Debug`.
pub struct Finder {
    /// `None` when no value is long enough to search for.
    nfa: Option<NFA>,
    /// For each pattern of the automaton: the secret's index and the form.
    patterns: Vec<(usize, Encoding)>,
    /// The variable names, by secret index.
    names: Vec<String>,
}

/// A secret found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The line number, from 1.
    pub line: usize,
    /// The variable name.
    pub name: String,
    /// The form found (the longest, when several are on the line).
    pub encoding: Encoding,
}

impl Finder {
    /// Compiles `secrets` (name, value) and their forms; values shorter than
    /// [`MIN_SEARCHED_LEN`] are left out (see [`Finder::searched`]).
    ///
    /// # Panics
    ///
    /// Panics if the automaton exceeds aho-corasick's size limits (billions
    /// of states), which secret values cannot realistically reach.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Finder {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        let mut forms = Vec::new();
        for (index, (name, value)) in secrets.into_iter().enumerate() {
            names.push(name.to_owned());
            if value.len() < MIN_SEARCHED_LEN {
                continue;
            }
            for form in value_forms(value, MIN_SEARCHED_LEN) {
                if form.encoding == Encoding::Line && is_pem_boundary(&form.text) {
                    continue;
                }
                patterns.push((index, form.encoding));
                forms.push(form.text);
            }
        }
        let nfa = (!forms.is_empty()).then(|| {
            NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(forms.iter().map(|f| f.as_bytes()))
                .expect("secret values exceed the automaton size limits")
        });
        Finder { nfa, patterns, names }
    }

    /// The names of the secrets searched for.
    pub fn searched(&self) -> Vec<&str> {
        let mut indexes: Vec<usize> = self.patterns.iter().map(|(index, _)| *index).collect();
        indexes.dedup();
        indexes.into_iter().map(|index| self.names[index].as_str()).collect()
    }

    /// The names of the secrets too short to search for.
    pub fn too_short(&self) -> Vec<&str> {
        let searched = self.searched();
        self.names.iter().map(String::as_str).filter(|name| !searched.contains(name)).collect()
    }

    /// Every secret in `text`: one hit per line and variable, in line order,
    /// naming the longest form found there (the most telling one); a match
    /// that spans lines counts on the line where it starts.
    pub fn find(&self, text: &[u8]) -> Vec<Hit> {
        let Some(nfa) = &self.nfa else { return Vec::new() };
        let mut matches: Vec<(usize, usize, usize, Encoding)> = nfa
            .try_find_overlapping_iter(Input::new(text))
            .expect("overlapping search is supported by a standard NFA")
            .map(|m| {
                let (secret, encoding) = self.patterns[m.pattern().as_usize()];
                (m.start(), secret, m.len(), encoding)
            })
            .collect();
        matches.sort_unstable();
        // (line, secret, match length, encoding)
        let mut hits: Vec<(usize, usize, usize, Encoding)> = Vec::new();
        let (mut line, mut counted_to) = (1, 0);
        for (start, secret, len, encoding) in matches {
            line += text[counted_to..start].iter().filter(|&&b| b == b'\n').count();
            counted_to = start;
            match hits.iter_mut().find(|hit| hit.0 == line && hit.1 == secret) {
                Some(hit) if len > hit.2 || (len == hit.2 && encoding < hit.3) => (hit.2, hit.3) = (len, encoding),
                Some(_) => {}
                None => hits.push((line, secret, len, encoding)),
            }
        }
        hits.into_iter()
            .map(|(line, secret, _, encoding)| Hit { line, name: self.names[secret].clone(), encoding })
            .collect()
    }

    /// `text` with every occurrence of a secret (in any form searched)
    /// replaced by `*****`; overlapping occurrences are masked as one.
    pub fn masked(&self, text: &str) -> String {
        let Some(nfa) = &self.nfa else { return text.to_owned() };
        let mut spans: Vec<(usize, usize)> = nfa
            .try_find_overlapping_iter(Input::new(text))
            .expect("overlapping search is supported by a standard NFA")
            .map(|m| (m.start(), m.end()))
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let (mut out, mut done) = (String::with_capacity(text.len()), 0);
        for (start, end) in merged {
            out.push_str(&String::from_utf8_lossy(&text.as_bytes()[done..start]));
            out.push_str("*****");
            done = end;
        }
        out.push_str(&String::from_utf8_lossy(&text.as_bytes()[done..]));
        out
    }
}

/// A PEM boundary line (`-----BEGIN …-----`, `-----END …-----`): the same in
/// every key of its kind, so not worth searching for.
fn is_pem_boundary(line: &str) -> bool {
    let line = line.trim();
    line.ends_with("-----") && (line.starts_with("-----BEGIN ") || line.starts_with("-----END "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder() -> Finder {
        let key = "-----BEGIN FAKE KEY-----\nfake-line-one\nfake-line-two\n-----END FAKE KEY-----";
        Finder::new([("API_TOKEN", "fake-token-1234"), ("PORT", "8080"), ("TLS_KEY", key)])
    }

    #[test]
    fn finds_values_and_their_forms_by_line() {
        let text = b"first\nkey = \"fake-token-1234\"\n\nb64: ZmFrZS10b2tlbi0xMjM0\nport 8080\nfake-line-two\n-----END FAKE KEY-----\n";
        let hits = finder().find(text);
        let found: Vec<(usize, &str, Encoding)> = hits.iter().map(|h| (h.line, h.name.as_str(), h.encoding)).collect();
        assert_eq!(
            found,
            [(2, "API_TOKEN", Encoding::Plain), (4, "API_TOKEN", Encoding::Base64), (6, "TLS_KEY", Encoding::Line)]
        );
    }

    #[test]
    fn one_hit_per_line_and_variable_with_the_longest_form() {
        // The whole multi-line value matches on line 1, and so do its lines.
        let text = b"x -----BEGIN FAKE KEY-----\nfake-line-one\nfake-line-two\n-----END FAKE KEY-----\n\nfake-line-two fake-line-one\n";
        let hits = finder().find(text);
        let found: Vec<(usize, Encoding)> = hits.iter().map(|h| (h.line, h.encoding)).collect();
        assert_eq!(found, [(1, Encoding::Plain), (2, Encoding::Line), (3, Encoding::Line), (6, Encoding::Line)]);
    }

    #[test]
    fn masked_hides_every_form_and_overlaps_as_one() {
        let finder = Finder::new([("A", "fake-secret-alpha"), ("B", "alpha-secret-bravo")]);
        assert_eq!(finder.masked("x/fake-secret-alpha-secret-bravo/y"), "x/*****/y");
        assert_eq!(finder.masked("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_reported_as_not_searched() {
        let finder = finder();
        assert_eq!(finder.searched(), ["API_TOKEN", "TLS_KEY"]);
        assert_eq!(finder.too_short(), ["PORT"]);
        assert!(Finder::new([("A", "short")]).find(b"short short").is_empty());
    }
}
