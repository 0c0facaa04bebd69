//! The chat service (issue 6, under construction): so far the session store.

pub mod sessions;
