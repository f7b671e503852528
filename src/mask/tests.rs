use super::*;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Instant;

/// Obviously fake "secrets" with overlapping and prefix relations, plus
/// values that must be skipped (empty, too short).
const FAKES: &[&[u8]] =
    &[b"FAKE_SECRET_ONE", b"FAKE_SECRET", b"SECRET_ONE_TWO", b"xyzw", b"abab", b"ababab", b"bab", b"", b"1", b"yes"];

/// Which bytes of `input` occurrences of `values` (of at least
/// [`MIN_MASKED_LEN`] bytes) cover, overlapping ones included.
fn coverage(values: &[&[u8]], input: &[u8]) -> Vec<bool> {
    let mut covered = vec![false; input.len()];
    for value in values.iter().filter(|v| v.len() >= MIN_MASKED_LEN) {
        for start in 0..input.len() {
            if input[start..].starts_with(value) {
                covered[start..start + value.len()].iter_mut().for_each(|c| *c = true);
            }
        }
    }
    covered
}

/// `input` with each run of `masked` bytes replaced by one `*****`.
fn render(input: &[u8], masked: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &byte) in input.iter().enumerate() {
        if !masked[i] {
            out.push(byte);
        } else if i == 0 || !masked[i - 1] {
            out.extend_from_slice(MASK);
        }
    }
    out
}

/// Naive union masking, used as the reference.
fn reference(values: &[&[u8]], input: &[u8]) -> Vec<u8> {
    render(input, &coverage(values, input))
}

/// Naive holding rule: length of the tail a stream must hold after being
/// fed `buf`: from the first position where the rest is a proper prefix of
/// a value.
fn reference_hold(values: &[&[u8]], buf: &[u8]) -> usize {
    let values: Vec<&[u8]> = values.iter().copied().filter(|v| v.len() >= MIN_MASKED_LEN).collect();
    let undecided =
        (0..buf.len()).find(|&s| values.iter().any(|v| v.len() > buf.len() - s && v.starts_with(&buf[s..])));
    undecided.map_or(0, |s| buf.len() - s)
}

/// Feeds `pieces` one by one, checks that exactly the shortest possible
/// tail is held (and so at most longest-1 bytes), then releases the rest.
fn stream(masker: &Arc<Masker>, values: &[&[u8]], pieces: &[&[u8]]) -> Vec<u8> {
    let max = values.iter().map(|v| v.len()).filter(|&l| l >= MIN_MASKED_LEN).max();
    let mut s = MaskStream::new(Arc::clone(masker));
    let mut out = Vec::new();
    let mut fed = Vec::new();
    for piece in pieces {
        s.feed(piece, &mut out);
        fed.extend_from_slice(piece);
        assert!(
            s.hold.len() == reference_hold(values, &fed),
            "hold of {} bytes is not the shortest possible",
            s.hold.len()
        );
        assert!(s.hold.len() < max.unwrap_or(1), "hold exceeds longest-1");
    }
    s.release(&mut out);
    assert!(!s.has_pending(), "release left bytes pending");
    out
}

fn one_shot(masker: &Arc<Masker>, input: &[u8]) -> Vec<u8> {
    let mut s = MaskStream::new(Arc::clone(masker));
    let mut out = Vec::new();
    s.feed(input, &mut out);
    s.release(&mut out);
    out
}

/// Splits `input` at every position and every pair of positions.
fn check_all_splits(values: &[&[u8]], input: &[u8]) {
    let masker = Arc::new(Masker::new(values));
    let expected = reference(values, input);
    assert!(one_shot(&masker, input) == expected, "one-shot differs from reference");
    for i in 0..=input.len() {
        let out = stream(&masker, values, &[&input[..i], &input[i..]]);
        assert!(out == expected, "masked output differs for split at {i}");
        for j in i..=input.len() {
            let out = stream(&masker, values, &[&input[..i], &input[i..j], &input[j..]]);
            assert!(out == expected, "masked output differs for splits at {i},{j}");
        }
    }
}

