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

pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// A value whose all-zero bytes are a valid value (what `zeroed` hands out).
pub(crate) trait Zeroable: Copy + Send + Sync + 'static {}
impl Zeroable for i8 {}
impl Zeroable for u16 {}
impl Zeroable for f32 {}

/// A fixed-length buffer of `T`, on huge pages when it spans one.
pub(crate) struct HugeBuffer<T: Zeroable = i8> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// SAFETY: the buffer owns its memory exclusively, like a Vec<T> of a Send + Sync T.
unsafe impl<T: Zeroable> Send for HugeBuffer<T> {}
// SAFETY: shared access only reads.
unsafe impl<T: Zeroable> Sync for HugeBuffer<T> {}

impl<T: Zeroable> HugeBuffer<T> {
    /// Uninitialized room for `len` values, advised huge where it spans a huge page.
    fn allocate(len: usize) -> (NonNull<T>, Layout) {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("buffer size overflows");
        let huge = bytes >= HUGE_PAGE;
        let align = if huge { HUGE_PAGE } else { 64 }.max(std::mem::align_of::<T>());
        let layout = Layout::from_size_align(bytes.max(1), align).expect("buffer size overflows");
        // SAFETY: the layout's size is non-zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else {
            alloc::handle_alloc_error(layout)
        };
        if huge {
            advise_huge(raw, bytes / HUGE_PAGE * HUGE_PAGE);
        }
        (ptr, layout)
    }

    /// `len` zeros.
    pub(crate) fn zeroed(len: usize) -> Self {
        let (ptr, layout) = Self::allocate(len);
        // SAFETY: `ptr` holds layout.size() writable bytes; zero bytes are a valid T.
        unsafe { std::ptr::write_bytes(ptr.as_ptr().cast::<u8>(), 0, layout.size()) };
        Self { ptr, len, layout }
    }

    /// A copy of `values` (each page touched once, by the copy).
    pub(crate) fn copy_of(values: &[T]) -> Self {
        let (ptr, layout) = Self::allocate(values.len());
        // SAFETY: `ptr` holds room for values.len() values and does not overlap `values`.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), ptr.as_ptr(), values.len()) };
        Self {
            ptr,
            len: values.len(),
            layout,
        }
    }

    /// Whether the buffer lies on memory advised huge (it spans at least one huge page).
    #[cfg(test)]
    fn is_huge(&self) -> bool {
        self.layout.align() == HUGE_PAGE
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

impl<T: Zeroable> Deref for HugeBuffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr holds len initialized values owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> DerefMut for HugeBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, and &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> AsRef<[T]> for HugeBuffer<T> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T: Zeroable> Drop for HugeBuffer<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `allocate` with this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl<T: Zeroable> std::fmt::Debug for HugeBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBuffer({} values)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_writable_and_aligned_when_large() {
        for len in [0, 1, 1000, HUGE_PAGE + 123] {
            let mut b = HugeBuffer::<i8>::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|&v| v == 0));
            if len > 0 {
                b[len - 1] = 7;
                assert_eq!(b[len - 1], 7);
            }
            assert_eq!(b.is_huge(), len >= HUGE_PAGE);
            if len >= HUGE_PAGE {
                assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
            }
        }
    }

    #[test]
    fn copies_hold_the_values_on_huge_pages_when_large() {
        for len in [0, 3, HUGE_PAGE / 2 + 5] {
            let values: Vec<u16> = (0..len).map(|i| (i * 7) as u16).collect();
            let b = HugeBuffer::copy_of(&values);
            assert_eq!(&*b, &values[..]);
            assert_eq!(b.is_huge(), len * 2 >= HUGE_PAGE);
        }
        let floats = vec![1.5f32; HUGE_PAGE / 4];
        let b = HugeBuffer::copy_of(&floats);
        assert!(b.is_huge() && (b.as_ptr() as usize).is_multiple_of(HUGE_PAGE) && b[7] == 1.5);
    }
}
