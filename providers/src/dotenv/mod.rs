//! Dotenv documents read exactly like python-dotenv 1.2 reads a `.env` file.
//!
//! The grammar follows python-dotenv's `parser.py` regex by regex, and the
//! `${VAR}` / `${VAR:-default}` expansion follows `main.py`/`variables.py`:
//!
//! - lines are split on `\n`, `\r\n` and a lone `\r` (python reads files with
//!   universal newlines, so `\r\n` inside a quoted value becomes `\n`);
//! - whitespace is Python's `\s` (Unicode whitespace plus `\x1c`..`\x1f`);
//! - `export NAME=value` drops the `export` prefix; `'quoted name'=v` keeps
//!   what is between the quotes; any other name runs up to `=`, `#` or
//!   whitespace, so names need not be shell names;
//! - unquoted values run to the end of the line, lose a `#` comment that is
//!   preceded by whitespace, then trailing whitespace;
//! - `'...'` values may span lines and only unescape `\\` and `\'`;
//! - `"..."` values may span lines and unescape `\\ \' \" \a \b \f \n \r \t \v`;
//! - every value, single-quoted ones included (python-dotenv does not look at
//!   the quotes), then has `${NAME}` and `${NAME:-default}` replaced by the
//!   latest earlier value of `NAME` in the document, else the environment,
//!   else the default (used only when `NAME` is unset, not when empty).
//!
//! Every buffer that holds value bytes is a [`Zeroizing`] buffer, and no error
//! or `Debug` output ever contains a value or a line of the document.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use secrecy::SecretString;
use zeroize::Zeroizing;

#[cfg(test)]
mod tests;
mod variables;

use variables::expand;

/// One `NAME=value` assignment of a dotenv document, in file order.
pub struct DotenvEntry {
    /// The name exactly as python-dotenv reads it; not checked to be a valid
    /// environment variable name.
    pub name: String,
    /// The value after unquoting, unescaping and `${VAR}` expansion.
    pub value: SecretString,
    /// 1-based line where the entry starts.
    pub line: usize,
    /// Where the statement is in the text that was parsed, in bytes: from
    /// its first character (after any indentation) to the end of its last
    /// line, line break included. What `set` and `unset` replace.
    pub span: Range<usize>,
}

impl fmt::Debug for DotenvEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotenvEntry")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .field("line", &self.line)
            .field("span", &self.span)
            .finish()
    }
}

/// Why a dotenv document could not be read; never carries any text of the document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DotenvError {
    /// python-dotenv would have skipped this line silently (with a logged warning).
    #[error("line {line}: cannot be parsed as NAME=value")]
    Syntax {
        /// 1-based line where the unparseable statement starts.
        line: usize,
    },
    /// `NAME` with no `=`: python-dotenv yields None and load_dotenv drops it; we refuse.
    /// The text is not repeated: it may be a line of a secret that spilled out
    /// of an unquoted multi-line value.
    #[error("line {line}: text without `=` (write NAME= for an empty value; quote a value that spans lines)")]
    MissingEquals {
        /// 1-based line of the statement.
        line: usize,
    },
    /// `${VAR}` expansion would make the value longer than [`MAX_EXPANDED`].
    #[error("line {line}: the value is longer than 1 MiB (after ${{VAR}} expansion)")]
    TooLong {
        /// 1-based line of the statement.
        line: usize,
    },
    /// The value holds a NUL byte (cannot be an environment variable). The
    /// name is shown with control characters escaped, so a crafted name
    /// cannot send terminal escape sequences.
    #[error("line {line}: the value of `{}` contains a NUL byte", printable(.name))]
    NulByte {
        /// 1-based line where the entry starts.
        line: usize,
        /// The name whose value holds the NUL byte.
        name: String,
    },
}

