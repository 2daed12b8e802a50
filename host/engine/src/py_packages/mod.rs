//! The pure-Python packages of a DAG folder (MWAA's `requirements.txt` beside the DAGs): which
//! wheels its `requirements.txt` names, found offline in wheelhouse folders (the folder's
//! `wheelhouse/`, `$WEFT_WHEELHOUSE`, and `$WEFT_HOME/cache/wheels` where `weft dag deps`
//! puts what it downloads), checked as hostile input (pure Python only, hashes, safe names,
//! size caps: see [`wheel`]), pinned in `requirements.lock.json` by sha256 and blake3, and
//! unpacked once into a content-addressed folder `$WEFT_HOME/cache/py-packages/<digest>`.
//! The Python DAG parser and the Python callables see that folder read-only at [`GUEST_PATH`]
//! (on their `sys.path`); its digest is part of the parse cache key.
//!
//! weft installs exactly what `requirements.txt` lists (as `pip install --no-deps` does): a
//! wheel whose `Requires-Dist` names a package the file does not list is an error naming both,
//! unless that dependency's environment marker is false in the sandbox ([`markers`]).

pub mod markers;
pub mod requirements;
pub mod version;
pub mod wheel;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use requirements::Requirement;
use wheel::WheelName;

/// Where the packages folder appears inside the Python component (read-only, on `sys.path`).
pub const GUEST_PATH: &str = "/weft/site-packages";
/// The requirements file's name.
pub const REQUIREMENTS_FILE: &str = "requirements.txt";
/// The lock file's name (beside `requirements.txt`).
pub const LOCK_FILE: &str = "requirements.lock.json";
/// The default wheelhouse folder (beside `requirements.txt`).
pub const WHEELHOUSE_DIR: &str = "wheelhouse";
/// Environment variable naming more wheelhouse folders (`:`-separated).
pub const WHEELHOUSE_ENV: &str = "WEFT_WHEELHOUSE";
/// Most files looked at in one wheelhouse folder.
pub const MAX_WHEELHOUSE_FILES: usize = 5_000;
/// Largest unpacked packages folder.
pub const MAX_TREE_BYTES: u64 = 256 << 20;
/// Largest lock file read.
const MAX_LOCK_BYTES: u64 = 1 << 20;

/// Why a DAG folder's packages cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackagesError {
    #[error("{file}:{line}: {reason}")]
    Requirements {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{package}: refused: {reason}")]
    Refused { package: String, reason: String },
    #[error("{package}: no pure-Python wheel satisfying `{wanted}` in {searched}; run `weft dag deps` to download it from the package index")]
    NotFound {
        package: String,
        wanted: String,
        searched: String,
    },
    #[error(
        "{package}: refused: hash mismatch for {file}: {expected}, but the file is sha256:{got}"
    )]
    HashMismatch {
        package: String,
        file: String,
        expected: String,
        got: String,
    },
    #[error("{package} {version} requires `{needs}`, which requirements.txt does not list (weft installs exactly the packages listed, as `pip install --no-deps`)")]
    MissingDependency {
        package: String,
        version: String,
        needs: String,
    },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl PackagesError {
    fn io(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    pub name: String,
    pub version: String,
    /// The wheel's file name.
    pub wheel: String,
    /// The wheel's sha256, hex.
    pub sha256: String,
    /// The wheel's blake3, hex.
    pub blake3: String,
}

/// `requirements.lock.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// blake3 of the `requirements.txt` text this lock was made from.
    pub requirements_blake3: String,
    /// The packages folder's digest (see [`tree_digest`]).
    pub packages_blake3: String,
    pub packages: Vec<Locked>,
}

/// A chosen wheel, read and hashed.
#[derive(Debug, Clone)]
struct Chosen {
    name: WheelName,
    bytes: Arc<Vec<u8>>,
    locked: Locked,
}

/// What a DAG folder's `requirements.txt` resolved to.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The requirements file.
    pub file: PathBuf,
    /// The lock it gives (write it with [`write_lock`]).
    pub lock: Lock,
    chosen: Vec<Chosen>,
}

/// A DAG folder's packages, unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packages {
    /// The packages folder (canonical path).
    pub dir: PathBuf,
    /// Its digest: part of the parse cache key and of a callable's identity.
    pub digest: blake3::Hash,
    pub packages: Vec<Locked>,
}

/// The `requirements.txt` of the DAG folder `dags`: in it, else beside it (MWAA's layout:
/// `dags/` and `requirements.txt` side by side).
pub fn requirements_file(dags: &Path) -> Option<PathBuf> {
    let inside = dags.join(REQUIREMENTS_FILE);
    if inside.is_file() {
        return Some(inside);
    }
    let beside = dags.parent()?.join(REQUIREMENTS_FILE);
    beside.is_file().then_some(beside)
}

