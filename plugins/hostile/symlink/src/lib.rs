//! Hostile: plants a symbolic link (expect a refusal when the target leaves the directory the
//! link is created in). Input: `{"target": string, "link": string}` (defaults
//! `../../../../etc` and `/shared/reports`). Output when the sandbox allowed it:
//! `{"link", "target"}`.
use std::ffi::{c_char, c_int, CString};
use weft_guest::{json, Context, TaskError, Value};

extern "C" {
    /// wasi-libc's `symlink(3)` (resolved against the preopens like every libc path call).
    fn symlink(target: *const c_char, link: *const c_char) -> c_int;
}

fn plant(target: &str, link: &str) -> std::io::Result<()> {
    let bad = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let (t, l) = (CString::new(target).map_err(bad)?, CString::new(link).map_err(bad)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let target = input
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or("../../../../etc");
    let link = input
        .get("link")
        .and_then(Value::as_str)
        .unwrap_or("/shared/reports");
    plant(target, link).map_err(|e| {
        let error = if e.kind() == std::io::ErrorKind::PermissionDenied {
            "Sandbox.PermissionDenied"
        } else {
            "States.TaskFailed"
        };
        TaskError::new(error, format!("symlink {link} -> {target}: {e}"))
    })?;
    Ok(json!({ "link": link, "target": target }))
}

weft_guest::export_operator!(run);
