//! The misuse harness: the mistakes people make with musync (two runs at once, folders inside
//! one another, a server that dies, a share that ignores case, …), each as a test that broke
//! before its fix. Each asserts one clear line, the right exit code, nothing lost, and that the
//! next normal run converges.

mod bisync;
mod drift;
mod early_listing;
mod environment;
mod fresh;
mod libsync_cli;
mod libsync_fixes;
mod lock;
mod onescan;
mod overlap;
mod peers;
mod pull;
mod remote_safety;
mod remote_upload;
mod sync_peer;
mod sync_plan;
mod truth;
mod upgrade;
mod user;
