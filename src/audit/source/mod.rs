//! Where objects come from: files and directories, the git index (`--staged`), a live cluster.

pub mod cluster;
pub mod files;
pub mod staged;
