//! Streaming masking of secret values in a child's stdout/stderr.
//!
//! A [`Masker`] is built once from the secret values and shared (through an
//! [`Arc`]) by the threads that pump the child's output. Each output stream
//! gets its own [`MaskStream`], which replaces every run of bytes covered by
//! occurrences of secret values with `*****`, even when a value is split
//! across reads. [`pump`] ties it together: it reads a pipe until EOF and
//! writes the masked bytes out.

use std::fmt;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, MatchKind};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use zeroize::{Zeroize, Zeroizing};

mod forms;
pub use forms::{masked_forms, value_forms, Encoding};

/// Values shorter than this many bytes are never masked.
///
/// Masking very short values such as `1`, `on` or `true` would mangle
/// unrelated output everywhere while protecting almost nothing, so such
/// values (and empty values) are skipped by [`Masker::new`].
pub const MIN_MASKED_LEN: usize = 4;

/// The masker of a command's secrets: each value, its lines, and its
/// encoded forms (base64, URL, JSON). A composed value's parts count as
/// values of their own.
pub fn masker_for(vars: &[crate::resolve::ResolvedVar]) -> Arc<Masker> {
    let values = vars.iter().flat_map(|v| std::iter::once(&v.value).chain(&v.parts));
    let forms: Vec<_> = values.flat_map(|value| masked_forms(value.expose(), MIN_MASKED_LEN)).collect();
    let patterns: Vec<&[u8]> = forms.iter().map(|f| f.as_bytes()).collect();
    Arc::new(Masker::new(&patterns))
}

/// What every run of secret bytes is replaced with.
const MASK: &[u8] = b"*****";

/// Size of a single read from the child's pipe.
const READ_BUF_LEN: usize = 8 * 1024;

/// A set of secret values to mask, compiled into an Aho-Corasick automaton.
///
/// Every byte inside any occurrence of any value is secret, including where
/// occurrences overlap or touch: each maximal run of such bytes becomes one
/// `*****`, so no part of overlapping values shows. Only values of at least
/// [`MIN_MASKED_LEN`] bytes are used; empty and shorter values are skipped.
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
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .expect("secret values exceed the automaton size limits");
        Masker { nfa: Some(nfa) }
    }

    /// For each byte of `buf`, whether some occurrence of a value in `buf`
    /// covers it.
    fn covered(&self, buf: &[u8]) -> Vec<bool> {
        let Some(nfa) = &self.nfa else {
            return vec![false; buf.len()];
        };
        // reach[s]: the furthest end of an occurrence starting at s.
        let mut reach = vec![0; buf.len()];
        let matches = nfa.try_find_overlapping_iter(Input::new(buf)).expect("overlapping search on a standard NFA");
        for m in matches {
            reach[m.start()] = reach[m.start()].max(m.end());
        }
        let mut until = 0;
        reach
            .into_iter()
            .enumerate()
            .map(|(i, end)| {
                until = until.max(end);
                i < until
            })
            .collect()
    }

    /// The smallest `s` such that `buf[s..]` is a non-empty proper prefix of
    /// some value (more input could make an occurrence start at `s`), or
    /// `buf.len()`. No byte before it can ever be covered by a later match.
    fn first_undecided(&self, buf: &[u8]) -> usize {
        let Some(nfa) = &self.nfa else {
            return buf.len();
        };
        // A proper prefix is shorter than the longest value.
        let from = buf.len().saturating_sub(nfa.max_pattern_len() - 1);
        (from..buf.len()).find(|&s| is_proper_prefix(nfa, &buf[s..])).unwrap_or(buf.len())
    }
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
/// Bytes that could be the start of a secret value are held back until later
/// bytes show whether the value completes, so a value split across any number
/// of reads is still masked. Held bytes may be released early with
/// [`release`](MaskStream::release) (a prompt on a terminal); they are then
/// kept as context, so the rest of a value whose start was released is still
/// masked. The hold buffer is zeroized whenever bytes leave it and when the
/// stream is dropped. `Debug` shows only the number of held bytes.
pub struct MaskStream {
    /// The shared set of values to mask.
    masker: Arc<Masker>,
    /// The undecided tail of the stream: at most (longest value − 1) bytes.
    hold: Zeroizing<Vec<u8>>,
    /// How many leading bytes of `hold` are already written out.
    released: usize,
    /// Whether the output so far ends with a `*****` whose run reaches
    /// `hold[released]`, so a run that continues there needs no new mask.
    in_mask: bool,
}

impl fmt::Debug for MaskStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskStream").field("masker", &self.masker).field("pending_len", &self.pending()).finish()
    }
}

impl MaskStream {
    /// Creates an empty stream that masks the values of `masker`.
    pub fn new(masker: Arc<Masker>) -> MaskStream {
        MaskStream { masker, hold: Zeroizing::new(Vec::new()), released: 0, in_mask: false }
    }

