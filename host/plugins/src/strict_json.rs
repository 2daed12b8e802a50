//! JSON parsing that refuses duplicate object keys at any depth. serde_json keeps the last of
//! two equal keys silently while other tools keep the first, so a manifest with duplicates could
//! mean one thing to the installer and another to whoever reviewed it; such a file is refused
//! with the line and column of the second key.

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Parses `bytes` as `T`, refusing duplicate keys in any object first.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicateKeys.deserialize(&mut de)?;
    de.end()?;
    serde_json::from_slice(bytes)
}

/// Walks any JSON value, failing on the first object that names a key twice.
struct NoDuplicateKeys;

impl<'de> DeserializeSeed<'de> for NoDuplicateKeys {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicateKeys)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            map.next_value_seed(NoDuplicateKeys)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let ok: serde_json::Value =
            from_slice(br#"{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}"#).unwrap();
        assert_eq!(ok["b"]["a"], 2);
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"a":1}}"#,
            r#"[{"k":[{"a":1,"b":2,"a":3}]}]"#,
            // The same key spelled with an escape is the same key.
            r#"{"a":1,"\u0061":2}"#,
        ] {
            let e = from_slice::<serde_json::Value>(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("appears twice"), "{bad}: {e}");
            assert_eq!(e.line(), 1, "{bad}");
        }
        assert!(from_slice::<serde_json::Value>(b"{} x").is_err());
    }
}
