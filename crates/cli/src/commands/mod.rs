//! One module per `mm` command.

pub mod cancel;
pub mod download;
pub mod list;