    /// Processes `input` and appends to `out` everything that is decided,
    /// with every run of secret bytes replaced by `*****`.
    ///
    /// Holding rule: with `buf` the held tail followed by `input`, the first
    /// position `s` where `buf[s..]` is a proper prefix of some value is
    /// undecided, and so is everything after it, except bytes that complete
    /// occurrences already cover. The rest is final and written out. The held
    /// tail is therefore the shortest one that could still change the output,
    /// at most (longest value length − 1) bytes long; a completely received
    /// value that no longer value extends is masked immediately.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.append(input);
        let undecided = self.masker.first_undecided(&self.hold);
        let covered = self.masker.covered(&self.hold);
        let known_secret = covered[undecided..].iter().take_while(|c| **c).count();
        self.write_up_to(&covered, undecided + known_secret, out);
        self.released -= undecided;
        self.retain_from(undecided);
    }

    /// Writes out the held bytes not yet written, as if the stream ended
    /// here: complete values among them are masked, a partial value is
    /// written as it is.
    ///
    /// Used at the end of the stream and, on a terminal, when nothing arrived
    /// for a while, so prompts and progress bars appear. The released bytes
    /// stay as context: if the rest of a value arrives later, that rest is
    /// still masked (its start is already out and cannot be taken back).
    pub fn release(&mut self, out: &mut Vec<u8>) {
        let covered = self.masker.covered(&self.hold);
        self.write_up_to(&covered, self.hold.len(), out);
    }

    /// Whether bytes are currently held back, waiting for more input or a
    /// [`release`](MaskStream::release).
    pub fn has_pending(&self) -> bool {
        self.pending() > 0
    }

    /// The number of held bytes not yet written out.
    fn pending(&self) -> usize {
        self.hold.len() - self.released
    }

    /// Writes `hold[released..end]` to `out`, each run of `covered` bytes as
    /// one `*****` (none where the run continues one already written).
    fn write_up_to(&mut self, covered: &[bool], end: usize, out: &mut Vec<u8>) {
        let start = self.released.min(end);
        for (&secret, &byte) in covered[start..end].iter().zip(&self.hold[start..end]) {
            if !secret {
                out.push(byte);
            } else if !self.in_mask {
                out.extend_from_slice(MASK);
            }
            self.in_mask = secret;
        }
        self.released = self.released.max(end);
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
/// are written and `output` is flushed so output flows. With `idle_release`
/// (for a terminal), bytes held back as a possible value start are written
/// once nothing arrived for that long; without it (files, pipes, CI logs)
/// they wait for the bytes that decide them or for EOF. `EINTR` is retried.
///
/// When `output` is closed (`BrokenPipe`, as in `envcloak … | head`), copying
/// stops and `input` is closed, so the child's next write fails with `EPIPE`
/// (or kills it with SIGPIPE) as if it wrote to the closed reader itself.
///
/// # Errors
///
/// Returns a read or poll error on the pipe, or a write/flush error other
/// than `BrokenPipe`.
pub fn pump(
    input: OwnedFd,
    output: &mut dyn Write,
    masker: Arc<Masker>,
    idle_release: Option<Duration>,
) -> io::Result<()> {
    match copy(File::from(input), output, masker, idle_release) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

/// [`pump`]'s loop; returns the first error, `BrokenPipe` included, and
/// closes `source` on the way out.
fn copy(
    mut source: File,
    output: &mut dyn Write,
    masker: Arc<Masker>,
    idle_release: Option<Duration>,
) -> io::Result<()> {
    let mut stream = MaskStream::new(masker);
    let mut buf = Zeroizing::new(vec![0u8; READ_BUF_LEN]);
    let mut out = Vec::with_capacity(READ_BUF_LEN + MASK.len());
    loop {
        let idle = idle_release.filter(|_| stream.has_pending());
        if let Some(idle) = idle {
            if !readable_within(&source, idle)? {
                stream.release(&mut out);
                emit(output, &mut out)?;
                continue;
            }
        }
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => stream.feed(&buf[..n], &mut out),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        emit(output, &mut out)?;
    }
    stream.release(&mut out);
    emit(output, &mut out)
}

/// Whether `source` becomes readable (or hits EOF/an error) within `limit`;
/// a signal interrupting the wait starts it again.
fn readable_within(source: &File, limit: Duration) -> io::Result<bool> {
    let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(source.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(ready) => return Ok(ready > 0),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Writes and flushes `out` (if not empty), then clears it.
fn emit(output: &mut dyn Write, out: &mut Vec<u8>) -> io::Result<()> {
    let result = if out.is_empty() { Ok(()) } else { output.write_all(out).and_then(|()| output.flush()) };
    out.clear();
    result
}

#[cfg(test)]
mod tests;
