//! Amazon Bedrock: the invoker with regional failover (SPEC 8, 9).

pub mod classify;
pub mod health;
pub mod invoker;
pub mod profile;
