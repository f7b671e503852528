use secrecy::ExposeSecret;

use super::{parse, DotenvEntry, DotenvError};

/// The fake process environment the tests expand from.
fn env(name: &str) -> Option<String> {
    match name {
        "FROM_ENV" => Some("outer".to_owned()),
        "EMPTY_ENV" => Some(String::new()),
        "SHADOWED" => Some("from-env".to_owned()),
        _ => None,
    }
}

fn entries(text: &str) -> Vec<DotenvEntry> {
    match parse(text, &env) {
        Ok(entries) => entries,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Every entry, in order, with its name and value; failure messages name the
/// entry but never show a value.
fn assert_values(text: &str, expected: &[(&str, &str)]) {
    let got = entries(text);
    let names: Vec<&str> = got.iter().map(|e| e.name.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "names differ");
    for (entry, (name, value)) in got.iter().zip(expected) {
        assert!(entry.value.expose_secret() == *value, "value of {name} differs");
    }
}

fn assert_value(text: &str, value: &str) {
    assert_values(text, &[("A", value)]);
}

fn error(text: &str) -> DotenvError {
    match parse(text, &env) {
        Ok(entries) => panic!("expected an error, got {} entries", entries.len()),
        Err(e) => e,
    }
}

fn syntax(line: usize) -> DotenvError {
    DotenvError::Syntax { line }
}

fn missing(line: usize) -> DotenvError {
    DotenvError::MissingEquals { line }
}

#[test]
fn empty_documents() {
    assert_values("", &[]);
    assert_values("\n\n  \n\t\r\n", &[]);
    assert_values("# only a comment\n   # indented comment", &[]);
}

#[test]
fn plain_assignment_and_spaces_around_equals() {
    assert_values("A=1\nB = 2\nC\t=\t3  \n  D=4", &[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")]);
}

#[test]
fn equals_in_value() {
    assert_value("A=b=c==", "b=c==");
    assert_value("A==", "=");
}

#[test]
fn empty_values() {
    assert_values("A=\nB=   \nC=\"\"\nD=''\nE=", &[("A", ""), ("B", ""), ("C", ""), ("D", ""), ("E", "")]);
}

#[test]
fn unquoted_comments_need_preceding_whitespace() {
    assert_value("A=abc # comment", "abc");
    assert_value("A=abc#not-a-comment", "abc#not-a-comment");
    assert_value("A=abc\t#c", "abc");
    assert_value("A=a#b #c", "a#b");
    assert_value("A=# right after the equals", "# right after the equals");
    assert_value("A=   # spaces after equals are eaten", "# spaces after equals are eaten");
}

#[test]
fn unquoted_values_keep_inner_space_and_lose_trailing_space() {
    assert_value("A=a  b \t ", "a  b");
    assert_value("A=a b\u{a0}\u{3000}", "a b");
    assert_value("A=a\x1cb\x1d", "a\x1cb");
}

#[test]
fn unquoted_values_keep_quotes_and_backslashes() {
    assert_value("A=it's", "it's");
    assert_value("A=a\"b\"", "a\"b\"");
    assert_value("A=a\\nb", "a\\nb");
}

#[test]
fn single_quotes_are_literal_except_two_escapes() {
    assert_value("A='a b # c'", "a b # c");
    assert_value("A='a\\nb'", "a\\nb");
    assert_value("A='it\\'s'", "it's");
    assert_value("A='back\\\\slash'", "back\\slash");
    assert_value("A='x\\\"y'", "x\\\"y");
}

#[test]
fn double_quote_escapes() {
    assert_value("A=\"a\\nb\\tc\\rd\"", "a\nb\tc\rd");
    assert_value("A=\"\\a\\b\\f\\v\"", "\x07\x08\x0c\x0b");
    assert_value("A=\"q\\\"q\\'q\\\\q\"", "q\"q'q\\q");
    assert_value("A=\"\\x41\\u00e9\\z\\$\"", "\\x41\\u00e9\\z\\$");
    assert_value("A=\"\\\\n\"", "\\n");
}

#[test]
fn quoted_values_span_lines() {
    let text = "A=\"line1\nline2\"\nB='x\n\ny'\nC=3";
    let got = entries(text);
    let lines: Vec<usize> = got.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3, 6]);
    assert_values(text, &[("A", "line1\nline2"), ("B", "x\n\ny"), ("C", "3")]);
}

#[test]
fn trailing_text_after_quotes() {
    assert_value("A=\"x\"  # comment", "x");
    assert_value("A='x'#comment", "x");
    assert_value("A=\"x\"   ", "x");
    assert_eq!(error("A=\"x\"y"), syntax(1));
    assert_eq!(error("B=1\nA='x' y"), syntax(2));
}

#[test]
fn unterminated_quotes() {
    assert_eq!(error("A=1\nB=\"abc\nC=2"), syntax(2));
    assert_eq!(error("A='abc"), syntax(1));
}

#[test]
fn escaped_closing_quote_backtracks_to_the_last_escaped_quote() {
    // No plain `"` follows, so Python's regex backtracks and closes on the
    // quote of the last `\"`, leaving a trailing backslash.
    assert_values("A=\"foo\\\"\nB=1", &[("A", "foo\\"), ("B", "1")]);
    assert_values("A='a\\'b\\'\nB=1", &[("A", "a'b\\"), ("B", "1")]);
    // A plain quote further down closes the value instead.
    assert_eq!(error("A=\"a\\\"b\nC=\"x\\\"y\""), syntax(1));
}

#[test]
fn crlf_and_lone_cr() {
    let text = "A=1\r\nB=\"x\r\ny\"\r\nC='p\rq'\rD=4 \r\n";
    assert_values(text, &[("A", "1"), ("B", "x\ny"), ("C", "p\nq"), ("D", "4")]);
    let lines: Vec<usize> = entries(text).iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 2, 4, 6]);
    assert_eq!(error("A=1\r\n\r\nB"), missing(3));
}

