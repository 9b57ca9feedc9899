//! musync's library: every stage of the pipeline (scan, convert, tag, manifest, push) and the
//! parsers it owns. The `musync` binary is a thin command line over it; the fuzz targets in
//! `fuzz/` call the parsers directly.

pub mod audio;
pub mod binfmt;
pub mod cli;
pub mod commands;
pub mod config;
pub mod convert;
pub mod digest;
pub mod fsutil;
pub mod fuzzing;
pub mod genre;
pub mod init;
pub mod interrupt;
#[cfg(test)]
mod layers_tests;
pub mod libsync;
pub mod lock;
pub mod manifest;
pub mod manual;
pub mod metadata;
pub mod overlap;
pub mod pipeline;
pub mod push;
pub mod rclone;
pub mod relpath;
pub mod report;
pub mod scan;
pub mod settings;
pub mod status;
pub mod subsonic;
pub mod summary;
pub mod tag;
pub mod verify;
