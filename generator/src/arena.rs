//! The generator's and umm-init's allocator: a bump arena in `.bss`, with
//! the system allocator behind it.
//!
//! Both run for well under a millisecond, allocate a few tens of KiB in a few
//! hundred small blocks (paths, file contents, the TOML tables) and then exit
//! or exec the real init. musl's allocator spends a third of the generator's
//! instructions on them and maps and unmaps pages a dozen times
//! (docs/benchmarks.md, issue 19); a bump pointer spends a few instructions
//! and no system call.
//!
//! - `alloc`: the next aligned block of the arena; when it does not fit, the
//!   system allocator (so a large file or a long run can never fail where
//!   musl's malloc would not).
//! - `dealloc`: the arena's newest block gives its room back (the common
//!   case of a temporary); any other arena block is left in place until the
//!   process ends. Blocks from the system allocator go back to it.
//! - `realloc`: the newest block grows or shrinks in place (a `Vec` or
//!   `String` being filled); a shrink elsewhere stays in place; otherwise a
//!   copy.
//!
//! The arena is 1 MiB of `.bss`: no bytes in the file, and only the pages
//! touched are ever faulted in. The offset is an atomic updated by
//! compare-and-swap, so the allocator is sound with threads (the test
//! harness runs many), though the binary itself has one.
//!
//! Not a crate: `static-alloc`'s bump allocator, the nearest, has no
//! fallback (an exhausted arena is an allocation failure, an abort in PID 1).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The arena's size.
pub const SIZE: usize = 1 << 20;

/// Every block is aligned at least this much, as malloc's are on x86_64
/// (`alignof(max_align_t)`).
pub const MIN_ALIGN: usize = 16;

#[repr(C, align(4096))]
struct Memory(UnsafeCell<[u8; SIZE]>);

// SAFETY: the bytes are handed out in disjoint blocks by the atomic offset;
// nothing else touches them.
unsafe impl Sync for Memory {}

/// A bump arena in front of the system allocator (see the module doc).
pub struct Arena {
    memory: Memory,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

impl Arena {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Arena {
        Arena {
            memory: Memory(UnsafeCell::new([0; SIZE])),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.0.get() as usize
    }

    /// The block's offset when `p` is in the arena.
    fn offset(&self, p: *mut u8) -> Option<usize> {
        (p as usize).checked_sub(self.base()).filter(|&o| o < SIZE)
    }

    /// Bytes of the arena in use (for tests and the benchmark notes).
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.next.load(Relaxed)
    }

