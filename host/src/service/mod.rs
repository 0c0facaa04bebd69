//! The chat service (issue 6, under construction): so far its configuration and session store.

pub mod config;
pub mod sessions;