/// `name` with control characters (NUL, ESC, line breaks…) escaped as `\u{1b}`.
fn printable(name: &str) -> String {
    name.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Parse `text` like python-dotenv's `dotenv_values(path, interpolate=True)`
/// reads the file at `path` (i.e. `dotenv_values(stream=...)` over a stream
/// opened in text mode, with universal newlines).
///
/// `${VAR}` / `${VAR:-default}` expand from earlier entries of the same document first,
/// then from `lookup` (the process environment in production), exactly as python-dotenv
/// does with override=True. `lookup` is never asked for a name that cannot be an
/// environment variable (empty, or containing `=` or NUL); such names count as unset.
///
/// Every assignment is returned in document order, duplicates included (expansion
/// sees the latest value, like python-dotenv). The first statement python-dotenv
/// would skip or drop, or whose value holds a NUL byte, is an error.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<DotenvEntry>, DotenvError> {
    let (text, collapsed) = universal_newlines(text);
    // A position in `text` as a position in what the caller gave.
    let original = |pos: usize| pos + collapsed.partition_point(|&at| at < pos);
    let mut reader = Reader { text: &text, pos: 0, line: 1 };
    let mut entries: Vec<DotenvEntry> = Vec::new();
    let mut latest: HashMap<String, usize> = HashMap::new();
    loop {
        reader.skip_while(is_space);
        if reader.rest().is_empty() {
            return Ok(entries);
        }
        let line = reader.line;
        let start = reader.pos;
        let Ok(statement) = statement(&mut reader) else {
            return Err(DotenvError::Syntax { line });
        };
        let Some((name, raw)) = statement else {
            continue; // a comment
        };
        let Some(raw) = raw else {
            return Err(DotenvError::MissingEquals { line });
        };
        let value = expand(&raw, &entries, &latest, lookup).ok_or(DotenvError::TooLong { line })?;
        if value.contains('\0') {
            return Err(DotenvError::NulByte { line, name });
        }
        latest.insert(name.clone(), entries.len());
        entries.push(DotenvEntry {
            name,
            // `Box<str>::from(&str)` allocates exactly once with the final size,
            // so no reallocation leaves an unwiped copy behind.
            value: SecretString::from(Box::<str>::from(value.as_str())),
            line,
            span: original(start)..original(reader.pos),
        });
    }
}

/// The most a value may expand to: `${A}${A}` chains double with each line,
/// and 40 lines would otherwise ask for a terabyte.
pub const MAX_EXPANDED: usize = 1 << 20;

/// A statement python-dotenv could not parse (its `Binding.error`).
struct Unparseable;

/// A statement: `None` for a comment, else the name and the raw value
/// (`None` when there is no `=`).
type Statement = Option<(String, Option<Zeroizing<String>>)>;

/// Python's `\s` / `str.isspace()`: Unicode `White_Space` plus the
/// information separators `\x1c`..`\x1f`.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `[^\S\r\n]`: whitespace that does not end a line.
fn is_inline_space(c: char) -> bool {
    is_space(c) && c != '\n' && c != '\r'
}

fn is_line_end(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Python's universal newlines: `\r\n` and a lone `\r` read as `\n`. Also
/// where each `\r\n` became one byte (its position in the result).
fn universal_newlines(text: &str) -> (Zeroizing<String>, Vec<usize>) {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut collapsed = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.next_if_eq(&'\n').is_some() {
                collapsed.push(out.len());
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    (out, collapsed)
}

/// python-dotenv's `Reader`: a position in the text and the line it is on.
struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Consume `len` bytes, counting the line breaks in them.
    fn advance(&mut self, len: usize) {
        let consumed = &self.text[self.pos..self.pos + len];
        self.line += consumed.bytes().filter(|&b| b == b'\n').count();
        self.pos += len;
    }

    /// Consume and return the longest prefix whose characters all match `keep`.
    fn skip_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.advance(len);
        &rest[..len]
    }
}

/// python-dotenv's `parse_binding`, after the leading `\s*`.
fn statement(r: &mut Reader<'_>) -> Result<Statement, Unparseable> {
    // _export: (?:export[^\S\r\n]+)?
    if let Some(after) = r.rest().strip_prefix("export") {
        let spaces = after.find(|c: char| !is_inline_space(c)).unwrap_or(after.len());
        if spaces > 0 {
            r.advance("export".len() + spaces);
        }
    }
    // parse_key
    let name = match r.peek() {
        Some('#') => None,
        Some('\'') => {
            // _single_quoted_key: '([^']+)'
            let rest = r.rest();
            let close = rest[1..].find('\'').ok_or(Unparseable)? + 1;
            if close == 1 {
                return Err(Unparseable);
            }
            r.advance(close + 1);
            Some(rest[1..close].to_owned())
        }
        _ => {
            // _unquoted_key: ([^=\#\s]+)
            let name = r.skip_while(|c| c != '=' && c != '#' && !is_space(c));
            if name.is_empty() {
                return Err(Unparseable);
            }
            Some(name.to_owned())
        }
    };
    r.skip_while(is_inline_space);
    let value = if r.peek() == Some('=') {
        // _equal_sign: (=[^\S\r\n]*)
        r.advance(1);
        r.skip_while(is_inline_space);
        Some(value(r)?)
    } else {
        None
    };
    // _comment: (?:[^\S\r\n]*#[^\r\n]*)?
    r.skip_while(is_inline_space);
    if r.peek() == Some('#') {
        r.skip_while(|c| !is_line_end(c));
    }
    // _end_of_line: [^\S\r\n]*(?:\r\n|\n|\r|$)
    match r.peek() {
        None => {}
        Some('\n') => r.advance(1),
        Some(_) => return Err(Unparseable),
    }
    Ok(name.map(|name| (name, value)))
}

