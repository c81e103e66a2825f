//! Weight storage on transparent huge pages where the system offers them.
//!
//! A one-row product streams every weight from memory once per step. On 4 KiB pages that is a
//! TLB miss every page, and the hardware prefetcher stops at every page boundary; on 2 MiB pages
//! neither happens. Buffers of at least one huge page are allocated on a 2 MiB boundary and
//! advised `MADV_HUGEPAGE` (Linux) before anything touches them, so their pages are huge from
//! the first write; smaller buffers, and other systems, get ordinary memory.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;

/// A zero-initialized, fixed-length byte buffer (i8), on huge pages when large enough.
pub(crate) struct HugeBuffer {
    ptr: NonNull<i8>,
    len: usize,
    layout: Layout,
}

// SAFETY: the buffer owns its memory exclusively, like a Vec<i8>.
unsafe impl Send for HugeBuffer {}
// SAFETY: shared access only reads.
unsafe impl Sync for HugeBuffer {}

impl HugeBuffer {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        let align = if len >= HUGE_PAGE { HUGE_PAGE } else { 64 };
        let layout = Layout::from_size_align(len.max(1), align).expect("buffer size overflows");
        // SAFETY: the layout's size is non-zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<i8>()) else {
            alloc::handle_alloc_error(layout)
        };
        if align == HUGE_PAGE {
            advise_huge(raw, len / HUGE_PAGE * HUGE_PAGE);
        }
        // SAFETY: `raw` holds layout.size() >= len writable bytes.
        unsafe { std::ptr::write_bytes(raw, 0, layout.size()) };
        Self { ptr, len, layout }
    }
}

#[cfg(target_os = "linux")]
fn advise_huge(start: *mut u8, len: usize) {
    // SAFETY: [start, start + len) lies inside one live allocation; the advice changes how its
    // pages are backed, never their contents. Failure (THP disabled) leaves ordinary pages.
    unsafe {
        libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_start: *mut u8, _len: usize) {}

impl Deref for HugeBuffer {
    type Target = [i8];
    fn deref(&self) -> &[i8] {
        // SAFETY: ptr holds len initialized bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for HugeBuffer {
    fn deref_mut(&mut self) -> &mut [i8] {
        // SAFETY: as in deref, and &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl std::fmt::Debug for HugeBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBuffer({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_writable_and_aligned_when_large() {
        for len in [0, 1, 1000, HUGE_PAGE + 123] {
            let mut b = HugeBuffer::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&v| v == 0));
            if len > 0 {
                b[len - 1] = 7;
                assert_eq!(b[len - 1], 7);
            }
            if len >= HUGE_PAGE {
                assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
            }
        }
    }
}
