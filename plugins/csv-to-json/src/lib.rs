//! `csv-to-json`: reads a CSV file from a granted directory and returns its rows as JSON objects.
//!
//! Input:
//! `{"path": "/data/in/x.csv", "output"?: "/data/out/x.json", "delimiter"?: ",",
//!   "has_headers"?: true, "infer_types"?: false, "include_rows"?: true}`
//! Output: `{"columns": [..], "count": n, "rows": [{col: value, ..}, ..], "output"?: path}`.
//! Values are strings unless `infer_types` (then integers, floats, booleans and empty -> null).
//! Without headers the columns are `column_1`, `column_2`, ... With `output`, the rows are also
//! written there as a JSON array (`include_rows: false` leaves them out of the result).
use serde::Deserialize;
use weft_guest::{json, Context, TaskError, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    path: String,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default = "yes")]
    has_headers: bool,
    #[serde(default)]
    infer_types: bool,
    #[serde(default = "yes")]
    include_rows: bool,
}

fn yes() -> bool {
    true
}

fn infer(s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = s.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            return json!(f);
        }
    }
    match s {
        "true" | "TRUE" | "True" => Value::Bool(true),
        "false" | "FALSE" | "False" => Value::Bool(false),
        _ => Value::String(s.to_string()),
    }
}

fn run(ctx: &Context, input: Input) -> Result<Value, TaskError> {
    let delimiter = match input.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            return Err(TaskError::invalid_input(format!(
                "delimiter must be one ASCII character, got {d:?}"
            )))
        }
    };
    let text = ctx.read(&input.path)?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(input.has_headers)
        .flexible(false)
        .from_reader(text.as_slice());
    let mut columns: Vec<String> = if input.has_headers {
        reader
            .headers()
            .map_err(|e| csv_error(&input.path, e))?
            .iter()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&input.path, e))?;
        while columns.len() < record.len() {
            columns.push(format!("column_{}", columns.len() + 1));
        }
        let mut row = serde_json::Map::new();
        for (name, field) in columns.iter().zip(record.iter()) {
            let v = if input.infer_types {
                infer(field)
            } else {
                Value::String(field.to_string())
            };
            row.insert(name.clone(), v);
        }
        rows.push(Value::Object(row));
    }
    let count = rows.len();
    ctx.info(format!(
        "{}: {count} rows, {} columns",
        input.path,
        columns.len()
    ));
    let mut out = json!({ "columns": columns, "count": count });
    if let Some(output) = &input.output {
        let bytes = serde_json::to_vec(&rows).expect("rows serialize");
        ctx.write(output, bytes)?;
        out["output"] = json!(output);
    }
    if input.include_rows || input.output.is_none() {
        out["rows"] = Value::Array(rows);
    }
    Ok(out)
}

fn csv_error(path: &str, e: csv::Error) -> TaskError {
    let at = e
        .position()
        .map(|p| format!(" (line {})", p.line()))
        .unwrap_or_default();
    TaskError::new("Csv.ParseError", format!("{path}{at}: {e}"))
}

weft_guest::export_operator!(run);