    /// A block of `layout` from the arena, or None when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut cur = self.next.load(Relaxed);
        loop {
            // Alignment of the address, not of the offset: base is 4096-aligned
            // but an alignment above that is possible in a Layout. Never less
            // than malloc's 16 bytes: C code takes that for granted (the
            // unwinder's exception object, a Rust allocation, is accessed
            // with 16-byte SSE moves: 8-aligned, a panic was a SIGSEGV).
            let align = layout.align().max(MIN_ALIGN);
            let start = (base + cur).checked_next_multiple_of(align)? - base;
            let end = start.checked_add(layout.size()).filter(|&e| e <= SIZE)?;
            match self.next.compare_exchange_weak(cur, end, Relaxed, Relaxed) {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

// SAFETY: every block handed out is `layout.size()` bytes aligned to
// `layout.align()`, inside the arena and disjoint from every other live
// block (the offset only moves back over the newest block when it is freed
// or shrunk), or comes from `System` and goes back to it.
// The methods are `inline(never)`: inlined at every allocation site they
// cost 20 KB of text (the binary's size is a target, issue 19).
unsafe impl GlobalAlloc for Arena {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout, as GlobalAlloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match self.offset(p) {
            Some(off) => {
                // The newest block only; another thread's newer block (or
                // a lost race) just leaves this one in place.
                let _ = self
                    .next
                    .compare_exchange(off + layout.size(), off, Relaxed, Relaxed);
            }
            // SAFETY: not ours, so System's, with the layout it was made with.
            None => unsafe { System.dealloc(p, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset(p) else {
            // SAFETY: System's block, forwarded with the caller's arguments.
            return unsafe { System.realloc(p, layout, new_size) };
        };
        let old_end = off + layout.size();
        if let Some(new_end) = off.checked_add(new_size).filter(|&e| e <= SIZE) {
            if self
                .next
                .compare_exchange(old_end, new_end, Relaxed, Relaxed)
                .is_ok()
            {
                return p; // the newest block, grown or shrunk in place
            }
        }
        if new_size <= layout.size() {
            return p; // a shrink: the tail stays unused until exit
        }
        // SAFETY: `new_size` is non-zero (it is larger than a size) and, as
        // GlobalAlloc::realloc requires of the caller, does not overflow
        // isize when rounded up to the alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout, as above.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, disjoint and at least
            // layout.size() bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size());
                self.dealloc(p, layout);
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arena of its own on the heap (1 MiB is too much for a test's stack).
    fn fresh() -> Box<Arena> {
        // SAFETY: all zeroes is a valid Arena (an empty one, as `new` makes).
        unsafe { Box::<Arena>::new_zeroed().assume_init() }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_the_newest_is_given_back() {
        let a = fresh();
        unsafe {
            let p = a.alloc(layout(3, 1));
            assert_eq!(
                p as usize % MIN_ALIGN,
                0,
                "malloc's alignment, whatever was asked"
            );
            let q = a.alloc(layout(16, 64));
            assert_eq!(q as usize % 64, 0);
            assert!(q as usize >= p as usize + 3);
            let used = a.used();
            a.dealloc(q, layout(16, 64));
            assert!(a.used() < used, "the newest block's room comes back");
            let r = a.alloc(layout(8, 8));
            assert!(r as usize >= p as usize + 3, "never over a live block");
            // p is not the newest: freeing it leaves the offset alone.
            let used = a.used();
            a.dealloc(p, layout(3, 1));
            assert_eq!(a.used(), used);
        }
    }

    #[test]
    fn the_newest_block_grows_in_place_others_move_with_their_bytes() {
        let a = fresh();
        unsafe {
            let p = a.alloc(layout(4, 1));
            p.copy_from(b"abcd".as_ptr(), 4);
            let p2 = a.realloc(p, layout(4, 1), 4000);
            assert_eq!(p2, p, "the newest block grows in place");
            let q = a.alloc(layout(4, 1));
            let p3 = a.realloc(p2, layout(4000, 1), 8000);
            assert_ne!(p3, p2, "not the newest: moved");
            assert_eq!(std::slice::from_raw_parts(p3, 4), b"abcd");
            assert!(p3 as usize >= q as usize + 4);
            let p4 = a.realloc(p3, layout(8000, 1), 10);
            assert_eq!(p4, p3, "a shrink stays in place");
        }
    }

    #[test]
    fn what_does_not_fit_comes_from_the_system_allocator() {
        let a = fresh();
        unsafe {
            let big = a.alloc(layout(SIZE + 1, 8));
            assert!(!big.is_null());
            assert!(a.offset(big).is_none(), "outside the arena");
            big.write_bytes(7, SIZE + 1);
            let small = a.alloc(layout(100, 8));
            assert!(
                a.offset(small).is_some(),
                "the arena still serves small blocks"
            );
            // Filling the arena, then growing its last block past the end: copied out.
            let rest = a.alloc(layout(SIZE - a.used().next_multiple_of(MIN_ALIGN), 1));
            assert!(a.offset(rest).is_some());
            let out = a.realloc(small, layout(100, 8), 200);
            assert!(
                a.offset(out).is_none(),
                "grown out of a full arena into System's"
            );
            a.dealloc(out, layout(200, 8));
            a.dealloc(big, layout(SIZE + 1, 8));
        }
    }

    #[test]
    fn threads_never_share_a_block() {
        let a: &'static Arena = Box::leak(fresh());
        let hs: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || unsafe {
                    let mut ps = Vec::new();
                    for _ in 0..500 {
                        let p = a.alloc(layout(24, 8));
                        p.write_bytes(t, 24);
                        ps.push(p as usize);
                    }
                    std::thread::yield_now();
                    for &p in &ps {
                        let s = std::slice::from_raw_parts(p as *const u8, 24);
                        assert!(s.iter().all(|&b| b == t), "a block was handed out twice");
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}
