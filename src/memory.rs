//! Memory hygiene: no core dumps, no ptrace by other processes of the same
//! user, secret pages locked in RAM where the OS allows, and every heap
//! block wiped before it is given back. The only module with `unsafe` code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::sync::atomic::{compiler_fence, Ordering};

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

/// The system allocator, except that no block goes back to it with its
/// contents: every block is zeroed when it is freed, and a block that
/// grows or shrinks is moved (new block, copy, old block zeroed and freed)
/// rather than resized in place, where the allocator could leave the old
/// bytes behind. So whatever a library held (a whole HTTP answer, a header
/// with a token, a parser's scratch) is gone once it is dropped, not
/// merely unreachable. Installed with `#[global_allocator]` in `main.rs`.
pub struct ZeroizingAllocator;

// SAFETY (for the impl): every method forwards to `System` with the same
// layout it was given, so `System`'s guarantees are ours; the only extra
// work is writing zeroes into a block that is still allocated and owned by
// the caller (see `wipe`).
unsafe impl GlobalAlloc for ZeroizingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which
        // is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live block of this
        // allocator with `layout`, so its `layout.size()` bytes are ours to
        // write until it is freed just after.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to
        // `layout.align()`, does not overflow `isize` and is non-zero, so
        // the new layout is valid; `ptr` is a live block of `layout`, and
        // the new block is distinct from it, so the copy of the smaller
        // size is in bounds of both and does not overlap.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Zeroes `len` bytes at `ptr` with volatile writes (a word at a time
/// where aligned), which the compiler may not remove even though the block
/// is freed right after.
///
/// # Safety
///
/// `ptr..ptr+len` must be writable memory owned by the caller.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller owns `len` writable bytes at `ptr`; `align_to_mut`
    // only splits them into an unaligned head, aligned words and a tail.
    let (head, words, tail) = unsafe { std::slice::from_raw_parts_mut(ptr, len).align_to_mut::<usize>() };
    for byte in head.iter_mut().chain(tail.iter_mut()) {
        // SAFETY: a valid, aligned `&mut u8` of the slice.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
    for word in words {
        // SAFETY: a valid, aligned `&mut usize` of the slice.
        unsafe { std::ptr::write_volatile(word, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}
