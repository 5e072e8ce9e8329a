//! Scalers that read a broker or queue: how many messages or jobs wait (and, where the broker knows it,
//! for which consumer).

#[cfg(feature = "activemq")]
pub mod activemq;
#[cfg(feature = "artemis-queue")]
pub mod artemis_queue;
// What activemq and artemis-queue share.
#[cfg(feature = "apache-kafka")]
pub mod apache_kafka;
#[cfg(feature = "beanstalkd")]
pub mod beanstalkd;
#[cfg(any(feature = "activemq", feature = "artemis-queue"))]
mod jolokia;
#[cfg(feature = "kafka")]
pub mod kafka;

#[cfg(feature = "nats-jetstream")]
pub mod nats_jetstream;
#[cfg(feature = "nsq")]
pub mod nsq;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
