//! Wheels: reading a wheel's file name (`name-version[-build]-python-abi-platform.whl`), and
//! checking and unpacking one as hostile input. A wheel is accepted only when it is pure
//! Python: its tags are `none`/`any` with a Python 3 tag, its `WHEEL` says
//! `Root-Is-Purelib: true` and no entry is native code (`.so`, `.pyd`, `.dylib`, `.dll`,
//! `.a`, `.o`). Entries are refused when their names are absolute, hold `..`, backslashes or
//! NUL, when they are symbolic links or special files, or when the wheel exceeds [`MAX_WHEEL_BYTES`],
//! [`MAX_ENTRIES`] entries, [`MAX_ENTRY_BYTES`] unpacked per entry or a compression ratio of
//! [`MAX_RATIO`] (a zip bomb), counting the bytes actually inflated, not the sizes the
//! archive claims.

use std::io::Read;
use std::path::Path;

use super::requirements::normalize;
use super::version::Version;
use super::PackagesError;

/// Largest wheel file read.
pub const MAX_WHEEL_BYTES: u64 = 64 << 20;
/// Most entries in one wheel.
pub const MAX_ENTRIES: usize = 10_000;
/// Largest unpacked entry.
pub const MAX_ENTRY_BYTES: u64 = 32 << 20;
/// Largest unpacked wheel.
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;
/// Largest inflation of one entry over its compressed size (entries over 64 KiB unpacked).
pub const MAX_RATIO: u64 = 200;

/// Longest entry name.
const MAX_NAME_BYTES: usize = 512;

/// What a wheel's file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub file: String,
    /// Normalised project name.
    pub key: String,
    pub version: Version,
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl WheelName {
    /// Reads a wheel file name; `None` when it is not one.
    pub fn parse(file: &str) -> Option<Self> {
        let stem = file.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, python, abi, platform) = match parts.as_slice() {
            [n, v, py, abi, plat] | [n, v, _, py, abi, plat] => (*n, *v, *py, *abi, *plat),
            _ => return None,
        };
        Some(Self {
            file: file.to_string(),
            key: normalize(name),
            version: Version::parse(version).ok()?,
            python: python.to_string(),
            abi: abi.to_string(),
            platform: platform.to_string(),
        })
    }

    /// `None` when the tags say pure Python 3, else why not.
    pub fn impure_tags(&self) -> Option<String> {
        let py3 = self
            .python
            .split('.')
            .any(|t| t == "py3" || t.starts_with("py3"));
        if self.abi != "none" || self.platform != "any" {
            return Some(format!(
                "{} is built for one platform (ABI tag `{}`, platform tag `{}`): it holds native code, and the sandbox runs pure-Python packages only (`none-any` wheels)",
                self.file, self.abi, self.platform
            ));
        }
        if !py3 {
            return Some(format!(
                "{} is not for Python 3 (Python tag `{}`)",
                self.file, self.python
            ));
        }
        None
    }
}

/// A file of a checked wheel, to be written below the packages folder.
#[derive(Debug)]
pub struct Entry {
    /// Relative path (normal, `/`-separated).
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Whether an entry name is native code.
fn native(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    [".so", ".pyd", ".dylib", ".dll", ".a", ".o", ".lib"]
        .iter()
        .any(|ext| base.ends_with(ext))
        || base.contains(".so.")
}

/// A safe relative path for an entry name, else why not.
fn safe_path(name: &str) -> Result<String, String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "an entry name is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if name.contains('\\') || name.contains('\0') || name.contains(':') {
        return Err(format!(
            "entry `{}` has a backslash, colon or NUL",
            name.escape_debug()
        ));
    }
    if name.starts_with('/') {
        return Err(format!("entry `{name}` is an absolute path"));
    }
    let segs: Vec<&str> = name
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segs.contains(&"..") {
        return Err(format!("entry `{name}` climbs out of the folder with `..`"));
    }
    if segs.len() > 32 {
        return Err(format!(
            "entry `{name}` is nested more than 32 folders deep"
        ));
    }
    Ok(segs.join("/"))
}

/// Reads entry `i` of the zip archive `zip` (named `file` in messages) as hostile input: its
/// name becomes a safe relative path, a symbolic link, a special file (device, FIFO, socket)
/// and native code are refused, and its unpacked size ([`MAX_ENTRY_BYTES`]) and inflation
/// ratio ([`MAX_RATIO`]) are capped on the bytes actually inflated. `None`: a folder.
pub(crate) fn checked_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    i: usize,
    file: &str,
) -> Result<Option<Entry>, String> {
    let mut f = zip
        .by_index(i)
        .map_err(|e| format!("{file}: entry {i}: {e}"))?;
    let raw = f.name().to_string();
    let path = safe_path(&raw).map_err(|e| format!("{file}: {e}"))?;
    if f.is_symlink() {
        return Err(format!(
            "{file}: entry `{raw}` is a symbolic link (links are not unpacked)"
        ));
    }
    // the file-type bits of the entry's Unix mode: only regular files and folders
    let kind = f.unix_mode().map_or(0, |m| m & 0o170000);
    if !matches!(kind, 0 | 0o100000 | 0o040000) {
        return Err(format!(
            "{file}: entry `{raw}` is a special file (mode {kind:o}); only files and folders are unpacked"
        ));
    }
    if f.is_dir() || path.is_empty() {
        return Ok(None);
    }
    if native(&path) {
        return Err(format!(
            "{file} contains native code (`{raw}`); the sandbox runs pure-Python packages only"
        ));
    }
    let mut data = Vec::new();
    (&mut f)
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{file}: entry `{raw}`: {e}"))?;
    let n = data.len() as u64;
    if n > MAX_ENTRY_BYTES {
        return Err(format!(
            "{file}: entry `{raw}` unpacks to more than {MAX_ENTRY_BYTES} bytes"
        ));
    }
    if n > 64 << 10 && n / f.compressed_size().max(1) > MAX_RATIO {
        return Err(format!(
            "{file}: entry `{raw}` inflates more than {MAX_RATIO} times (a zip bomb?)"
        ));
    }
    Ok(Some(Entry { path, bytes: data }))
}

