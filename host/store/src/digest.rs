//! The blake3 digest that names every blob, with its text forms (`HEX` and `blake3:HEX`).

use crate::StoreError;
use std::fmt;
use std::str::FromStr;

/// A blake3 digest of a blob's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_hash(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn from_bytes_slice(b: &[u8]) -> Result<Self, StoreError> {
        let arr: [u8; 32] = b.try_into().map_err(|_| StoreError::BadDigest {
            text: format!("{} raw bytes", b.len()),
            reason: "a digest is 32 bytes",
        })?;
        Ok(Self(arr))
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The short form shown to humans (first 12 hex digits).
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

impl FromStr for Digest {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("blake3:").unwrap_or(s);
        if hex.len() != 64 {
            return Err(StoreError::BadDigest {
                text: s.to_string(),
                reason: "expected 64 hex digits (optionally prefixed by `blake3:`)",
            });
        }
        blake3::Hash::from_hex(hex)
            .map(Self::from_hash)
            .map_err(|_| StoreError::BadDigest {
                text: s.to_string(),
                reason: "not hexadecimal",
            })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let d = Digest::of(b"abc");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert!("blake3:zz".parse::<Digest>().is_err());
        let e = "g".repeat(64).parse::<Digest>().unwrap_err().to_string();
        assert!(e.contains("not hexadecimal"), "{e}");
    }
}