#[test]
fn exhaustive_splits() {
    let inputs: &[&[u8]] = &[
        b"pre FAKE_SECRET_ONE_TWO mid FAKE_SECRETxFAKE_SECRET_ON abababab xyzwxyz FAKE_SEC",
        b"SECRET_ONE_TWOFAKE_SECRET_ONEababa bab abab yes 1 xyz",
        b"FAKE_SECRET_ONE",
        b"FAKE_SECRET_ONE_TWO",
        b"",
    ];
    for input in inputs {
        check_all_splits(FAKES, input);
    }
}

#[test]
fn overlapping_and_prefix_values() {
    let values: &[&[u8]] = &[b"TOKEN_ABCDEFGH", b"ABCD"];
    let input = b"xx TOKEN_ABCDEFG yy TOKEN_ABCD zz TOKEN_ABCDEFGH";
    assert!(
        reference(values, input) == b"xx TOKEN_*****EFG yy TOKEN_***** zz *****",
        "reference disagrees with the hand-computed result"
    );
    check_all_splits(values, input);

    let values: &[&[u8]] = &[b"aaaa", b"aaaaaa"];
    assert!(reference(values, b"aaaaaaaaaaa") == b"*****", "reference disagrees with the hand-computed result");
    check_all_splits(values, b"aaaaaaaaaaa");
    check_all_splits(values, b"aaabaaaaabaaaaaaaaaaaaaaba");

    let values: &[&[u8]] = &[b"abcdXY", b"cdXYZW", b"bcdX", b"dXYZ"];
    check_all_splits(values, b"abcdXYZW abcdXYZ bcdXYZW cdXYZ abcdabcdXYZWbcdX");
}

#[test]
fn a_value_split_in_the_middle_of_a_longer_hold() {
    // A complete value ("ABCD") inside a held prefix of a longer value is
    // masked by release, not emitted in clear.
    let masker = Arc::new(Masker::new(&[b"TOKEN_ABCDEFGH", b"ABCD"]));
    let mut s = MaskStream::new(masker);
    let mut out = Vec::new();
    s.feed(b"xx TOKEN_ABCD", &mut out);
    assert!(out == b"xx ", "only the decided part is emitted");
    assert_eq!(s.hold.len(), 10);
    s.release(&mut out);
    assert!(out == b"xx TOKEN_*****", "complete value in the tail not masked");
}

#[test]
fn no_values_passthrough() {
    for values in [&[][..], &[&b""[..], b"abc", b"1"][..]] {
        let masker = Arc::new(Masker::new(values));
        let mut s = MaskStream::new(masker);
        let mut out = Vec::new();
        s.feed(b"anything at all abc 1", &mut out);
        assert!(!s.has_pending());
        s.feed(b"", &mut out);
        s.release(&mut out);
        assert!(out == b"anything at all abc 1", "passthrough changed the output");
    }
}

#[test]
fn short_values_not_masked() {
    let masker = Arc::new(Masker::new(&[b"abc", b"true", b"", b"x"]));
    assert_eq!(MIN_MASKED_LEN, 4);
    assert!(
        one_shot(&masker, b"abc true x abcd truex") == b"abc ***** x abcd *****x",
        "short values masked or 4-byte value not masked"
    );
    assert_eq!(format!("{masker:?}"), "Masker { patterns: 1, .. }");
}

