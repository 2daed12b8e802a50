//! Which symbolic links a guest may create. wasmtime-wasi's `descriptor.symlink-at` (also what
//! the preview1 adapter's `path_symlink` calls) accepts any target text: inside the sandbox
//! cap-std refuses to follow a link out of its preopen, but the link stays on the host disk
//! where a later task, the host or another program could follow it. So the linker's
//! `symlink-at` is shadowed by one that first refuses targets that could leave the directory
//! the link is created in: absolute targets and targets with a `..` component (a chain of
//! links that each only climb "within" can still climb out, so `..` is refused outright).
//! Targets that only descend (`sub/file`) stay inside by induction.

use crate::host::HostState;
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{ErrorCode, Host, HostDescriptor};

/// The `wasi:filesystem/types` instance `add_to_linker_sync` defines (wasmtime-wasi 48).
const FS_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Why a symlink target is refused, if it is.
pub(crate) fn check_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("an empty target".into());
    }
    if target.starts_with('/') || target.starts_with('\\') {
        return Err(format!("the absolute target `{target}`"));
    }
    if target.contains('\0') {
        return Err("a target with NUL".into());
    }
    if target.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!(
            "the target `{target}` climbs with `..` (a link may only point beneath its own directory)"
        ));
    }
    Ok(())
}

/// Shadows `[method]descriptor.symlink-at` with the checked version.
pub(crate) fn guard_symlink_at(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = linker.instance(FS_TYPES)?.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, HostState>,
         (fd, target, link): (Resource<Descriptor>, String, String)|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            if let Err(why) = check_target(&target) {
                let st = store.data_mut();
                tracing::warn!(plugin = %st.plugin, link = %link, "refused a symlink: {why}");
                st.audit.push(crate::grant::AuditRecord {
                    action: "fs:Write".into(),
                    resource: format!("symlink:{link}"),
                    decision: crate::policy::Effect::Deny,
                    statement: None,
                    reason: Some(format!("refused {why}")),
                });
                return Ok((Err(ErrorCode::NotPermitted),));
            }
            let mut view = store.data_mut().filesystem();
            match HostDescriptor::symlink_at(&mut view, fd, target, link) {
                Ok(()) => Ok((Ok(()),)),
                Err(e) => Ok((Err(Host::convert_error_code(&mut view, e)?),)),
            }
        },
    );
    linker.allow_shadowing(false);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for ok in ["file", "sub/file", "./x", "a/./b"] {
            assert!(check_target(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc",
            "../x",
            "../../../../etc",
            "a/../../x",
            "a/..",
            "..",
            "\\etc",
            "a\\..\\..",
        ] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
