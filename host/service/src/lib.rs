//! The chat service (SPEC 10): HTTP and WebSocket over the sandboxed policy,
//! the Bedrock invoker, a response cache, sessions, rate limits and metrics.
//! Start at [`server::start`] (build everything from a [`config::Resolved`]
//! and listen); the request path itself, read top to bottom, is
//! [`chat::handle`].

pub mod address;
pub mod app;
pub mod aws_stores;
pub mod batch;
pub mod budgets;
pub mod cache;
pub mod chat;
pub mod config;
pub mod conn;
pub mod dynamo_sessions;
pub mod errors;
pub mod estimator;
pub mod http;
pub mod identity;
pub mod jobs_http;
pub mod limits;
pub mod metrics;
pub mod outcome;
pub mod redis_store;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod shared_budgets;
pub mod shared_health;
pub mod shared_limits;
pub mod ssm_config;
pub mod store_metrics;
pub mod ws;
