//! Streaming masking of secret values in a child's stdout/stderr.
//!
//! A [`Masker`] is built once from the secret values and shared (through an
//! [`Arc`]) by the threads that pump the child's output. Each output stream
//! gets its own [`MaskStream`], which replaces every occurrence of a secret
//! with `*****` even when the value is split across reads. [`pump`] ties it
//! together: it reads a pipe until EOF and writes the masked bytes out.

use std::fmt;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, Match, MatchKind};
use zeroize::{Zeroize, Zeroizing};

/// Values shorter than this many bytes are never masked.
///
/// Masking very short values such as `1`, `on` or `true` would mangle
/// unrelated output everywhere while protecting almost nothing, so such
/// values (and empty values) are skipped by [`Masker::new`].
pub const MIN_MASKED_LEN: usize = 4;

/// What every occurrence of a secret value is replaced with.
const MASK: &[u8] = b"*****";

/// Size of a single read from the child's pipe.
const READ_BUF_LEN: usize = 8 * 1024;

/// Number of read chunks that may be queued between reader and masker.
const CHANNEL_DEPTH: usize = 4;

/// A set of secret values to mask, compiled into an Aho-Corasick automaton.
///
/// Matching is leftmost-longest: at the leftmost position where any value
/// starts, the longest value starting there is replaced, and scanning resumes
/// after it. Only values of at least [`MIN_MASKED_LEN`] bytes are used; empty
/// and shorter values are skipped.
///
/// The pattern bytes live only inside the automaton (no other copy is kept),
/// and `Debug` shows only how many values are masked, never the values.
pub struct Masker {
    /// `None` when no value is long enough to be masked (pure passthrough).
    nfa: Option<NFA>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns = self.nfa.as_ref().map_or(0, |nfa| nfa.patterns_len());
        f.debug_struct("Masker").field("patterns", &patterns).finish_non_exhaustive()
    }
}

impl Masker {
    /// Builds a masker for `values`.
    ///
    /// Empty values and values shorter than [`MIN_MASKED_LEN`] bytes are
    /// ignored; if nothing remains, the masker passes everything through.
    ///
    /// # Panics
    ///
    /// Panics if the automaton exceeds aho-corasick's internal size limits
    /// (billions of states), which secret values cannot realistically reach.
    pub fn new(values: &[&[u8]]) -> Masker {
        let patterns: Vec<&[u8]> = values.iter().copied().filter(|v| v.len() >= MIN_MASKED_LEN).collect();
        if patterns.is_empty() {
            return Masker { nfa: None };
        }
        let nfa = NFA::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("secret values exceed the automaton size limits");
        Masker { nfa: Some(nfa) }
    }

    /// Masks every match in `buf` as if `buf` were the end of the stream.
    fn mask_all(&self, buf: &[u8], out: &mut Vec<u8>) {
        let Some(nfa) = &self.nfa else {
            out.extend_from_slice(buf);
            return;
        };
        let mut pos = 0;
        for m in find_iter(nfa, buf) {
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(MASK);
            pos = m.end();
        }
        out.extend_from_slice(&buf[pos..]);
    }

