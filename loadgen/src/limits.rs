//! The open-files limit: raised to the hard limit, with a warning when the viewers of this
//! process cannot fit under it.

/// File descriptors kept free for everything that is not a viewer socket.
const SPARE_FDS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard one; warns if `viewers` would not fit.
pub fn raise_open_files(viewers: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, initialized rlimit struct.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    if viewers as u64 + SPARE_FDS > soft {
        eprintln!(
            "loadgen: warning: {viewers} viewers need more than the open-files limit {soft} allows; \
             run several processes (--viewer-offset) instead"
        );
    }
}