/// python-dotenv's `parse_value`, after `=` and the spaces that follow it.
fn value(r: &mut Reader<'_>) -> Result<Zeroizing<String>, Unparseable> {
    let rest = r.rest();
    match r.peek() {
        Some(quote @ ('\'' | '"')) => {
            let close = closing_quote(rest, quote as u8).ok_or(Unparseable)?;
            let value = unescape(&rest[1..close], quote == '"');
            r.advance(close + 1);
            Ok(value)
        }
        None | Some('\n' | '\r') => Ok(Zeroizing::new(String::new())),
        Some(_) => {
            // _unquoted_value: ([^\r\n]*), then re.sub(r"\s+#.*", "", part).rstrip()
            let part = r.skip_while(|c| !is_line_end(c));
            let mut cut = part.len();
            let mut run_start = None;
            for (i, c) in part.char_indices() {
                if is_space(c) {
                    run_start = run_start.or(Some(i));
                } else if let (Some(start), '#') = (run_start, c) {
                    cut = start;
                    break;
                } else {
                    run_start = None;
                }
            }
            let kept = part[..cut].trim_end_matches(is_space);
            let mut value = Zeroizing::new(String::with_capacity(kept.len()));
            value.push_str(kept);
            Ok(value)
        }
    }
}

/// Where `'((?:\\'|[^'])*)'` (or the `"` twin) ends when matched at the start of
/// `rest`, with Python's backtracking: the first quote not taken as part of an
/// escaped `\'`, or else the quote of the last `\'` in the rest of the document.
fn closing_quote(rest: &str, quote: u8) -> Option<usize> {
    let bytes = rest.as_bytes();
    let mut fallback = None;
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&quote) {
            fallback = Some(i + 1);
            i += 2;
        } else if bytes[i] == quote {
            return Some(i);
        } else {
            i += 1;
        }
    }
    fallback
}

/// python-dotenv's `decode_escapes` with `_double_quote_escapes`
/// (`\\[\\'"abfnrtv]`) or `_single_quote_escapes` (`\\[\\']`).
fn unescape(raw: &str, double: bool) -> Zeroizing<String> {
    // Every escape shrinks, so this capacity is never exceeded.
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let decoded = match (c, chars.peek()) {
            ('\\', Some(&e @ ('\\' | '\''))) => Some(e),
            ('\\', Some(&e)) if double => match e {
                '"' => Some('"'),
                'a' => Some('\x07'),
                'b' => Some('\x08'),
                'f' => Some('\x0c'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\x0b'),
                _ => None,
            },
            _ => None,
        };
        match decoded {
            Some(d) => {
                chars.next();
                push_wiped(&mut out, d.encode_utf8(&mut [0; 4]));
            }
            None => push_wiped(&mut out, c.encode_utf8(&mut [0; 4])),
        }
    }
    out
}

/// Append to a wiped buffer; when it must grow, the old allocation is wiped
/// too (a plain `push_str` would free it without wiping).
pub(crate) fn push_wiped(buf: &mut Zeroizing<String>, s: &str) {
    if buf.capacity() - buf.len() < s.len() {
        let capacity = (buf.len() + s.len()).max(buf.capacity() * 2);
        let mut bigger = Zeroizing::new(String::with_capacity(capacity));
        bigger.push_str(buf);
        std::mem::swap(buf, &mut bigger);
    }
    buf.push_str(s);
}