#[test]
fn held_tail_that_is_not_a_value_is_emitted() {
    let masker = Arc::new(Masker::new(&[b"FAKE_SECRET_VALUE"]));
    let mut s = MaskStream::new(Arc::clone(&masker));
    let mut out = Vec::new();
    s.feed(b"hello FAKE_SEC", &mut out);
    assert!(out == b"hello ", "possible value start not held");
    assert!(s.has_pending());
    s.feed(b"RET_VALUX\n", &mut out);
    assert!(out == b"hello FAKE_SECRET_VALUX\n", "held non-value not emitted in full");
    assert!(!s.has_pending());

    // The same via release (idle prompt).
    let mut out = Vec::new();
    s.feed(b"prompt> FAKE_", &mut out);
    assert!(out == b"prompt> ", "possible value start not held");
    s.release(&mut out);
    assert!(out == b"prompt> FAKE_", "flush did not emit the held tail");
    assert!(!s.has_pending());

    // A complete value that nothing extends is not held at all; only the
    // shortest possible start of a value is.
    let mut out = Vec::new();
    s.feed(b"x FAKE_SECRET_VALUE", &mut out);
    assert!(out == b"x *****" && !s.has_pending(), "complete value was held");
    s.feed(b" FAKE_SECRET_VALUEF", &mut out);
    assert!(out == b"x ***** *****", "value followed by a start not masked");
    assert_eq!(s.hold.len(), 1);
    s.feed(b"", &mut out);
    assert_eq!(s.hold.len(), 1);
    s.release(&mut out);
    assert!(out == b"x ***** *****F", "held byte lost");
    assert_eq!(format!("{s:?}"), "MaskStream { masker: Masker { patterns: 1, .. }, pending_len: 0 }");

    // A complete value that is shorter than the longest one, and that no
    // longer value extends, is not held either.
    let masker = Arc::new(Masker::new(&[b"FAKE_SECRET_VALUE", b"FAKE_SHORT"]));
    let mut s = MaskStream::new(masker);
    let mut out = Vec::new();
    s.feed(b"x FAKE_SHORT", &mut out);
    assert!(out == b"x *****" && !s.has_pending(), "complete value was held");
}

/// xorshift64* — deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
    fn bytes(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
        (0..len).map(|_| alphabet[self.below(alphabet.len())]).collect()
    }
}

#[test]
fn random_inputs_match_reference() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"abcAB_";
    for round in 0..400 {
        let values: Vec<Vec<u8>> = (0..1 + rng.below(6))
            .map(|_| {
                let len = rng.below(12);
                rng.bytes(alphabet, len)
            })
            .collect();
        let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let len = rng.below(3000);
        let input = rng.bytes(alphabet, len);
        let masker = Arc::new(Masker::new(&values));

        // Random pieces, no intermediate flush: equals one-shot.
        let mut cuts = vec![0];
        while *cuts.last().unwrap() < input.len() {
            let next = cuts.last().unwrap() + rng.below(40);
            cuts.push(next.min(input.len()));
        }
        let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &input[w[0]..w[1]]).collect();
        let out = stream(&masker, &values, &pieces);
        assert!(out == reference(&values, &input), "round {round}: output differs");

        // Random pieces with random releases: a byte is masked when the
        // input up to the first release after it shows it covered; the rest
        // of a value whose start was released is still masked.
        let mut s = MaskStream::new(Arc::clone(&masker));
        let (mut out, mut masked, mut seg_start) = (Vec::new(), Vec::new(), 0);
        for w in cuts.windows(2) {
            s.feed(&input[w[0]..w[1]], &mut out);
            if rng.below(8) == 0 {
                s.release(&mut out);
                masked.extend_from_slice(&coverage(&values, &input[..w[1]])[seg_start..]);
                seg_start = w[1];
            }
        }
        s.release(&mut out);
        masked.extend_from_slice(&coverage(&values, &input)[seg_start..]);
        assert!(out == render(&input, &masked), "round {round}: output with releases differs");
    }
}

/// Overlapping values are masked as their union: no part of either shows.
#[test]
fn overlapping_values_are_masked_as_their_union() {
    let values: &[&[u8]] = &[b"hunter2-alpha", b"alpha-secret-bravo-99"];
    check_all_splits(values, b"x hunter2-alpha-secret-bravo-99 y");
    let masker = Arc::new(Masker::new(values));
    assert!(one_shot(&masker, b"x hunter2-alpha-secret-bravo-99 y") == b"x ***** y", "overlap not masked whole");
}

/// A released start of a value (an idle prompt) does not let its rest out.
#[test]
fn the_rest_of_a_released_value_is_still_masked() {
    let masker = Arc::new(Masker::new(&[b"FAKE_SECRET_VALUE"]));
    let mut s = MaskStream::new(masker);
    let mut out = Vec::new();
    s.feed(b"hint: FAKE_SEC", &mut out);
    s.release(&mut out);
    assert!(out == b"hint: FAKE_SEC", "the prompt was not released");
    s.feed(b"RET_VALUE done", &mut out);
    assert!(out == b"hint: FAKE_SEC***** done", "the rest of the value leaked");
}

