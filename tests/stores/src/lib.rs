//! Real shared stores for the tests, each a child process on a loopback
//! port of its own that lives as long as its value: Debian's `redis-server`
//! and moto's server (DynamoDB, SQS and SSM over the AWS wire protocols),
//! both installed by `scripts/setup.sh`. Nothing here imitates a store.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a store that cannot start is the test failing"
)]

mod moto_server;
mod redis_server;

pub use moto_server::MotoServer;
pub use redis_server::RedisServer;

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
