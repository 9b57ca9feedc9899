//! Ctrl-C (SIGINT) and SIGTERM. The first asks the run to stop: the stages stop starting new
//! work, let what is in flight finish and be recorded (except a running rclone, which `rclone`
//! stops within a few seconds: its uploads wait under a hidden name, so nothing is left half
//! done), save the manifest, and main exits 130.
//! The second exits at once with 130. That is safe because every file musync writes goes to a
//! `.musync-tmp-*` name and is renamed into place (the next run removes the leftovers), and the
//! journal survives a torn last line. This module only sets and reads the flag; it never decides
//! what a stage does with it.

use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The exit status after an interruption: 128 + SIGINT, as shells report it.
pub const EXIT_STATUS: i32 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the handlers; called once, at startup.
pub fn install() -> std::io::Result<()> {
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it runs before the flag is set: it does nothing on the first
        // signal and exits on the second.
        flag::register_conditional_shutdown(signal, EXIT_STATUS, &INTERRUPTED)?;
        flag::register(signal, &INTERRUPTED)?;
    }
    Ok(())
}

/// Whether a first Ctrl-C or SIGTERM has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error of a stage that stopped before it could change anything, because of Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted before anything was changed")]
pub struct Interrupted;
