//! The `tongban` program: command-line interface, start-up wiring and the server loop.
//! Domain logic lives in the slice crates; this crate only connects them.

pub mod boot;
pub mod cli;
pub mod server;
