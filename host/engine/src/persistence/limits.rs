//! The caps every store enforces on what it is given, identically on every database, so that
//! a name or record one backend takes is never refused by the other: keys (names, ARNs,
//! tokens, journal entry keys) hold no NUL byte (sled separates key parts with it and
//! PostgreSQL's text cannot hold it) and are at most [`MAX_KEY_BYTES`] long (a PostgreSQL index
//! entry must fit in a page); records are at most [`MAX_RECORD_BYTES`]. Callers above the store
//! (the API) refuse far smaller inputs first (AWS's naming rules, its 256 KiB payloads); these
//! caps are the store's own last line.

use super::PersistenceError;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The largest record, in bytes.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Refuses a key with a NUL byte or longer than [`MAX_KEY_BYTES`].
pub fn key(what: &'static str, k: &str) -> Result<(), PersistenceError> {
    if k.len() > MAX_KEY_BYTES {
        return Err(PersistenceError::Invalid {
            what,
            reason: format!(
                "{} bytes long, over the limit of {MAX_KEY_BYTES} bytes",
                k.len()
            ),
        });
    }
    if let Some(i) = k.bytes().position(|b| b == 0) {
        return Err(PersistenceError::Invalid {
            what,
            reason: format!("holds a NUL byte (at byte {i}), which no name may hold"),
        });
    }
    Ok(())
}

/// Refuses a record larger than [`MAX_RECORD_BYTES`].
pub fn record(what: &'static str, v: &[u8]) -> Result<(), PersistenceError> {
    if v.len() > MAX_RECORD_BYTES {
        return Err(PersistenceError::Invalid {
            what,
            reason: format!(
                "{} bytes, over the limit of {MAX_RECORD_BYTES} bytes",
                v.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_oversized_keys_and_records_are_refused_with_their_reason() {
        assert!(key("state machine name", "a'b\"c;--").is_ok());
        let e = key("state machine name", "a\0b").unwrap_err().to_string();
        assert!(e.contains("state machine name") && e.contains("NUL"), "{e}");
        let e = key("task token", &"x".repeat(MAX_KEY_BYTES + 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("task token") && e.contains("1024"), "{e}");
        assert!(key("k", &"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(record("r", &vec![b' '; MAX_RECORD_BYTES]).is_ok());
        let e = record("execution record", &vec![b' '; MAX_RECORD_BYTES + 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("execution record") && e.contains("limit"), "{e}");
    }
}