/// The wheelhouse folders searched for the requirements file `req`, in order: `extra`
/// (`--wheelhouse`), `$WEFT_WHEELHOUSE`, the `wheelhouse/` folder beside `req`, and the
/// download cache `$WEFT_HOME/cache/wheels`.
pub fn wheelhouses(req: &Path, home: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = extra.to_vec();
    if let Some(v) = std::env::var_os(WHEELHOUSE_ENV) {
        out.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(dir) = req.parent() {
        out.push(dir.join(WHEELHOUSE_DIR));
    }
    out.push(download_cache(home));
    out
}

/// Where downloaded wheels are kept.
pub fn download_cache(home: &Path) -> PathBuf {
    home.join("cache/wheels")
}

fn hex_sha256(b: &[u8]) -> String {
    let d = sha2::Sha256::digest(b);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a packages folder made of `packages` (the wheels determine its content).
pub fn tree_digest(packages: &[Locked]) -> blake3::Hash {
    let mut sorted: Vec<&Locked> = packages.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = blake3::Hasher::new();
    h.update(b"weft-py-packages-v1\n");
    for p in sorted {
        h.update(format!("{} {} {} {}\n", p.name, p.version, p.wheel, p.sha256).as_bytes());
    }
    h.finalize()
}

/// The wheels of the wheelhouses, by normalised project name (regular files only; a missing
/// folder is empty).
fn list_wheels(dirs: &[PathBuf]) -> HashMap<String, Vec<(WheelName, PathBuf)>> {
    let mut out: HashMap<String, Vec<(WheelName, PathBuf)>> = HashMap::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in rd.flatten().take(MAX_WHEELHOUSE_FILES) {
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            let name = entry.file_name().to_string_lossy().into_owned();
            if let (true, Some(w)) = (is_file, WheelName::parse(&name)) {
                out.entry(w.key.clone())
                    .or_default()
                    .push((w, entry.path()));
            }
        }
    }
    out
}

fn read_wheel(path: &Path) -> Result<Vec<u8>, PackagesError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| PackagesError::io(path, e))?;
    let mut b = Vec::new();
    f.take(wheel::MAX_WHEEL_BYTES + 1)
        .read_to_end(&mut b)
        .map_err(|e| PackagesError::io(path, e))?;
    if b.len() as u64 > wheel::MAX_WHEEL_BYTES {
        return Err(PackagesError::io(
            path,
            format!("larger than {} bytes", wheel::MAX_WHEEL_BYTES),
        ));
    }
    Ok(b)
}