/// Checks the wheel `bytes` (file name `name`, for project `key`) and returns its files, with
/// `*.data/purelib` and `*.data/platlib` moved to the top as installers do (other `.data`
/// folders, scripts and headers, are left out).
pub fn unpack(name: &WheelName, bytes: &[u8]) -> Result<Vec<Entry>, PackagesError> {
    let refuse = |reason: String| PackagesError::Refused {
        package: name.key.clone(),
        reason,
    };
    if let Some(why) = name.impure_tags() {
        return Err(refuse(why));
    }
    if bytes.len() as u64 > MAX_WHEEL_BYTES {
        return Err(refuse(format!(
            "{} is larger than {MAX_WHEEL_BYTES} bytes",
            name.file
        )));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| refuse(format!("{} is not a readable wheel (zip): {e}", name.file)))?;
    if zip.len() > MAX_ENTRIES {
        return Err(refuse(format!(
            "{} has more than {MAX_ENTRIES} entries",
            name.file
        )));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut wheel_meta = None;
    for i in 0..zip.len() {
        let Some(Entry { path, bytes: data }) =
            checked_entry(&mut zip, i, &name.file).map_err(refuse)?
        else {
            continue;
        };
        let n = data.len() as u64;
        total += n;
        if total > MAX_UNPACKED_BYTES {
            return Err(refuse(format!(
                "{} unpacks to more than {MAX_UNPACKED_BYTES} bytes",
                name.file
            )));
        }
        let top = path.split('/').next().unwrap_or_default();
        if top.ends_with(".dist-info") && path.ends_with("/WHEEL") && path.matches('/').count() == 1
        {
            wheel_meta = Some(String::from_utf8_lossy(&data).into_owned());
        }
        let path = if top.ends_with(".data") {
            let mut segs = path.splitn(3, '/');
            let (_, kind, rest) = (segs.next(), segs.next(), segs.next());
            match (kind, rest) {
                (Some("purelib" | "platlib"), Some(rest)) if !rest.is_empty() => rest.to_string(),
                _ => continue,
            }
        } else {
            path
        };
        out.push(Entry { path, bytes: data });
    }
    let meta = wheel_meta.ok_or_else(|| {
        refuse(format!(
            "{} has no `*.dist-info/WHEEL` file: not a wheel",
            name.file
        ))
    })?;
    let purelib = meta.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("Root-Is-Purelib") && v.trim() == "true"
        })
    });
    if !purelib {
        return Err(refuse(format!(
            "{}: its WHEEL file does not say `Root-Is-Purelib: true`, so it is not a pure-Python wheel",
            name.file
        )));
    }
    Ok(out)
}

/// Writes `entries` below `dir` (which exists and is empty), creating folders as needed;
/// refuses to write a path twice.
pub fn write_tree(dir: &Path, entries: &[Entry]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        if !seen.insert(e.path.as_str()) {
            return Err(format!("two packages provide `{}`", e.path));
        }
        let target = dir.join(&e.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|err| format!("cannot write {}: {err}", target.display()))?;
        std::io::Write::write_all(&mut f, &e.bytes)
            .map_err(|err| format!("cannot write {}: {err}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wheel_names() {
        let w = WheelName::parse("Tiny_Pkg-1.0.2-py3-none-any.whl").unwrap();
        assert_eq!(w.key, "tiny-pkg");
        assert!(w.impure_tags().is_none());
        let w = WheelName::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        assert!(w.impure_tags().is_none());
        let w = WheelName::parse("numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl").unwrap();
        let why = w.impure_tags().unwrap();
        assert!(
            why.contains("native code") && why.contains("manylinux"),
            "{why}"
        );
        assert!(WheelName::parse("x-1.0-py2-none-any.whl")
            .unwrap()
            .impure_tags()
            .is_some());
        assert!(WheelName::parse("x.tar.gz").is_none());
        assert!(WheelName::parse("x-1.0.whl").is_none());
    }

    #[test]
    fn entry_names_are_checked() {
        assert_eq!(safe_path("a/./b.py").unwrap(), "a/b.py");
        for bad in ["/etc/passwd", "../x", "a/../../x", "a\\b", "c:x", "a\0b"] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
        assert!(native("pkg/_speedups.cpython-312-x86_64-linux-gnu.so"));
        assert!(native("pkg/lib.so.1"));
        assert!(native("pkg/x.PYD"));
        assert!(!native("pkg/sonic.py"));
    }
}
