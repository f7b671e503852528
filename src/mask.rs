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

mod forms;
pub use forms::{masked_forms, value_forms, Encoding};

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
mod tests;
