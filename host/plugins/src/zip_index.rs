//! A bundle's table of contents, read without inflating anything: every entry's name, declared
//! sizes and position, from the zip central directory, cross-checked so that weft and every
//! other zip tool see the same files.
//!
//! The `zip` crate keys entries by name and keeps the last of two equal names, while `unzip`
//! shows the first; so the raw central directory is walked here too, and a bundle whose raw
//! entry count differs from the crate's (two entries with one name) is refused. Each entry's
//! local header must carry the same name as its central record (streaming readers use the local
//! one), and no two entries' data may overlap (the overlapping-entries zip bomb).

use crate::limits::MAX_ENTRIES;
use crate::PluginError;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";

/// What the directory says about one entry.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Index in the `zip` crate's archive.
    pub index: usize,
    pub name: String,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub encrypted: bool,
    /// Declared uncompressed size.
    pub size: u64,
    pub compressed_size: u64,
}

fn bad(bundle: &Path, reason: impl Into<String>) -> PluginError {
    PluginError::BadZip {
        path: bundle.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_at(mut f: &File, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}

fn u16_at(b: &[u8], i: usize) -> u64 {
    u16::from_le_bytes([b[i], b[i + 1]]) as u64
}

/// Walks the raw central directory from `start`: the raw name of every record, at most
/// `MAX_ENTRIES + 1` of them.
fn raw_central_names(bundle: &Path, f: &File, start: u64) -> Result<Vec<Vec<u8>>, PluginError> {
    let mut names = Vec::new();
    let mut at = start;
    loop {
        let mut fixed = [0u8; 46];
        if read_at(f, at, &mut fixed).is_err() || fixed[0..4] != CENTRAL_SIG {
            break;
        }
        if names.len() == MAX_ENTRIES {
            return Err(PluginError::TooManyEntries {
                bundle: bundle.to_path_buf(),
                count: MAX_ENTRIES + 1,
                limit: MAX_ENTRIES,
            });
        }
        let name_len = u16_at(&fixed, 28);
        let extra_len = u16_at(&fixed, 30);
        let comment_len = u16_at(&fixed, 32);
        let mut name = vec![0u8; name_len as usize];
        read_at(f, at + 46, &mut name).map_err(|e| {
            bad(
                bundle,
                format!("central directory record {}: {e}", names.len()),
            )
        })?;
        names.push(name);
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(names)
}

/// Reads and cross-checks the directory of `zip` (opened on `f`, the bundle file `bundle`).
pub fn entries(
    bundle: &Path,
    f: &File,
    zip: &mut zip::ZipArchive<&File>,
) -> Result<Vec<EntryInfo>, PluginError> {
    if zip.len() > MAX_ENTRIES {
        return Err(PluginError::TooManyEntries {
            bundle: bundle.to_path_buf(),
            count: zip.len(),
            limit: MAX_ENTRIES,
        });
    }
    let raw = raw_central_names(bundle, f, zip.central_directory_start())?;
    let mut first_of: HashMap<&[u8], usize> = HashMap::new();
    for (i, n) in raw.iter().enumerate() {
        if let Some(&j) = first_of.get(n.as_slice()) {
            return Err(PluginError::DuplicateEntry {
                bundle: bundle.to_path_buf(),
                first: format!("{} (record {j})", String::from_utf8_lossy(&raw[j])),
                second: format!("{} (record {i})", String::from_utf8_lossy(n)),
                how: "",
            });
        }
        first_of.insert(n, i);
    }
    if raw.len() != zip.len() {
        return Err(bad(
            bundle,
            format!(
                "the central directory holds {} records but {} distinct names (two names decode to the same text)",
                raw.len(),
                zip.len()
            ),
        ));
    }

    let mut out = Vec::with_capacity(zip.len());
    let mut spans = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let (info, name_raw, header_start) = {
            let e = zip
                .by_index_raw(index)
                .map_err(|e| bad(bundle, format!("entry {index}: {e}")))?;
            (
                EntryInfo {
                    index,
                    name: e.name().to_string(),
                    is_dir: e.is_dir(),
                    is_symlink: e.is_symlink(),
                    encrypted: e.encrypted(),
                    size: e.size(),
                    compressed_size: e.compressed_size(),
                },
                e.name_raw().to_vec(),
                e.header_start(),
            )
        };
        // The local header must name the same file as the central directory.
        let mut fixed = [0u8; 30];
        read_at(f, header_start, &mut fixed)
            .map_err(|e| bad(bundle, format!("entry `{}`: local header: {e}", info.name)))?;
        if fixed[0..4] != LOCAL_SIG {
            return Err(bad(
                bundle,
                format!(
                    "entry `{}`: no local header where the directory points",
                    info.name
                ),
            ));
        }
        let local_name_len = u16_at(&fixed, 26);
        let local_extra_len = u16_at(&fixed, 28);
        let mut local_name = vec![0u8; local_name_len as usize];
        read_at(f, header_start + 30, &mut local_name)
            .map_err(|e| bad(bundle, format!("entry `{}`: local header: {e}", info.name)))?;
        if local_name != name_raw {
            return Err(PluginError::UnsafeEntry {
                bundle: bundle.to_path_buf(),
                entry: info.name.clone(),
                reason: format!(
                    "its local header names it `{}`: the two names must agree",
                    String::from_utf8_lossy(&local_name)
                ),
            });
        }
        let end = header_start + 30 + local_name_len + local_extra_len + info.compressed_size;
        spans.push((header_start, end, info.name.clone()));
        out.push(info);
    }
    // No two entries may share bytes.
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(PluginError::UnsafeEntry {
                bundle: bundle.to_path_buf(),
                entry: w[1].2.clone(),
                reason: format!("its data overlaps entry `{}`", w[0].2),
            });
        }
    }
    Ok(out)
}
