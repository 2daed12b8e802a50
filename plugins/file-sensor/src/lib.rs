//! `file-sensor` (sensor world): `true` once a file exists under a granted directory.
//!
//! ctx params: `{"path": "/data/in/ready.csv"}` or `{"pattern": "/data/in/*.csv"}` (a `path`
//! containing `*`, `?` or `[` is treated as a glob too); optional `"min_count": n` (default 1)
//! for globs. A path outside every granted directory is `Sandbox.PermissionDenied`, not a
//! silent `false`.
use weft_guest::{Context, TaskError, Value};

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn poke(ctx: &Context) -> Result<bool, TaskError> {
    let target =
        match (ctx.param("pattern"), ctx.param("path")) {
            (Some(Value::String(p)), _) | (None, Some(Value::String(p))) => p.clone(),
            _ => return Err(TaskError::invalid_input(
                "file-sensor needs ctx params.path (a file) or params.pattern (a glob) as a string",
            )),
        };
    if !is_glob(&target) {
        let found = ctx.exists(&target)?;
        ctx.debug(format!(
            "{target}: {}",
            if found { "present" } else { "not yet" }
        ));
        return Ok(found);
    }
    // Surface a missing grant on the fixed part of the pattern instead of matching nothing.
    let fixed: Vec<&str> = target.split('/').take_while(|c| !is_glob(c)).collect();
    let base = if fixed.join("/").is_empty() {
        "/".to_string()
    } else {
        fixed.join("/")
    };
    if !ctx.exists(&base)? {
        return Ok(false);
    }
    let min = ctx.param("min_count").and_then(Value::as_u64).unwrap_or(1) as usize;
    let paths = glob::glob(&target)
        .map_err(|e| TaskError::invalid_input(format!("params.pattern `{target}`: {e}")))?;
    let mut n = 0usize;
    for p in paths {
        match p {
            Ok(_) => n += 1,
            Err(e) => {
                let path = e.path().to_path_buf();
                return Err(weft_guest::fs::io_error(&path, e.into()));
            }
        }
        if n >= min {
            break;
        }
    }
    ctx.debug(format!("{target}: {n} match(es), need {min}"));
    Ok(n >= min)
}

weft_guest::export_sensor!(poke);