/// A `Write` that forwards every flushed write to a channel.
struct ChanWriter(SyncSender<Vec<u8>>);

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| ErrorKind::BrokenPipe)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects from `rx` until `want` bytes arrived or `deadline` passes.
fn collect(rx: &Receiver<Vec<u8>>, want: usize, deadline: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => got.extend(chunk),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn pump_masks_a_value_written_in_two_parts() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let masker = Arc::new(Masker::new(&[b"FAKE_PUMP_SECRET"]));
    let writer = thread::spawn(move || {
        let mut w = File::from(w);
        w.write_all(b"token=FAKE_PU").unwrap();
        thread::sleep(Duration::from_millis(20));
        w.write_all(b"MP_SECRET done\n").unwrap();
    });
    let mut out = Vec::new();
    pump(r, &mut out, masker, Some(Duration::from_millis(200))).unwrap();
    writer.join().unwrap();
    assert!(out == b"token=***** done\n", "pumped output not masked");
}

#[test]
fn pump_flushes_a_held_prompt_when_idle() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let masker = Arc::new(Masker::new(&[b"FAKE_IDLE_SECRET"]));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        let mut w = File::from(w);
        w.write_all(b"Password for FAKE_").unwrap();
        // Keep the pipe open until the test saw the prompt.
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
    });
    let (tx, rx) = mpsc::sync_channel(64);
    let pumper = thread::spawn(move || pump(r, &mut ChanWriter(tx), masker, Some(Duration::from_millis(30))));
    let got = collect(&rx, 18, Instant::now() + Duration::from_secs(5));
    done_tx.send(()).unwrap();
    writer.join().unwrap();
    pumper.join().unwrap().unwrap();
    assert!(got == b"Password for FAKE_", "held prompt not flushed while idle");
}

#[test]
fn pump_many_chunks_matches_reference() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let values: &[&[u8]] = &[b"FAKE_CHUNK_SECRET", b"FAKE_CHUNK", b"ZZZZ"];
    let mut rng = Rng(42);
    let mut input = Vec::new();
    while input.len() < 200_000 {
        let len = rng.below(3000);
        input.extend(rng.bytes(b"FAKE_CHUNK SECRTZ\n", len));
        input.extend_from_slice(values[rng.below(values.len())]);
    }
    let expected = reference(values, &input);
    let masker = Arc::new(Masker::new(values));
    let writer = thread::spawn(move || {
        let mut w = File::from(w);
        let mut rng = Rng(7);
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + 1 + rng.below(10_000)).min(input.len());
            w.write_all(&input[pos..end]).unwrap();
            pos = end;
        }
    });
    let mut out = Vec::new();
    pump(r, &mut out, masker, Some(Duration::from_secs(5))).unwrap();
    writer.join().unwrap();
    assert!(out == expected, "pumped output differs from reference");
}

#[test]
fn pump_without_idle_release_waits_for_the_rest_of_a_value() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let masker = Arc::new(Masker::new(&[b"FAKE_SLOW_SECRET"]));
    let writer = thread::spawn(move || {
        let mut w = File::from(w);
        w.write_all(b"token=FAKE_SL").unwrap();
        thread::sleep(Duration::from_millis(300));
        w.write_all(b"OW_SECRET done\n").unwrap();
    });
    let mut out = Vec::new();
    pump(r, &mut out, masker, None).unwrap();
    writer.join().unwrap();
    assert!(out == b"token=***** done\n", "a value written in two slow parts was not masked");
}

#[test]
fn pump_closes_its_input_after_broken_pipe() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (r, w) = nix::unistd::pipe().unwrap();
    // Far more than a pipe buffer: the writer only finishes once its reader
    // is gone, with EPIPE.
    let writer = thread::spawn(move || File::from(w).write_all(&vec![b'x'; 1 << 20]));
    let masker = Arc::new(Masker::new(&[b"FAKE_NEVER_SEEN"]));
    pump(r, &mut Broken, masker, None).unwrap();
    let written = writer.join().unwrap();
    assert!(written.is_err_and(|e| e.kind() == ErrorKind::BrokenPipe), "the writer did not get EPIPE");
}
