//! Integration tests: the real `musync` binary on real files, checked by independent readers
//! (ffmpeg for audio, mutagen for tags).

mod audio;
mod bad_input;
mod cli;
mod config;
mod convert;
mod crash;
mod everyday;
mod exit_codes;
mod faults;
mod hostile;
mod interrupt;
mod listener;
mod misuse;
mod pipeline;
mod push;
mod remotes;
mod resources;
mod security;
mod subsonic;
mod tag;
mod testbench;
mod util;
