//! Decoding of Map `ItemReader` sources (JSON array, JSON Lines, CSV with a header row or
//! given headers and a delimiter, and S3 Inventory `manifest.json` files with their CSV data
//! files, gzipped or not). The bytes come from the caller's [`crate::express::ItemReader`];
//! this module never touches files.

use serde_json::{Map, Value};

/// Splits CSV text into records (RFC 4180 quoting) separated by `delim`.
fn csv_records(text: &str, delim: char) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_q = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_q {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_q = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => in_q = true,
            c if c == delim => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            c => field.push(c),
        }
    }
    if in_q {
        return Err("unterminated quoted CSV field".into());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// Decodes a source into items. `input_type` is `JSON`, `JSONL` or `CSV`; for CSV,
/// `headers` are the given column names (else the first row is the header) and `delim` the
/// field separator.
pub fn decode(
    bytes: &[u8],
    input_type: &str,
    headers: Option<&[String]>,
    delim: char,
) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the source is not UTF-8: {e}"))?;
    match input_type {
        "JSON" => match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(a)) => Ok(a),
            Ok(other) => Err(format!(
                "the JSON source must hold an array, found {}",
                crate::jsonpath::type_name(&other)
            )),
            Err(e) => Err(format!("invalid JSON source: {e}")),
        },
        "JSONL" => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect(),
        "CSV" => {
            let mut rows = csv_records(text, delim)?.into_iter();
            let hdr: Vec<String> = match headers {
                Some(h) => h.to_vec(),
                None => rows.next().unwrap_or_default(),
            };
            Ok(rows
                .map(|r| {
                    let mut m = Map::new();
                    for (i, h) in hdr.iter().enumerate() {
                        m.insert(
                            h.clone(),
                            Value::String(r.get(i).cloned().unwrap_or_default()),
                        );
                    }
                    Value::Object(m)
                })
                .collect())
        }
        other => Err(format!("unsupported InputType '{other}'")),
    }
}

/// The largest S3 Inventory data file once decompressed, and the most data files one
/// manifest may name.
pub const MAX_MANIFEST_DATA_BYTES: u64 = 256 << 20;
pub const MAX_MANIFEST_FILES: usize = 10_000;

/// An S3 Inventory `manifest.json`: the bucket holding the data files, their keys and the
/// column names of their CSV rows.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryManifest {
    /// `destinationBucket` without its `arn:aws:s3:::` prefix.
    pub bucket: String,
    /// `files[].key`.
    pub keys: Vec<String>,
    /// `fileSchema` split on commas (`Bucket, Key, Size, ...`).
    pub columns: Vec<String>,
}

/// Reads an S3 Inventory `manifest.json` (only `fileFormat` CSV has rows weft can decode).
pub fn inventory_manifest(bytes: &[u8]) -> Result<InventoryManifest, String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the MANIFEST source is not JSON: {e}"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the manifest's /{k} is missing or not a string"))
    };
    let format = field("fileFormat")?;
    if !format.eq_ignore_ascii_case("CSV") {
        return Err(format!(
            "the manifest's /fileFormat is {format}; only CSV inventories can be read"
        ));
    }
    let dest = field("destinationBucket")?;
    let bucket = dest
        .strip_prefix("arn:aws:s3:::")
        .unwrap_or(dest)
        .to_string();
    let columns = field("fileSchema")?
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    let files = v
        .get("files")
        .and_then(Value::as_array)
        .ok_or("the manifest's /files is missing or not an array")?;
    if files.len() > MAX_MANIFEST_FILES {
        return Err(format!(
            "the manifest names {} data files, more than {MAX_MANIFEST_FILES}",
            files.len()
        ));
    }
    let keys = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.get("key")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("the manifest's /files/{i}/key is missing or not a string"))
        })
        .collect::<Result<_, _>>()?;
    Ok(InventoryManifest {
        bucket,
        keys,
        columns,
    })
}

/// Decodes one inventory data file (gzip when its key ends in `.gz`) into items named by
/// the manifest's columns.
pub fn inventory_rows(key: &str, bytes: &[u8], columns: &[String]) -> Result<Vec<Value>, String> {
    let plain;
    let data = if key.ends_with(".gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_MANIFEST_DATA_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("data file {key}: not gzip: {e}"))?;
        if out.len() as u64 > MAX_MANIFEST_DATA_BYTES {
            return Err(format!(
                "data file {key} holds more than {MAX_MANIFEST_DATA_BYTES} bytes once decompressed"
            ));
        }
        plain = out;
        &plain[..]
    } else {
        bytes
    };
    decode(data, "CSV", Some(columns), ',').map_err(|e| format!("data file {key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_and_json() {
        let v = decode(b"a,b\n1,\"x,\"\"y\"\"\"\n2,z\n", "CSV", None, ',').unwrap();
        assert_eq!(
            v,
            vec![
                json!({"a": "1", "b": "x,\"y\""}),
                json!({"a": "2", "b": "z"})
            ]
        );
        assert_eq!(
            decode(b"[1,2]", "JSON", None, ',').unwrap(),
            vec![json!(1), json!(2)]
        );
        assert!(decode(b"{}", "JSON", None, ',').is_err());
        assert_eq!(decode(b"1\n\n2\n", "JSONL", None, ',').unwrap().len(), 2);
        assert_eq!(
            decode(b"a|b\n1|x,y\n", "CSV", None, '|').unwrap(),
            vec![json!({"a": "1", "b": "x,y"})]
        );
    }

    #[test]
    fn inventory_manifests_and_gzipped_rows() {
        let m = inventory_manifest(
            br#"{"sourceBucket":"src","destinationBucket":"arn:aws:s3:::inv",
                "fileFormat":"CSV","fileSchema":"Bucket, Key, Size",
                "files":[{"key":"inv/data/a.csv.gz","size":1,"MD5checksum":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(m.bucket, "inv");
        assert_eq!(m.keys, vec!["inv/data/a.csv.gz"]);
        assert_eq!(m.columns, vec!["Bucket", "Key", "Size"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"\"src\",\"a.txt\",\"3\"\n").unwrap();
        let rows = inventory_rows("a.csv.gz", &gz.finish().unwrap(), &m.columns).unwrap();
        assert_eq!(
            rows,
            vec![json!({"Bucket": "src", "Key": "a.txt", "Size": "3"})]
        );
        assert!(inventory_rows("a.csv.gz", b"not gzip", &m.columns).is_err());
        assert!(inventory_manifest(br#"{"fileFormat":"ORC"}"#)
            .unwrap_err()
            .contains("CSV"));
    }
}