    /// Emits the part of `buf` whose masking cannot change whatever bytes
    /// follow, and returns the offset where the undecided tail starts.
    ///
    /// A position `s` is undecided when `buf[s..]` is a proper prefix of some
    /// value: more input could complete a match starting at `s` (or make a
    /// match starting at `s` longer). The greedy leftmost-longest scan is
    /// replayed and stopped at the first undecided position it reaches.
    fn mask_decided(&self, buf: &[u8], out: &mut Vec<u8>) -> usize {
        let Some(nfa) = &self.nfa else {
            out.extend_from_slice(buf);
            return buf.len();
        };
        // A proper prefix is shorter than the longest value, so no position
        // before `tail_lo` can be undecided.
        let tail_lo = buf.len().saturating_sub(nfa.max_pattern_len() - 1);
        let mut pos = 0;
        // Cached result of `first_undecided`: still valid while it is >= the
        // search start, as `pos` only grows.
        let mut cached = None;
        let mut undecided_from = |from: usize| match cached {
            Some(u) if u >= from => u,
            _ => *cached.insert(first_undecided(nfa, buf, from)),
        };
        for m in find_iter(nfa, buf) {
            if m.start() >= tail_lo {
                let undecided = undecided_from(pos.max(tail_lo));
                if m.start() >= undecided {
                    out.extend_from_slice(&buf[pos..undecided]);
                    return undecided;
                }
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(MASK);
            pos = m.end();
        }
        let undecided = undecided_from(pos.max(tail_lo));
        out.extend_from_slice(&buf[pos..undecided]);
        undecided
    }
}

/// Leftmost-longest, non-overlapping matches of `nfa` in `buf`.
fn find_iter<'a>(nfa: &'a NFA, buf: &'a [u8]) -> impl Iterator<Item = Match> + 'a {
    nfa.try_find_iter(Input::new(buf)).expect("unanchored search is supported by every NFA")
}

/// The smallest `s >= from` such that `buf[s..]` is a non-empty proper
/// prefix of some pattern, or `buf.len()` if there is none.
fn first_undecided(nfa: &NFA, buf: &[u8], from: usize) -> usize {
    (from..buf.len()).find(|&s| is_proper_prefix(nfa, &buf[s..])).unwrap_or(buf.len())
}

/// Whether `bytes` is a proper prefix of (strictly shorter than and equal to
/// the start of) some pattern, decided by walking the anchored trie.
fn is_proper_prefix(nfa: &NFA, bytes: &[u8]) -> bool {
    let Ok(mut sid) = nfa.start_state(Anchored::Yes) else {
        // Cannot tell: holding back is the safe answer.
        return true;
    };
    for &byte in bytes {
        sid = nfa.next_state(Anchored::Yes, sid, byte);
        if nfa.is_dead(sid) {
            return false;
        }
    }
    // Every trie leaf ends a pattern, so a non-match state has children. A
    // match state may or may not continue into a longer pattern: probe it.
    !nfa.is_match(sid) || (0..=u8::MAX).any(|byte| !nfa.is_dead(nfa.next_state(Anchored::Yes, sid, byte)))
}

/// Incremental masking state for one output stream (e.g. the child's stdout).
///
/// Bytes that could be the start of a secret value are held back until the
/// next [`feed`](MaskStream::feed) shows whether the value completes, so a
/// value split across any number of reads is still masked. The hold buffer is
/// zeroized whenever bytes leave it and when the stream is dropped. `Debug`
/// shows only the number of held bytes.
pub struct MaskStream {
    /// The shared set of values to mask.
    masker: Arc<Masker>,
    /// Held tail: always a proper prefix of some value between calls.
    hold: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MaskStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskStream").field("masker", &self.masker).field("pending_len", &self.hold.len()).finish()
    }
}

impl MaskStream {
    /// Creates an empty stream that masks the values of `masker`.
    pub fn new(masker: Arc<Masker>) -> MaskStream {
        MaskStream { masker, hold: Zeroizing::new(Vec::new()) }
    }

    /// Processes `input` and appends to `out` everything that can be emitted
    /// now, with every secret value replaced by `*****`.
    ///
    /// Holding rule: let `buf` be the held tail followed by `input`. The
    /// leftmost-longest scan over `buf` is replayed; it stops at the first
    /// position `s` (not inside an already masked match) where `buf[s..]` is a
    /// proper prefix of some value, and `buf[s..]` is held. Everything before
    /// is final. The held tail is therefore the shortest one that could still
    /// change the output, and at most (longest value length − 1) bytes long;
    /// a completely received value that no longer value extends is masked
    /// immediately.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.hold.is_empty() {
            let keep = self.masker.mask_decided(input, out);
            self.append(&input[keep..]);
        } else {
            self.append(input);
            let keep = self.masker.mask_decided(&self.hold, out);
            self.retain_from(keep);
        }
    }

    /// Emits the held tail, treating it as the end of the stream: complete
    /// values inside it are still masked, but a partial value is emitted as
    /// is.
    ///
    /// Used at end of stream and when no byte arrived for a while, so prompts
    /// and progress bars appear. Trade-off: bytes emitted this way are final;
    /// if the rest of a value arrives later, the value is *not* masked (its
    /// start is already out). Splitting the stream at flush points is
    /// otherwise invisible: the output equals masking each flushed segment on
    /// its own.
    pub fn flush_pending(&mut self, out: &mut Vec<u8>) {
        if !self.hold.is_empty() {
            self.masker.mask_all(&self.hold, out);
            self.hold.zeroize();
        }
    }

    /// Whether bytes are currently held back, waiting for more input or a
    /// [`flush_pending`](MaskStream::flush_pending).
    pub fn has_pending(&self) -> bool {
        !self.hold.is_empty()
    }

    /// Appends to the hold buffer; a reallocation zeroizes the old buffer.
    fn append(&mut self, bytes: &[u8]) {
        let needed = self.hold.len() + bytes.len();
        if needed > self.hold.capacity() {
            let mut grown = Vec::with_capacity(needed.max(2 * self.hold.capacity()).max(64));
            grown.extend_from_slice(&self.hold);
            self.hold.zeroize();
            *self.hold = grown;
        }
        self.hold.extend_from_slice(bytes);
    }

    /// Drops `hold[..start]`, zeroizing the bytes freed at the end.
    fn retain_from(&mut self, start: usize) {
        let len = self.hold.len();
        self.hold.copy_within(start.., 0);
        self.hold[len - start..].zeroize();
        self.hold.truncate(len - start);
    }
}

