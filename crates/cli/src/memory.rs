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
