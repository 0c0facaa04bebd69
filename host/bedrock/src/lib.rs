//! Amazon Bedrock with regional failover (SPEC 8, 9). Start at
//! [`invoker::Invoker`]: one SDK client per region, tried in priority order
//! with cooldowns ([`health`]), failures sorted into "another region may fix
//! it" or not ([`classify`]), client settings per `MANGA_ENV` ([`profile`]),
//! and an injectable [`clock`].

pub mod classify;
pub mod clock;
pub mod health;
pub mod invoker;
pub mod profile;
