//! `redis`, `redis-cluster`, `redis-sentinel`: the length of a list (or the size of a set, sorted set or
//! hash) under one key.
//!
//! This module also holds what the three Redis topologies share with `redis-streams`: the connection
//! parameters (`address`/`addresses` or `host`+`port`/`hosts`+`ports`, credentials, sentinel settings,
//! TLS) and the connections, cached per connection settings in [`RedisClients`].
//!
//! One module per concern: `connection` (the connection settings, parsed as upstream does), `client`
//! (the shared connections to the three topologies, their timeouts and reply decoding) and `list` (the
//! list-length trigger: its settings and one script per sample).

mod client;
mod connection;
mod list;

// What `redis-streams` shares.
pub use client::{BUILD_TIMEOUT, RedisClients, sample_timeout};
#[cfg(feature = "redis-streams")]
pub(crate) use client::{RedisHandle, timeouts, value_int, value_text};
pub use connection::{RedisConnection, RedisKind, RedisTls, parse_connection, split_host_port};
pub use list::{RedisConfig, parse, parse_config};
