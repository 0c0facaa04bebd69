//! The chat service (issue 6, under construction): so far its configuration, rate limits and session store.

pub mod config;
pub mod limits;
pub mod sessions;
