//! Integration tests: the real `musync` binary on real files, checked by independent readers
//! (ffmpeg for audio, mutagen for tags).

mod bad_input;
mod cli;
mod config;
mod convert;
mod crash;
mod everyday;
mod faults;
mod hostile;
mod interrupt;
mod misuse;
mod push;
mod remotes;
mod resources;
mod security;
mod subsonic;
mod tag;
mod testbench;
mod util;
