//! What the process keeps resident (docs/benchmarks.md, the gateway's memory).

/// mimalloc asks for transparent huge pages for its arenas, so each 2 MiB page it
/// touches is resident whole: ~14 MiB of an idle gateway's RSS. None for this process.
pub(crate) fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_t`, v2).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc keeps a page it has emptied for 10 ms before giving it back, so under a
/// steady stream of calls the pages of many calls' short-lived buffers stay resident at
/// once: giving them back at once lowered the gateway's peak by ~1 MiB at 32 calls in
/// flight (docs/benchmarks.md). `MIMALLOC_PURGE_DELAY` in the environment still wins:
/// checked here, because mimalloc reads every option at process load, after which
/// `mi_option_set_default` no longer applies.
pub(crate) fn purge_freed_pages_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's integer options; no memory of ours is touched.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
}

// In release builds the linker lays out the functions a serving gateway runs, then these
// two markers around the functions only start-up ran (`link/text-order.txt`). Distinct
// bodies, so that no pass merges them into one address; unmangled, so that the list can
// name them. No other code defines these names.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn toolmesh_startup_text_begin() -> u32 {
    std::hint::black_box(1)
}

#[allow(unsafe_code)]
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn toolmesh_startup_text_end() -> u32 {
    std::hint::black_box(2)
}

/// Once serving: unmaps the code only start-up ran (parsing the command line and the
/// configuration, building the catalog: ~2 MB), so it no longer counts as resident. The
/// pages stay in the page cache; what runs again (a configuration reload) is mapped back
/// on its first use. Only where the linker laid the start-up code out between the
/// markers.
pub(crate) fn release_startup_text() {
    #[cfg(all(target_os = "linux", toolmesh_text_order))]
    {
        let page = 4096;
        let begin = (toolmesh_startup_text_begin as *const () as usize).next_multiple_of(page);
        let end = toolmesh_startup_text_end as *const () as usize / page * page;
        // Further apart than the whole binary's code: not laid out as ordered.
        if end <= begin || end - begin > 64 << 20 {
            return;
        }
        // SAFETY: the range is our own executable's code, never written: dropping its
        // pages only makes the next use map them again from the file.
        #[allow(unsafe_code)]
        let failed =
            unsafe { libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_DONTNEED) };
        if failed != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not release the start-up code"
            );
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads one of mimalloc's integer options.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn freed_pages_go_back_at_once_unless_the_environment_says_otherwise() {
        let Some(set) = std::env::var_os("MIMALLOC_PURGE_DELAY") else {
            // mimalloc's default purge delay: the constant names that option.
            assert_eq!(purge_delay(), 10);
            purge_freed_pages_at_once();
            assert_eq!(purge_delay(), 0);
            return;
        };
        purge_freed_pages_at_once();
        assert_eq!(Some(purge_delay().to_string()), set.into_string().ok());
    }
}
