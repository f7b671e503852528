//! Memory hygiene: no core dumps, no ptrace by other processes of the same
//! user, and secret pages locked in RAM where the OS allows. The only module
//! with `unsafe` code.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::diag;

/// Turns core dumps off for envcloak itself: RLIMIT_CORE soft limit 0, and
/// (Linux) not dumpable, which also hides `/proc/PID/environ` and memory
/// from other processes of the same user. Neither survives into an exec'd
/// child: the dumpable flag is reset by exec, and the core limit is put back
/// for the child by [`CoreLimit::restore_for_child`].
pub fn harden_process() -> CoreLimit {
    let original = getrlimit(Resource::RLIMIT_CORE).ok();
    if let Some((_, hard)) = original {
        if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, hard) {
            diag::note!("cannot turn core dumps off: {e}");
        }
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        diag::note!("cannot mark envcloak not dumpable: {e}");
    }
    CoreLimit { original }
}

/// The core-dump limit envcloak started with, to give back to the child.
pub struct CoreLimit {
    original: Option<(u64, u64)>,
}

impl CoreLimit {
    /// Puts the original soft limit back (just before the child starts, so
    /// the child's own crash handling is unchanged).
    pub fn restore_for_child(&self) {
        if let Some((soft, hard)) = self.original {
            let _ = setrlimit(Resource::RLIMIT_CORE, soft, hard);
        }
    }

    /// Turns core dumps off again after the child has started.
    pub fn disable_again(&self) {
        if let Some((_, hard)) = self.original {
            let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
        }
    }
}

/// Locks the pages holding `bytes` in RAM so they are never swapped out.
/// Pages stay locked until exit (several values may share a page). A failure
/// (e.g. RLIMIT_MEMLOCK reached) is a `-v` note, not an error.
pub fn lock(bytes: &[u8]) {
    let Some(start) = NonNull::new(bytes.as_ptr().cast_mut()) else {
        return;
    };
    if bytes.is_empty() {
        return;
    }
    // SAFETY: `start..start+len` is a live allocation borrowed for the whole
    // call; mlock only changes the residency of the pages containing it and
    // neither reads nor writes the memory.
    let locked = unsafe { nix::sys::mman::mlock(start.cast(), bytes.len()) };
    if let Err(e) = locked {
        diag::note!("cannot lock a secret in memory ({e}); it may be swapped out");
    }
}
