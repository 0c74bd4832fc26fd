//! Ctrl-C (SIGINT) and SIGTERM during `train`: the run stops after the step in progress instead
//! of dying mid-write, so it leaves what it would leave on any error: before its first
//! checkpoint nothing (the staging directory is removed, an old run it was to replace stays),
//! afterwards a run that `--resume` continues from its last checkpoint. A second signal ends the
//! process at once, as if no handler were installed (the first one restores the default).
//!
//! Only `train` installs the handler, for as long as its loop runs ([`Guard`]); every other
//! command keeps the default (it writes its outputs at the end, atomically). A `kill -9` cannot be
//! caught: the next run in the same place removes what it left (`run::recover_interrupted`).
//! On Windows nothing is installed (Ctrl-C ends the process there, as before).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for since the guard was installed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The handler, installed while it lives.
pub struct Guard(());

impl Guard {
    /// Installs the handler for SIGINT and SIGTERM.
    pub fn install() -> Guard {
        REQUESTED.store(false, Ordering::SeqCst);
        #[cfg(unix)]
        // SAFETY: `on_signal` only stores to an atomic and calls async-signal-safe functions
        // (write, signal)
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
        Guard(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restoring the default disposition
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
        }
    }
}

#[cfg(unix)]
extern "C" fn on_signal(_signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
    const SAYS: &[u8] = b"\ninterrupted: stopping after this step (again to stop at once)\n";
    // SAFETY: write(2) and signal(2) are async-signal-safe
    unsafe {
        libc::write(2, SAYS.as_ptr().cast(), SAYS.len());
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
}
