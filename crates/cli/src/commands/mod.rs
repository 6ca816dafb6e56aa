//! One module per `mm` command.

pub mod list;
