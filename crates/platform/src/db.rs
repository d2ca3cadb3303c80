//! The database handle: one `sqlx` Any pool over SQLite (WAL) or PostgreSQL, chosen from the URL.
//!
//! Queries are written once in portable SQL with `$1` placeholders (both drivers accept them).
//! Every state change runs in a [`WriteTx`]; on SQLite, write transactions are serialised in
//! process so that one never fails with `SQLITE_BUSY` when it upgrades from read to write.

use std::{path::Path, sync::Arc, time::Duration};

use sqlx::{
    Any, AnyConnection, AnyPool, Transaction,
    any::{AnyPoolOptions, install_default_drivers},
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// Embedded SQLite, the default.
    Sqlite,
    /// PostgreSQL, for scale-out.
    Postgres,
}

/// A cloneable database handle.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
    write_gate: Option<Arc<Mutex<()>>>,
}

/// A write transaction. Commit it, or it rolls back on drop.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    kind: DbKind,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Which engine this transaction runs on.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    /// Connects to `url`. For SQLite the parent directory is created and WAL mode is switched on.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
        install_default_drivers();
        let kind = if url.starts_with("sqlite:") { DbKind::Sqlite } else { DbKind::Postgres };
        if kind == DbKind::Sqlite {
            ensure_sqlite_dir(url);
        }
        let mut opts = AnyPoolOptions::new().max_connections(max_connections.max(1)).acquire_timeout(Duration::from_secs(10));
        if kind == DbKind::Sqlite {
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in
                        ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=10000"]
                    {
                        sqlx::Executor::execute(&mut *conn, pragma).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = opts.connect(url).await?;
        let write_gate = (kind == DbKind::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Db { pool, kind, write_gate })
    }

    /// The pool, for reads outside a write transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Refreshes the query planner's statistics where they are missing or stale. SQLite never
    /// gathers them by itself, and without them the to-do list over 100 000 tasks is planned
    /// three times slower; PostgreSQL's autovacuum does it already, so this is a no-op there.
    pub async fn optimize(&self) -> Result<(), sqlx::Error> {
        if self.kind == DbKind::Sqlite {
            // 0x10002: consider every table, not only those this connection used; analyse with
            // SQLite's built-in row limit, so it stays fast on large tables.
            sqlx::query("PRAGMA optimize=0x10002").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Begins a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let gate = match &self.write_gate {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, kind: self.kind, _gate: gate })
    }

    /// Checks that the database answers (for /readyz).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Pool statistics: (open connections, idle connections).
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn ensure_sqlite_dir(url: &str) {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Converts a stored 0/1 integer to a bool (booleans are BIGINT on both engines).
pub fn flag(v: i64) -> bool {
    v != 0
}