fn read_lock(path: &Path) -> Option<Lock> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_LOCK_BYTES {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Resolves the requirements file `req` offline against the wheelhouse folders `dirs`: a fresh
/// lock beside it (made from the same text) pins each package to its wheel and digests;
/// otherwise the highest version every specifier allows is chosen (pre-releases only when
/// nothing else fits). Every chosen wheel is checked (hashes, tags, contents) and the
/// dependencies between them verified.
pub fn resolve(req: &Path, dirs: &[PathBuf]) -> Result<Resolution, PackagesError> {
    let file = req.display().to_string();
    let meta = std::fs::metadata(req).map_err(|e| PackagesError::io(req, e))?;
    if meta.len() > requirements::MAX_REQUIREMENTS_BYTES as u64 {
        return Err(PackagesError::Requirements {
            file,
            line: 0,
            reason: format!("larger than {} bytes", requirements::MAX_REQUIREMENTS_BYTES),
        });
    }
    let text = std::fs::read_to_string(req).map_err(|e| PackagesError::io(req, e))?;
    let reqs = requirements::parse(&file, &text)?;
    let req_digest = blake3::hash(text.as_bytes()).to_hex().to_string();
    let lock = req
        .parent()
        .map(|d| d.join(LOCK_FILE))
        .and_then(|p| read_lock(&p))
        .filter(|l| l.requirements_blake3 == req_digest);
    let wheels = list_wheels(dirs);
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut chosen = Vec::new();
    for r in &reqs {
        let pinned = lock
            .as_ref()
            .and_then(|l| l.packages.iter().find(|p| p.name == r.key));
        chosen.push(choose(r, pinned, &wheels, &searched)?);
    }
    check_dependencies(&chosen)?;
    let locked: Vec<Locked> = chosen.iter().map(|c| c.locked.clone()).collect();
    Ok(Resolution {
        file: req.to_path_buf(),
        lock: Lock {
            requirements_blake3: req_digest,
            packages_blake3: tree_digest(&locked).to_hex().to_string(),
            packages: locked,
        },
        chosen,
    })
}

fn choose(
    r: &Requirement,
    pinned: Option<&Locked>,
    wheels: &HashMap<String, Vec<(WheelName, PathBuf)>>,
    searched: &str,
) -> Result<Chosen, PackagesError> {
    let none = Vec::new();
    let all = wheels.get(&r.key).unwrap_or(&none);
    let fits: Vec<&(WheelName, PathBuf)> = all
        .iter()
        .filter(|(w, _)| r.allows(&w.version))
        .filter(|(w, _)| pinned.is_none_or(|p| p.wheel == w.file))
        .collect();
    let pure: Vec<&(WheelName, PathBuf)> = fits
        .iter()
        .copied()
        .filter(|(w, _)| w.impure_tags().is_none())
        .collect();
    if pure.is_empty() {
        if let Some((w, _)) = fits.first() {
            return Err(PackagesError::Refused {
                package: r.key.clone(),
                reason: w.impure_tags().unwrap_or_default(),
            });
        }
        let wanted = match pinned {
            Some(p) => format!("{} (locked: {})", r.text, p.wheel),
            None => r.text.clone(),
        };
        return Err(PackagesError::NotFound {
            package: r.key.clone(),
            wanted,
            searched: searched.to_string(),
        });
    }
    let best = pure
        .iter()
        .filter(|(w, _)| !w.version.is_prerelease())
        .max_by(|a, b| a.0.version.cmp(&b.0.version))
        .or_else(|| pure.iter().max_by(|a, b| a.0.version.cmp(&b.0.version)))
        .copied()
        .expect("not empty");
    let (name, path) = best;
    let bytes = read_wheel(path)?;
    let sha = hex_sha256(&bytes);
    let b3 = blake3::hash(&bytes).to_hex().to_string();
    let mismatch = |expected: String| PackagesError::HashMismatch {
        package: r.key.clone(),
        file: path.display().to_string(),
        expected,
        got: sha.clone(),
    };
    if !r.hashes.is_empty() && !r.hashes.contains(&sha) {
        return Err(mismatch(format!(
            "requirements.txt line {} allows {}",
            r.line,
            r.hashes
                .iter()
                .map(|h| format!("sha256:{h}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    if let Some(p) = pinned {
        if p.sha256 != sha || p.blake3 != b3 {
            return Err(mismatch(format!("{LOCK_FILE} pins sha256:{}", p.sha256)));
        }
    }
    // the contents are checked now, so a bad wheel is refused before anything is written
    wheel::unpack(name, &bytes)?;
    Ok(Chosen {
        name: name.clone(),
        locked: Locked {
            name: r.key.clone(),
            version: name.version.to_string(),
            wheel: name.file.clone(),
            sha256: sha,
            blake3: b3,
        },
        bytes: Arc::new(bytes),
    })
}

/// Each wheel's `Requires-Dist` whose marker holds in the sandbox (or that has none) must be
/// one of the chosen packages.
fn check_dependencies(chosen: &[Chosen]) -> Result<(), PackagesError> {
    let have: std::collections::HashSet<&str> =
        chosen.iter().map(|c| c.locked.name.as_str()).collect();
    for c in chosen {
        let Ok(entries) = wheel::unpack(&c.name, &c.bytes) else {
            continue;
        };
        let Some(meta) = entries.iter().find(|e| {
            e.path.ends_with("/METADATA")
                && e.path.matches('/').count() == 1
                && e.path
                    .split('/')
                    .next()
                    .is_some_and(|t| t.ends_with(".dist-info"))
        }) else {
            continue;
        };
        let text = String::from_utf8_lossy(&meta.bytes);
        for line in text.lines() {
            if line.is_empty() {
                break; // the headers end; the description follows
            }
            let Some(v) = line.strip_prefix("Requires-Dist:") else {
                continue;
            };
            // a dependency under a marker counts only where the marker holds in the sandbox
            // (`extra == ...` never does: no extra is installed)
            let (v, marker) = markers::split(v);
            if let Some(m) = marker {
                let holds = markers::evaluate(m).map_err(|e| PackagesError::Refused {
                    package: c.locked.name.clone(),
                    reason: format!("its dependency `{v}`: {e}"),
                })?;
                if !holds {
                    continue;
                }
            }
            let name: String = v
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(*ch))
                .collect();
            let key = requirements::normalize(&name);
            if !key.is_empty() && !have.contains(key.as_str()) {
                return Err(PackagesError::MissingDependency {
                    package: c.locked.name.clone(),
                    version: c.locked.version.clone(),
                    needs: name,
                });
            }
        }
    }
    Ok(())
}

/// Writes the lock of `r` beside its requirements file.
pub fn write_lock(r: &Resolution) -> Result<PathBuf, PackagesError> {
    let path = r.file.parent().unwrap_or(Path::new(".")).join(LOCK_FILE);
    let mut text = serde_json::to_string_pretty(&r.lock).unwrap_or_default();
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| PackagesError::io(&path, e))?;
    Ok(path)
}

/// Unpacks `r` into `$WEFT_HOME/cache/py-packages/<digest>` (once: a folder of that name is
/// complete, since it appears by an atomic rename).
pub fn install(r: &Resolution, home: &Path) -> Result<Packages, PackagesError> {
    let digest = tree_digest(&r.lock.packages);
    let root = home.join("cache/py-packages");
    let dir = root.join(digest.to_hex().as_str());
    if !dir.is_dir() {
        std::fs::create_dir_all(&root).map_err(|e| PackagesError::io(&root, e))?;
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let stage = root.join(format!(
            ".stage-{}-{}-{}",
            &digest.to_hex()[..16],
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&stage);
        std::fs::create_dir(&stage).map_err(|e| PackagesError::io(&stage, e))?;
        let written = (|| {
            let mut entries = Vec::new();
            let mut total = 0u64;
            for c in &r.chosen {
                let e = wheel::unpack(&c.name, &c.bytes)?;
                total += e.iter().map(|e| e.bytes.len() as u64).sum::<u64>();
                if total > MAX_TREE_BYTES {
                    return Err(PackagesError::Refused {
                        package: c.locked.name.clone(),
                        reason: format!(
                            "the packages together unpack to more than {MAX_TREE_BYTES} bytes"
                        ),
                    });
                }
                entries.extend(e);
            }
            wheel::write_tree(&stage, &entries).map_err(|e| PackagesError::io(&stage, e))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&stage);
            return Err(e);
        }
        if std::fs::rename(&stage, &dir).is_err() {
            // another process finished first: its folder is the same content
            let _ = std::fs::remove_dir_all(&stage);
            if !dir.is_dir() {
                return Err(PackagesError::io(
                    &dir,
                    "cannot move the unpacked packages here",
                ));
            }
        }
    }
    let dir = dir.canonicalize().map_err(|e| PackagesError::io(&dir, e))?;
    Ok(Packages {
        dir,
        digest,
        packages: r.lock.packages.clone(),
    })
}

/// What the folder's inputs looked like when its packages were last prepared.
fn fingerprint(req: &Path, dirs: &[PathBuf]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    for f in [req.to_path_buf(), req.with_file_name(LOCK_FILE)] {
        if let Ok(m) = std::fs::metadata(&f) {
            h.update(format!("{} {} {:?}\n", f.display(), m.len(), m.modified().ok()).as_bytes());
        }
    }
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut names: Vec<String> = rd
                .flatten()
                .take(MAX_WHEELHOUSE_FILES)
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some(format!(
                        "{} {} {:?}",
                        e.file_name().to_string_lossy(),
                        m.len(),
                        m.modified().ok()
                    ))
                })
                .collect();
            names.sort();
            h.update(d.display().to_string().as_bytes());
            h.update(names.join("\n").as_bytes());
        }
    }
    h.finalize()
}

type Prepared = Result<Option<Packages>, PackagesError>;

/// (requirements file, `$WEFT_HOME`).
type MemoKey = (PathBuf, PathBuf);

/// The packages of the DAG folder `dags` for the `$WEFT_HOME` `home`, prepared offline
/// (resolved, checked and unpacked; `None`: the folder has no `requirements.txt`). Remembered
/// per process until the requirements, the lock or a wheelhouse folder changes.
pub fn prepare(dags: &Path, home: &Path) -> Prepared {
    let Some(req) = requirements_file(dags) else {
        return Ok(None);
    };
    let dirs = wheelhouses(&req, home, &[]);
    let print = fingerprint(&req, &dirs);
    static MEMO: OnceLock<Mutex<HashMap<MemoKey, (blake3::Hash, Prepared)>>> = OnceLock::new();
    let key = (req.clone(), home.to_path_buf());
    let memo = MEMO.get_or_init(Default::default);
    if let Some((p, out)) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        // (an unpacked folder removed meanwhile is unpacked again)
        let present = match out {
            Ok(Some(p)) => p.dir.is_dir(),
            _ => true,
        };
        if *p == print && present {
            return out.clone();
        }
    }
    let out = resolve(&req, &dirs)
        .and_then(|r| install(&r, home))
        .map(Some);
    match &out {
        Ok(Some(p)) => {
            tracing::debug!(dir = %p.dir.display(), packages = p.packages.len(), "Python packages ready")
        }
        Err(e) => {
            tracing::warn!(error = %e, "the DAG folder's requirements.txt cannot be installed")
        }
        Ok(None) => {}
    }
    let mut m = memo.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() > 256 {
        m.clear();
    }
    m.insert(key, (print, out.clone()));
    out
}
