//! The decision core of mangaassist: pure functions over data.
//!
//! Start with [`api`]: [`api::check_report`], [`api::body_report`] and
//! [`api::cache_key_report`] give the answers every engine returns, and
//! [`api::screen`] decides whether the service takes a request. Under
//! them sit the request contract ([`contract`], [`schema`]), the message
//! checks ([`policy::Policy`]), [`sanitize()`](sanitize::sanitize), the token
//! estimate ([`tokens`]), the Claude body ([`body`]), the cache key
//! ([`cache_key`]) and the model catalog ([`models`]).
//!
//! No I/O, no clock, no global state (`core/clippy.toml` enforces it): the
//! same input gives the same output natively, in browsers and in wasmtime.

pub mod api;
pub mod body;
pub mod cache_key;
pub mod calibration;
mod chars;
pub mod continuation;
pub mod contract;
mod error;
pub mod jobs;
pub mod models;
mod nfc;
mod pattern;
pub mod policy;
mod pyjson;
pub mod sanitize;
mod scan;
pub mod schema;
mod screen;
pub mod spend;
pub mod tokens;
mod verdict;
mod word_char;

pub use error::Error;
