//! Scalers that query a data store: Redis lists and streams (standalone, cluster, sentinel),
//! PostgreSQL and MySQL. Connections are shared per address and credentials (see each module).

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgresql")]
pub mod postgresql;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis-streams")]
pub mod redis_streams;