#[test]
fn export_prefix() {
    assert_values("export A=1\nexport\tB=2\nexport  'C'=3", &[("A", "1"), ("B", "2"), ("C", "3")]);
    assert_value("export A= x ", "x");
    assert_values("export=1\nexported=2", &[("export", "1"), ("exported", "2")]);
    assert_eq!(error("export =1"), syntax(1));
    assert_eq!(error("export"), missing(1));
    assert_eq!(error("export A"), missing(1));
}

#[test]
fn names_are_kept_as_python_reads_them() {
    assert_values(
        "a.b=1\n'x y'=2\n\"q\"=3\n\u{e9}t\u{e9}=4\na'b=5",
        &[("a.b", "1"), ("x y", "2"), ("\"q\"", "3"), ("\u{e9}t\u{e9}", "4"), ("a'b", "5")],
    );
    assert_values("'multi\nline'=1\nB=2", &[("multi\nline", "1"), ("B", "2")]);
    assert_eq!(entries("'multi\nline'=1\nB=2")[1].line, 3);
    assert_values("\u{feff}A=1", &[("\u{feff}A", "1")]);
}

#[test]
fn bad_names() {
    assert_eq!(error("=1"), syntax(1));
    assert_eq!(error("A=1\n  = 2"), syntax(2));
    assert_eq!(error("''=1"), syntax(1));
    assert_eq!(error("'unterminated=1"), syntax(1));
    assert_eq!(error("A B=1"), syntax(1));
}

#[test]
fn names_without_equals() {
    assert_eq!(error("A=1\nB\nC=3"), missing(2));
    assert_eq!(error("B   # comment"), missing(1));
    assert_eq!(error("a#b=1"), missing(1));
}

#[test]
fn first_problem_wins() {
    assert_eq!(error("B\n=1"), missing(1));
    assert_eq!(error("=1\nB"), syntax(1));
}

#[test]
fn error_lines_skip_leading_blank_lines() {
    assert_eq!(error("A=1\n\n\n   B C"), syntax(4));
}

