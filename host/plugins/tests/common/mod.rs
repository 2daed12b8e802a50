//! Builders of hostile bundles for the plugin crate's tests: zip bombs (built by deflating zeros
//! in small chunks once and copying the compressed entry raw, so building one costs little
//! memory), duplicate names, and headers patched to lie.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

pub const MIB: u64 = 1 << 20;

pub fn deflated() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

/// A manifest listing `files` (name -> content digest) and no plugins.
pub fn manifest(files: &[(&str, &str)]) -> Vec<u8> {
    let files: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(n, d)| (n.to_string(), serde_json::Value::String(d.to_string())))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"format": "weft-bundle/1", "plugins": [], "files": files}),
    )
    .unwrap()
}

/// A zip of `entries` written in order (names must differ).
pub fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            z.add_directory(*name, deflated()).unwrap();
        } else {
            z.start_file(*name, deflated()).unwrap();
            z.write_all(bytes).unwrap();
        }
    }
    z.finish().unwrap();
}

/// A zip holding `manifest` then one deflated entry of `zeros` zero bytes per name in `names`
/// (compressed once, then copied raw).
pub fn zero_bomb(path: &Path, manifest: &[u8], names: &[String], zeros: u64) {
    let seed = path.with_extension("seed.zip");
    {
        let f = std::fs::File::create(&seed).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file("zeros", deflated()).unwrap();
        let chunk = vec![0u8; MIB as usize];
        let mut left = zeros;
        while left > 0 {
            let n = left.min(MIB);
            z.write_all(&chunk[..n as usize]).unwrap();
            left -= n;
        }
        z.finish().unwrap();
    }
    let mut src = zip::ZipArchive::new(std::fs::File::open(&seed).unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    z.start_file("weft-bundle.json", deflated()).unwrap();
    z.write_all(manifest).unwrap();
    for n in names {
        z.raw_copy_file_rename(src.by_index(0).unwrap(), n).unwrap();
    }
    z.finish().unwrap();
    std::fs::remove_file(seed).unwrap();
}

/// Replaces every occurrence of `from` by `to` (same length) in the file: names appear in
/// both the local header and the central directory record of their entry.
pub fn patch_bytes(path: &Path, from: &[u8], to: &[u8], only_first: bool) {
    assert_eq!(from.len(), to.len());
    let mut b = std::fs::read(path).unwrap();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= b.len() {
        if &b[i..i + from.len()] == from {
            b[i..i + from.len()].copy_from_slice(to);
            n += 1;
            if only_first {
                break;
            }
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "nothing patched");
    std::fs::write(path, b).unwrap();
}

/// Sets the declared uncompressed size of entry `name` (local header and central record) to
/// `size`: the header now lies about how much the entry inflates to.
pub fn lie_about_size(path: &Path, name: &str, size: u32) {
    let mut b = std::fs::read(path).unwrap();
    let n = name.as_bytes();
    let mut patched = 0;
    for i in 0..b.len().saturating_sub(46) {
        if b[i..i + 4] == *b"PK\x03\x04" && b.get(i + 30..i + 30 + n.len()) == Some(n) {
            b[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
        if b[i..i + 4] == *b"PK\x01\x02" && b.get(i + 46..i + 46 + n.len()) == Some(n) {
            b[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local header and central record of {name}");
    std::fs::write(path, b).unwrap();
}

/// The peak resident memory of this process so far (VmHWM), in bytes; reset first when the
/// kernel allows it, so the value measures what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}
