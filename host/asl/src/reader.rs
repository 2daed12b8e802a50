//! Decoding of Map `ItemReader` sources (JSON array, JSON Lines, CSV with a header row or
//! given headers). The bytes come from the caller's [`crate::express::ItemReader`]; this
//! module never touches files.

use serde_json::{Map, Value};

/// Splits CSV text into records (RFC 4180 quoting).
fn csv_records(text: &str) -> Result<Vec<Vec<String>>, String> {
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
            ',' => row.push(std::mem::take(&mut field)),
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
/// `headers` are the given column names (else the first row is the header).
pub fn decode(
    bytes: &[u8],
    input_type: &str,
    headers: Option<&[String]>,
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
            let mut rows = csv_records(text)?.into_iter();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_and_json() {
        let v = decode(b"a,b\n1,\"x,\"\"y\"\"\"\n2,z\n", "CSV", None).unwrap();
        assert_eq!(
            v,
            vec![
                json!({"a": "1", "b": "x,\"y\""}),
                json!({"a": "2", "b": "z"})
            ]
        );
        assert_eq!(
            decode(b"[1,2]", "JSON", None).unwrap(),
            vec![json!(1), json!(2)]
        );
        assert!(decode(b"{}", "JSON", None).is_err());
        assert_eq!(decode(b"1\n\n2\n", "JSONL", None).unwrap().len(), 2);
    }
}