/// Copies the pipe `input` to `output` until EOF, masking the values of
/// `masker`.
///
/// Reads happen in chunks of up to 8 KiB; after each chunk the masked bytes
/// are written and `output` is flushed so output flows. When bytes are held
/// back (a possible value start) and nothing arrives for `idle_flush`, they
/// are emitted with [`MaskStream::flush_pending`]; at EOF the held tail is
/// emitted the same way.
///
/// The blocking reads run on a helper thread (scoped to this call) that hands
/// chunks over a bounded channel; the idle timeout is the channel's receive
/// timeout, so no `poll(2)` is needed. `EINTR` is retried. If writing fails,
/// writing stops but the pipe is still drained until EOF so the child never
/// blocks on a full pipe.
///
/// # Errors
///
/// Returns a read error from the pipe, an error spawning the reader thread,
/// or the first write/flush error other than `BrokenPipe` (a closed output
/// such as `envcloak … | head` is not an error).
pub fn pump(input: OwnedFd, output: &mut dyn Write, masker: Arc<Masker>, idle_flush: Duration) -> io::Result<()> {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let source = File::from(input);
    thread::scope(|scope| {
        thread::Builder::new()
            .name("envcloak-pipe-reader".into())
            .spawn_scoped(scope, move || read_chunks(source, &tx))?;

        let mut stream = MaskStream::new(masker);
        let mut sink = Sink { output, error: None };
        let mut out = Vec::with_capacity(READ_BUF_LEN + MASK.len());
        let mut read_error = None;
        loop {
            let msg = if stream.has_pending() {
                match rx.recv_timeout(idle_flush) {
                    Ok(msg) => Some(msg),
                    Err(RecvTimeoutError::Timeout) => {
                        stream.flush_pending(&mut out);
                        sink.emit(&mut out);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            } else {
                rx.recv().ok()
            };
            match msg {
                Some(Ok(chunk)) => {
                    stream.feed(&chunk, &mut out);
                    sink.emit(&mut out);
                }
                Some(Err(e)) => {
                    read_error = Some(e);
                    break;
                }
                None => break,
            }
        }
        stream.flush_pending(&mut out);
        sink.emit(&mut out);
        match (read_error, sink.error) {
            (Some(e), _) => Err(e),
            (None, Some(e)) if e.kind() != ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    })
}

/// Reader thread body: sends chunks read from `source` until EOF or error.
fn read_chunks(mut source: File, tx: &SyncSender<io::Result<Zeroizing<Vec<u8>>>>) {
    loop {
        let mut buf = Zeroizing::new(vec![0u8; READ_BUF_LEN]);
        let msg = match source.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = msg.is_err();
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

/// The output side of [`pump`]: stops writing after the first error.
struct Sink<'a> {
    /// Where masked bytes go.
    output: &'a mut dyn Write,
    /// First write or flush error, after which nothing more is written.
    error: Option<io::Error>,
}

impl Sink<'_> {
    /// Writes and flushes `out` (unless writing already failed), then clears it.
    fn emit(&mut self, out: &mut Vec<u8>) {
        if !out.is_empty() && self.error.is_none() {
            if let Err(e) = self.output.write_all(out).and_then(|()| self.output.flush()) {
                self.error = Some(e);
            }
        }
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Receiver;
    use std::time::Instant;

    /// Obviously fake "secrets" with overlapping and prefix relations, plus
    /// values that must be skipped (empty, too short).
    const FAKES: &[&[u8]] = &[
        b"FAKE_SECRET_ONE",
        b"FAKE_SECRET",
        b"SECRET_ONE_TWO",
        b"xyzw",
        b"abab",
        b"ababab",
        b"bab",
        b"",
        b"1",
        b"yes",
    ];

    /// Naive leftmost-longest replacement, used as the reference.
    fn reference(values: &[&[u8]], input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let longest =
                values.iter().filter(|v| v.len() >= MIN_MASKED_LEN && input[i..].starts_with(v)).map(|v| v.len()).max();
            match longest {
                Some(len) => {
                    out.extend_from_slice(MASK);
                    i += len;
                }
                None => {
                    out.push(input[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// Naive holding rule: length of the tail a stream must hold after being
    /// fed `buf`. Replays the greedy scan; the first position where the rest
    /// is a proper prefix of a value starts the tail.
    fn reference_hold(values: &[&[u8]], buf: &[u8]) -> usize {
        let values: Vec<&[u8]> = values.iter().copied().filter(|v| v.len() >= MIN_MASKED_LEN).collect();
        let mut t = 0;
        while t < buf.len() {
            let rest = &buf[t..];
            if values.iter().any(|v| v.len() > rest.len() && v.starts_with(rest)) {
                return rest.len();
            }
            let longest = values.iter().filter(|v| rest.starts_with(v)).map(|v| v.len()).max();
            t += longest.unwrap_or(1);
        }
        0
    }

    /// Feeds `pieces` one by one, checks that exactly the shortest possible
    /// tail is held (and so at most longest-1 bytes), then flushes.
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
        s.flush_pending(&mut out);
        assert!(!s.has_pending(), "flush left bytes pending");
        out
    }

    fn one_shot(masker: &Masker, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        masker.mask_all(input, &mut out);
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
        assert!(
            reference(values, b"aaaaaaaaaaa") == b"**********a",
            "reference disagrees with the hand-computed result"
        );
        check_all_splits(values, b"aaaaaaaaaaa");
        check_all_splits(values, b"aaabaaaaabaaaaaaaaaaaaaaba");

        let values: &[&[u8]] = &[b"abcdXY", b"cdXYZW", b"bcdX", b"dXYZ"];
        check_all_splits(values, b"abcdXYZW abcdXYZ bcdXYZW cdXYZ abcdabcdXYZWbcdX");
    }

    #[test]
    fn a_value_split_in_the_middle_of_a_longer_hold() {
        // A complete value ("ABCD") inside a held prefix of a longer value is
        // masked by flush_pending, not emitted in clear.
        let masker = Arc::new(Masker::new(&[b"TOKEN_ABCDEFGH", b"ABCD"]));
        let mut s = MaskStream::new(masker);
        let mut out = Vec::new();
        s.feed(b"xx TOKEN_ABCD", &mut out);
        assert!(out == b"xx ", "only the decided part is emitted");
        assert_eq!(s.hold.len(), 10);
        s.flush_pending(&mut out);
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
            s.flush_pending(&mut out);
            assert!(out == b"anything at all abc 1", "passthrough changed the output");
        }
    }

    #[test]
    fn short_values_not_masked() {
        let masker = Masker::new(&[b"abc", b"true", b"", b"x"]);
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

        // The same via flush_pending (idle prompt).
        let mut out = Vec::new();
        s.feed(b"prompt> FAKE_", &mut out);
        assert!(out == b"prompt> ", "possible value start not held");
        s.flush_pending(&mut out);
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
        s.flush_pending(&mut out);
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
            (self.next() % n as u64) as usize
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

            // Random pieces with random flush_pending calls: equals the
            // one-shot masking of each flushed segment on its own.
            let mut s = MaskStream::new(Arc::clone(&masker));
            let (mut out, mut expected, mut seg_start) = (Vec::new(), Vec::new(), 0);
            for w in cuts.windows(2) {
                s.feed(&input[w[0]..w[1]], &mut out);
                if rng.below(8) == 0 {
                    s.flush_pending(&mut out);
                    expected.extend(reference(&values, &input[seg_start..w[1]]));
                    seg_start = w[1];
                }
            }
            s.flush_pending(&mut out);
            expected.extend(reference(&values, &input[seg_start..]));
            assert!(out == expected, "round {round}: output with flushes differs");
        }
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
        pump(r, &mut out, masker, Duration::from_millis(200)).unwrap();
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
        let pumper = thread::spawn(move || pump(r, &mut ChanWriter(tx), masker, Duration::from_millis(30)));
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
        pump(r, &mut out, masker, Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        assert!(out == expected, "pumped output differs from reference");
    }

    #[test]
    fn pump_keeps_draining_after_broken_pipe() {
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
        // Far more than a pipe buffer: the writer only finishes if drained.
        let writer = thread::spawn(move || {
            File::from(w).write_all(&vec![b'x'; 1 << 20]).unwrap();
        });
        let masker = Arc::new(Masker::new(&[b"FAKE_NEVER_SEEN"]));
        pump(r, &mut Broken, masker, Duration::from_millis(50)).unwrap();
        writer.join().unwrap();
    }
}
