//! A large stack for the expression evaluator, one per thread, reserved once and reused:
//! JSONata's parser, evaluator and value operations (equality, serialisation, descendant
//! search, copies) recurse once per level of the expression or of the values it builds, and
//! a value can nest as deeply as its evaluation's memory budget allows. [`run`] runs a
//! closure on a 1 GiB stack region (address space reserved without commitment: only the
//! pages a deep evaluation touches are ever backed, and they are handed back after it), so
//! no depth the budgets allow can overflow the caller's thread, whatever its own size.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Size of each thread's evaluation stack (reserved address space).
pub const STACK_BYTES: usize = 1 << 30;

/// The part of the stack kept committed between runs; deeper pages are released.
const KEEP_BYTES: usize = 1 << 20;

struct Region {
    base: *mut u8,
    len: usize,
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing runs on it any more
        // (the thread is exiting and `run` never leaves a call on it).
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

thread_local! {
    static REGION: RefCell<Option<Region>> = const { RefCell::new(None) };
    static ON_IT: Cell<bool> = const { Cell::new(false) };
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn reserve() -> Option<Region> {
    let len = STACK_BYTES;
    // SAFETY: an anonymous private mapping with no address hint; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // the lowest page is the guard: running past the end faults instead of writing
    // into whatever lies below
    // SAFETY: the first page of the mapping just created.
    if unsafe { libc::mprotect(p, page(), libc::PROT_NONE) } != 0 {
        // SAFETY: unmapping what was just mapped.
        unsafe { libc::munmap(p, len) };
        return None;
    }
    Some(Region {
        base: p.cast(),
        len,
    })
}

/// Runs `f` on this thread's evaluation stack (in place when already on it). Falls back to
/// a fresh stack from `stacker` if the region cannot be reserved. Panics in `f` propagate.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    if ON_IT.with(Cell::get) {
        return f();
    }
    let region = REGION.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = reserve();
        }
        r.as_ref().map(|g| (g.base, g.len))
    });
    let Some((base, len)) = region else {
        return stacker::maybe_grow(64 << 20, 64 << 20, f);
    };
    let guard = page();
    ON_IT.with(|c| c.set(true));
    // SAFETY: the region is page aligned (so aligned for any target's stack), its size a
    // multiple of the page size, it stays mapped until the thread exits, and nothing else
    // runs on it (`ON_IT`). The callback cannot unwind: panics are caught inside and
    // resumed once back on the thread's own stack.
    let r = unsafe {
        psm::on_stack(base.add(guard), len - guard, || {
            catch_unwind(AssertUnwindSafe(f))
        })
    };
    ON_IT.with(|c| c.set(false));
    // hand back the pages a deep run touched (a no-op for the usual shallow run)
    let keep_from = len - KEEP_BYTES;
    // SAFETY: advice on pages of our own mapping that no frame uses any more.
    unsafe {
        libc::madvise(
            base.add(guard).cast(),
            keep_from - guard,
            libc::MADV_DONTNEED,
        );
    }
    match r {
        Ok(v) => v,
        Err(p) => resume_unwind(p),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_recursion_fits_and_panics_propagate() {
        fn down(n: usize) -> usize {
            let pad = [n as u8; 512];
            if n == 0 {
                0
            } else {
                std::hint::black_box(&pad);
                1 + down(n - 1)
            }
        }
        let h = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| super::run(|| down(200_000)))
            .expect("spawn");
        assert_eq!(h.join().expect("no crash"), 200_000);
        let p = std::panic::catch_unwind(|| super::run(|| panic!("inside")));
        assert!(p.is_err());
        // usable again after a panic, and nested runs stay in place
        assert_eq!(super::run(|| super::run(|| 7)), 7);
    }
}
