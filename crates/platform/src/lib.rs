//! The platform slice (平台层): what every other slice shares — configuration, the database
//! (SQLite or PostgreSQL behind one pool), migrations, write transactions, the transactional
//! outbox (事务性发件箱), background jobs, the clock and the shared error type.

pub mod blobs;
pub mod clock;
pub mod config;
pub mod csv_export;
pub mod db;
pub mod error;
pub mod jobs;
pub mod migrate;
pub mod ofd;
pub mod outbox;
pub mod text;
pub mod upload;

pub use config::Config;
pub use db::{Db, DbKind, WriteTx};
pub use error::{DomainError, FieldError};
