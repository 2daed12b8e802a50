//! One test body, two storage backends: [`on_both_backends!`] turns a test body taking a
//! [`Backend`] into a module of two tests, `sled` (the embedded store in `$WEFT_HOME`) and
//! `postgres` (a fresh database of the test cluster, given to every `weft` process as `WEFT_DB`).
//! A body starts its processes through [`Backend::apply`], so the same steps and assertions run
//! against either store.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::pg_nodes::fresh_database;

/// The store a test's `weft` processes use.
#[derive(Clone)]
pub enum Backend {
    /// `$WEFT_HOME/db` (no `WEFT_DB`).
    Sled,
    /// A database of its own on the test cluster.
    Postgres { url: String },
}

impl Backend {
    /// A fresh database on the test cluster; `None` when PostgreSQL cannot be had here (skipped
    /// loudly, or a failure under `WEFT_REQUIRE_PG=1`: see [`super::pg_cluster`]).
    pub fn postgres() -> Option<Backend> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tag = format!("both{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let (_, url, _) = fresh_database(&tag)?;
        Some(Backend::Postgres { url })
    }

    /// The database URL (`None` on sled).
    pub fn url(&self) -> Option<&str> {
        match self {
            Backend::Sled => None,
            Backend::Postgres { url } => Some(url),
        }
    }

    /// Points `cmd` (a `weft` process) at this store: `WEFT_DB` set, or removed on sled so a
    /// developer's own `WEFT_DB` cannot leak in.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        match self {
            Backend::Sled => cmd.env_remove("WEFT_DB"),
            Backend::Postgres { url } => cmd.env("WEFT_DB", url),
        }
    }
}

/// `on_both_backends!(name);` after `fn name(backend: &Backend) { ... }`: the module `name`
/// with the tests `sled` and `postgres`, each running the body on its store.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sled() {
                super::$name(&$crate::common::Backend::Sled)
            }

            #[test]
            fn postgres() {
                if let Some(b) = $crate::common::Backend::postgres() {
                    super::$name(&b)
                }
            }
        }
    };
}