#[test]
fn nul_bytes_are_refused() {
    assert_eq!(error("A=1\nB=x\0y"), DotenvError::NulByte { line: 2, name: "B".to_owned() });
    // A NUL only inside an unused default does not reach the value.
    assert_value("A=${FROM_ENV:-\0}", "outer");
    // The name is shown with its control characters escaped.
    let message = error("'\x1b[2J\0'=x\0").to_string();
    assert!(message.contains("`\\u{1b}[2J\\u{0}`") && !message.contains(['\x1b', '\0']), "{message:?}");
}

#[test]
fn duplicates_are_kept_and_expansion_sees_the_latest() {
    assert_values("A=1\nB=${A}\nA=2\nC=${A}\nA=${A}3", &[("A", "1"), ("B", "1"), ("A", "2"), ("C", "2"), ("A", "23")]);
}

#[test]
fn expansion_from_document_then_environment_then_default() {
    assert_value("A=${FROM_ENV}", "outer");
    assert_value("A=x${UNSET}y", "xy");
    assert_value("A=${UNSET:-fallback}", "fallback");
    assert_value("A=${FROM_ENV:-fallback}", "outer");
    assert_value("A=${EMPTY_ENV:-fallback}", "");
    assert_values("SHADOWED=doc\nA=${SHADOWED}", &[("SHADOWED", "doc"), ("A", "doc")]);
    assert_value("A=${SHADOWED}", "from-env");
}

#[test]
fn expansion_applies_to_every_quoting() {
    assert_value("A=\"${FROM_ENV}\"", "outer");
    assert_value("A='${FROM_ENV}'", "outer");
    assert_value("A=\"a\\${FROM_ENV}\"", "a\\outer");
}

#[test]
fn expansion_odd_forms() {
    assert_value("A=$FROM_ENV", "$FROM_ENV");
    assert_value("A=${FROM_ENV", "${FROM_ENV");
    assert_value("A=${FROM_ENV:fallback}", "${FROM_ENV:fallback}");
    assert_value("A=${UNSET:-a:b-c}", "a:b-c");
    assert_value("A=${UNSET:-${FROM_ENV}}", "${FROM_ENV}");
    assert_value("A=${}", "");
    assert_value("A=${:-d}", "d");
    assert_value("A=$${FROM_ENV}$", "$outer$");
    assert_value("A=${UNSET:-}", "");
    assert_value("A=${X${FROM_ENV}}", "}");
}

#[test]
fn expansion_result_is_not_expanded_again() {
    assert_values("A=$${B}\nB=${A}", &[("A", "$"), ("B", "$")]);
    assert_values("A='${'\nB=${A}FROM_ENV}", &[("A", "${"), ("B", "${FROM_ENV}")]);
}

#[test]
fn lookup_never_sees_impossible_names() {
    let lookup = |name: &str| -> Option<String> {
        assert!(!name.is_empty() && !name.contains(['=', '\0']), "bad lookup");
        None
    };
    let got = parse("A=${}${B=C}${D\0}${E:-x}", &lookup);
    let value = got.as_ref().map(|e| e[0].value.expose_secret());
    assert!(value == Ok("x"), "value of A differs");
}

#[test]
fn unicode_values() {
    assert_value("A=h\u{e9}llo \u{2713} \u{1f600}", "h\u{e9}llo \u{2713} \u{1f600}");
    assert_value("A=\"\u{65e5}\u{672c}\\n\"", "\u{65e5}\u{672c}\n");
}

#[test]
fn debug_and_errors_never_show_values() {
    let got = entries("A=supersecret");
    assert!(!format!("{got:?}").contains("supersecret"), "Debug shows a value");
    for text in ["A=supersecret\nB", "A=supersecret\n=x", "A=supersecret\0"] {
        let e = error(text);
        assert!(!format!("{e} {e:?}").contains("supersecret"), "error shows a value");
    }
}

#[test]
fn doubling_expansion_stops_at_the_limit() {
    let mut text = String::from("A0=fake-doubling-seed\n");
    for i in 1..40 {
        text.push_str(&format!("A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
    }
    let error = parse(&text, &|_| None).map(|entries| entries.len()).unwrap_err();
    assert!(matches!(error, DotenvError::TooLong { line } if line > 10), "{error:?}");
}
