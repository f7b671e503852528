//! The forms in which a secret value may show up in output besides itself:
//! each line of a multi-line value, and, for values of at least
//! [`MIN_ENCODED_LEN`] bytes, the value base64-encoded (standard and URL-safe
//! alphabets, padded and not), percent-encoded (as Python's `quote` with
//! `safe=""` and with its default `safe="/"`, as `quote_plus`, and as
//! JavaScript's `encodeURIComponent`) and
//! JSON-escaped (as `serde_json` and as Python's `json.dumps` write it).
//! Every form is written by its crate straight into a zeroizing buffer sized
//! for it up front, so no growth leaves a copy behind.

use std::io::{self, Write};

use base64::engine::general_purpose::{GeneralPurpose, STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::engine::{Config, Engine};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
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
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        add(Encoding::Base64, base64(value.as_bytes(), engine));
    }
    add(Encoding::UrlEncoded, percent_encoded(value, UNRESERVED, false));
    add(Encoding::UrlEncoded, percent_encoded(value, PATH, false));
    add(Encoding::UrlEncoded, percent_encoded(value, UNRESERVED, true));
    add(Encoding::UrlEncoded, percent_encoded(value, URI_COMPONENT, false));
    add(Encoding::JsonEscaped, json_escaped(value, false));
    add(Encoding::JsonEscaped, json_escaped(value, true));
    forms
}

/// `bytes` in base64, encoded into a buffer of exactly its length.
fn base64(bytes: &[u8], engine: &GeneralPurpose) -> Zeroizing<String> {
    let len = base64::encoded_len(bytes.len(), engine.config().encode_padding()).unwrap_or(0);
    let mut out = Zeroizing::new(vec![0; len]);
    match engine.encode_slice(bytes, &mut out) {
        Ok(_) => into_text(out),
        Err(_) => Zeroizing::default(),
    }
}

/// Bytes that Python's `quote(safe="")` and `quote_plus` encode: all but
/// letters, digits and `-._~` (RFC 3986's unreserved characters).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Bytes that Python's `quote` encodes (its default `safe="/"`).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Bytes that JavaScript's `encodeURIComponent` encodes: it also leaves
/// `!*'()` as they are.
const URI_COMPONENT: &AsciiSet = &UNRESERVED.remove(b'!').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

/// `value` with the bytes in `set` percent-encoded; with `plus`, a space as
/// `+` (HTML forms, `quote_plus`). Three bytes of room per byte: enough.
fn percent_encoded(value: &str, set: &'static AsciiSet, plus: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
    for piece in percent_encoding::utf8_percent_encode(value, set) {
        out.push_str(if plus && piece == "%20" { "+" } else { piece });
    }
    out
}

/// The value inside a JSON string, without the quotes, as `serde_json`
/// escapes it; with `ascii`, every character outside printable ASCII also as
/// `\uXXXX` (surrogate pairs beyond the BMP), as Python's `json.dumps`
/// writes by default. Six bytes of room per byte: enough for `\u001f`, and
/// for a four-byte character's two escapes.
fn json_escaped(value: &str, ascii: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 6));
    let written = serde::Serializer::serialize_str(
        &mut serde_json::Serializer::with_formatter(&mut *out, JsonInside { ascii }),
        value,
    );
    match written {
        Ok(()) => into_text(out),
        Err(_) => Zeroizing::default(),
    }
}

/// `serde_json`'s string escaping without the quotes; with `ascii`, as
/// Python's `json.dumps` with `ensure_ascii`.
struct JsonInside {
    ascii: bool,
}

impl serde_json::ser::Formatter for JsonInside {
    fn begin_string<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_string<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        if !self.ascii {
            return writer.write_all(fragment.as_bytes());
        }
        for c in fragment.chars() {
            if c.is_ascii() && c != '\u{7f}' {
                writer.write_all(c.encode_utf8(&mut [0; 4]).as_bytes())?;
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// The UTF-8 `bytes` as a string, moved, not copied (text that is not UTF-8,
/// which the encoders never write, is wiped and comes back empty).
fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> Zeroizing<String> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Zeroizing::new(text),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Zeroizing::default()
        }
    }
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

    #[test]
    fn the_javascript_uri_component_form_is_masked_too() {
        // Expected value from Node.js: encodeURIComponent(value).
        let all = forms("fake pass!*'()x/é");
        assert!(all.iter().any(|f| f == "fake%20pass!*'()x%2F%C3%A9"), "missing the encodeURIComponent form");
    }

    #[test]
    fn json_forms_match_serde_json_and_python() {
        let value = "fake\u{7f}\u{1f}\u{0}\u{8}\u{c}\t\r\n\\\"/é😀";
        let all = forms(value);
        let serde = serde_json::to_string(value).unwrap();
        // Python: json.dumps(value)[1:-1] and json.dumps(value, ensure_ascii=False)[1:-1].
        for expected in [
            &serde[1..serde.len() - 1],
            r#"fake\u007f\u001f\u0000\b\f\t\r\n\\\"/\u00e9\ud83d\ude00"#,
            "fake\u{7f}\\u001f\\u0000\\b\\f\\t\\r\\n\\\\\\\"/é😀",
        ] {
            assert!(all.iter().any(|f| f == expected), "missing form {expected:?}");
        }
    }

    #[test]
    fn encoders_never_grow_their_buffers() {
        // A grown buffer would leave its first copy of the form unwiped.
        for value in ["fake pässwörd/+?é€😀\"x", "\u{0}\u{1f}\u{7f}fake\u{1}\u{2}", "😀😀😀\u{10ffff}"] {
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                let text = base64(value.as_bytes(), engine);
                assert_eq!(text.capacity(), text.len());
            }
            for (set, plus) in [(UNRESERVED, false), (PATH, false), (UNRESERVED, true)] {
                assert_eq!(percent_encoded(value, set, plus).capacity(), value.len() * 3);
            }
            for ascii in [false, true] {
                assert_eq!(json_escaped(value, ascii).capacity(), value.len() * 6);
            }
        }
    }
}
