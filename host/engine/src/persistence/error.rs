//! [`PersistenceError`]: what the persistence layer reports, whichever database is below.

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A database URL that cannot be used.
    #[error("bad database URL: {0} (expected postgres://USER@HOST:PORT/DB)")]
    BadUrl(String),
    /// The database server cannot be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {host}:{port}: {reason}")]
    Connect {
        /// Host as given in the URL.
        host: String,
        /// Port (5432 unless given).
        port: u16,
        /// The driver's reason.
        reason: String,
    },
    /// The database was migrated by a newer weft.
    #[error(
        "the database's weft schema is version {found}, newer than version {known} that this weft \
         knows: upgrade weft on this node (or point it at another database)"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// A stored record cannot be decoded (damaged or foreign).
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A key or record the stores refuse (a NUL byte, a size over the caps of [`super::limits`]),
    /// refused the same way by every database.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which key or record.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A write guarded by an execution's lease was refused: another node holds a newer epoch.
    #[error("execution {execution}: lease epoch {epoch} is stale; the write was refused")]
    Fenced {
        /// Execution ARN.
        execution: String,
        /// The writer's epoch.
        epoch: i64,
    },
}

impl PersistenceError {
    /// A driver error, with its causes (tokio-postgres keeps the server's message in its
    /// source).
    pub fn postgres(e: &(dyn std::error::Error + 'static)) -> Self {
        PersistenceError::Postgres(chain(e))
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
