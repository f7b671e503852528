//! The forms in which a secret value may show up in output besides itself:
//! each line of a multi-line value, and, for values of at least
//! [`MIN_ENCODED_LEN`] bytes, the value base64-encoded (standard and URL-safe
//! alphabets, padded and not), percent-encoded (as `encodeURIComponent`,
//! as Python's `quote` and as `quote_plus`) and JSON-escaped (as
//! `serde_json` and as Python's `json.dumps` write it). Every form is held in
//! a zeroizing string.

use zeroize::Zeroizing;

#[cfg(doc)]
use super::MIN_MASKED_LEN;

/// Values shorter than this many bytes get no encoded forms: the encoding of
/// a short value is short too, and would mask unrelated output.
pub const MIN_ENCODED_LEN: usize = 8;

/// How a form was derived from the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encoding {
    /// The value as it is.
    Plain,
    /// One line of a multi-line value.
    Line,
    /// Base64, standard or URL-safe alphabet, padded or not.
    Base64,
    /// Percent-encoded.
    UrlEncoded,
    /// Escaped for a JSON string.
    JsonEscaped,
}

impl Encoding {
    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Plain => "value",
            Encoding::Line => "one line of the value",
            Encoding::Base64 => "base64",
            Encoding::UrlEncoded => "URL-encoded",
            Encoding::JsonEscaped => "JSON-escaped",
        }
    }
}

/// One form of a value. No `Debug`: the text is secret.
pub struct Form {
    /// How it was derived.
    pub encoding: Encoding,
    /// The text to look for.
    pub text: Zeroizing<String>,
}

/// Every form of `value` worth masking, the value itself first, without
/// duplicates; forms shorter than `min_len` bytes (for output masking,
/// [`MIN_MASKED_LEN`]) are left out.
pub fn masked_forms(value: &str, min_len: usize) -> Vec<Zeroizing<String>> {
    value_forms(value, min_len).into_iter().map(|form| form.text).collect()
}

/// [`masked_forms`], each with the encoding it came from; a text that two
/// encodings share is listed once, under the first.
pub fn value_forms(value: &str, min_len: usize) -> Vec<Form> {
    let mut forms: Vec<Form> = Vec::new();
    let mut add = |encoding: Encoding, text: Zeroizing<String>| {
        if text.len() >= min_len.max(1) && !forms.iter().any(|f| f.text.as_str() == text.as_str()) {
            forms.push(Form { encoding, text });
        }
    };
    add(Encoding::Plain, Zeroizing::new(value.to_owned()));
    if value.contains(['\n', '\r']) {
        for line in value.split(['\n', '\r']) {
            add(Encoding::Line, Zeroizing::new(line.to_owned()));
        }
    }
    if value.len() < MIN_ENCODED_LEN {
        return forms;
    }
    for (alphabet, padded) in [(STANDARD, true), (STANDARD, false), (URL_SAFE, true), (URL_SAFE, false)] {
        add(Encoding::Base64, base64(value.as_bytes(), alphabet, padded));
    }
    add(Encoding::UrlEncoded, percent_encoded(value, b"", false));
    add(Encoding::UrlEncoded, percent_encoded(value, b"/", false));
    add(Encoding::UrlEncoded, percent_encoded(value, b"", true));
    add(Encoding::JsonEscaped, json_escaped(value, false));
    add(Encoding::JsonEscaped, json_escaped(value, true));
    forms
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], padded: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if padded {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encoding of every byte but RFC 3986's unreserved characters and
/// `safe`; with `plus`, a space becomes `+` (HTML forms, `quote_plus`).
fn percent_encoded(value: &str, safe: &[u8], plus: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

/// The value inside a JSON string, without the quotes; with `ascii`, every
/// non-ASCII character as `\uXXXX` (surrogate pairs beyond the BMP), as
/// Python's `json.dumps` writes by default.
fn json_escaped(value: &str, ascii: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 8));
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || (ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MIN_MASKED_LEN;

    fn forms(value: &str) -> Vec<String> {
        masked_forms(value, MIN_MASKED_LEN).iter().map(|f| f.as_str().to_owned()).collect()
    }

    #[test]
    fn short_values_get_no_encoded_forms_and_tiny_lines_are_skipped() {
        assert_eq!(forms("fake123"), ["fake123"]);
        assert_eq!(
            forms("fake-line-one\nab\nfake-line-three"),
            [
                "fake-line-one\nab\nfake-line-three",
                "fake-line-one",
                "fake-line-three",
                "ZmFrZS1saW5lLW9uZQphYgpmYWtlLWxpbmUtdGhyZWU=",
                "ZmFrZS1saW5lLW9uZQphYgpmYWtlLWxpbmUtdGhyZWU",
                "fake-line-one%0Aab%0Afake-line-three",
                "fake-line-one\\nab\\nfake-line-three",
            ]
        );
    }

    #[test]
    fn each_form_keeps_its_encoding() {
        let key = "-----BEGIN FAKE PRIVATE KEY-----\nZmFrZS1rZXktYm9keQ==\n-----END FAKE PRIVATE KEY-----";
        let all = value_forms(key, MIN_MASKED_LEN);
        let lines: Vec<&str> = all.iter().filter(|f| f.encoding == Encoding::Line).map(|f| f.text.as_str()).collect();
        assert_eq!(lines, key.lines().collect::<Vec<_>>());
        assert_eq!(all[0].encoding, Encoding::Plain);
        assert!(all.iter().any(|f| f.encoding == Encoding::Base64));
        assert!(all.iter().any(|f| f.encoding == Encoding::JsonEscaped && f.text.contains("\\n")));
    }

    #[test]
    fn encodings_match_the_usual_libraries() {
        // Expected values from Python: base64.b64encode / urlsafe_b64encode,
        // urllib.parse.quote(safe="") / quote / quote_plus, json.dumps.
        let all = forms("fake pässwörd/+?é€😀\"x");
        for expected in [
            "ZmFrZSBww6Rzc3fDtnJkLys/w6nigqzwn5iAIng=",
            "ZmFrZSBww6Rzc3fDtnJkLys_w6nigqzwn5iAIng=",
            "ZmFrZSBww6Rzc3fDtnJkLys_w6nigqzwn5iAIng",
            "fake%20p%C3%A4ssw%C3%B6rd%2F%2B%3F%C3%A9%E2%82%AC%F0%9F%98%80%22x",
            "fake%20p%C3%A4ssw%C3%B6rd/%2B%3F%C3%A9%E2%82%AC%F0%9F%98%80%22x",
            "fake+p%C3%A4ssw%C3%B6rd%2F%2B%3F%C3%A9%E2%82%AC%F0%9F%98%80%22x",
            "fake pässwörd/+?é€😀\\\"x",
            "fake p\\u00e4ssw\\u00f6rd/+?\\u00e9\\u20ac\\ud83d\\ude00\\\"x",
        ] {
            assert!(all.iter().any(|f| f == expected), "missing form {expected}");
        }
    }
}
