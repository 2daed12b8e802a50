//! `weft dag deps`: installs a DAG folder's `requirements.txt` for its Python DAG files. Wheels
//! come from the wheelhouse folders (offline); a package none of them has is downloaded from
//! the package index's JSON API (`$WEFT_PYPI_URL`, default `https://pypi.org/pypi`) into
//! `$WEFT_HOME/cache/wheels`, pure-Python (`py3-none-any`) wheels only, checked against the
//! index's sha256 and the requirement's `--hash`. Then everything is checked and unpacked by
//! [`weft_engine::py_packages`] and pinned in `requirements.lock.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use sha2::Digest as _;
use weft_engine::py_packages::{
    self, requirements::Requirement, version::Version, wheel::WheelName, PackagesError,
};

use crate::context::home;

/// The package index's JSON API.
const DEFAULT_INDEX: &str = "https://pypi.org/pypi";
/// Largest index answer read (one project's metadata).
const MAX_INDEX_BYTES: u64 = 32 << 20;
/// Deadline of one request to the index.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn deps(dags: &Path, wheelhouse: &[PathBuf], offline: bool, json: bool) -> Result<ExitCode> {
    let Some(req) = py_packages::requirements_file(dags) else {
        if json {
            println!(
                "{}",
                serde_json::json!({"requirements": null, "packages": []})
            );
        } else {
            println!(
                "no {} in {} or beside it: nothing to install",
                py_packages::REQUIREMENTS_FILE,
                dags.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let home = home();
    let dirs = py_packages::wheelhouses(&req, &home, wheelhouse);
    let text =
        std::fs::read_to_string(&req).map_err(|e| anyhow!("cannot read {}: {e}", req.display()))?;
    let listed = py_packages::requirements::parse(&req.display().to_string(), &text)
        .map_err(|e| anyhow!("{e}"))?;
    let mut fetched: Vec<String> = Vec::new();
    let resolution = loop {
        match py_packages::resolve(&req, &dirs) {
            Ok(r) => break r,
            Err(PackagesError::NotFound { package, .. })
                if !offline && !fetched.contains(&package) =>
            {
                let r = listed
                    .iter()
                    .find(|r| r.key == package)
                    .ok_or_else(|| anyhow!("{package}: not in {}", req.display()))?;
                download(r, &py_packages::download_cache(&home))?;
                fetched.push(package);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    };
    let installed = match py_packages::install(&resolution, &home) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let lock = py_packages::write_lock(&resolution).map_err(|e| anyhow!("{e}"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "requirements": req.display().to_string(),
                "lock": lock.display().to_string(),
                "packages": installed.packages,
                "packages_blake3": installed.digest.to_hex().as_str(),
                "folder": installed.dir.display().to_string(),
                "downloaded": fetched,
            }))?
        );
    } else {
        for p in &installed.packages {
            println!(
                "{} {} ({}, sha256:{})",
                p.name, p.version, p.wheel, p.sha256
            );
        }
        println!(
            "{} package(s) pinned in {}; Python DAG files import them from {}",
            installed.packages.len(),
            lock.display(),
            installed.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One file of a release on the index.
#[derive(serde::Deserialize)]
struct IndexFile {
    filename: String,
    url: String,
    #[serde(default)]
    digests: std::collections::HashMap<String, String>,
    #[serde(default)]
    yanked: bool,
}

#[derive(serde::Deserialize)]
struct IndexProject {
    #[serde(default)]
    releases: std::collections::HashMap<String, Vec<IndexFile>>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(3)
        .build()
        .new_agent()
}

fn get(agent: &ureq::Agent, url: &str, max: u64) -> Result<Vec<u8>> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| anyhow!("cannot reach the package index ({url}): {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url}: the package index answered {status}");
    }
    resp.body_mut()
        .with_config()
        .limit(max)
        .read_to_vec()
        .map_err(|e| anyhow!("{url}: {e} (at most {max} bytes are read)"))
}

/// Downloads the newest pure-Python wheel the requirement `r` allows into `cache`.
fn download(r: &Requirement, cache: &Path) -> Result<()> {
    let base = std::env::var("WEFT_PYPI_URL").unwrap_or_else(|_| DEFAULT_INDEX.to_string());
    let base = base.trim_end_matches('/');
    let agent = agent();
    let url = format!("{base}/{}/json", r.key);
    let body = get(&agent, &url, MAX_INDEX_BYTES)?;
    let project: IndexProject = serde_json::from_slice(&body)
        .map_err(|e| anyhow!("{url}: not the package index's JSON: {e}"))?;
    let mut versions: Vec<(Version, &Vec<IndexFile>)> = project
        .releases
        .iter()
        .filter_map(|(v, files)| Some((Version::parse(v).ok()?, files)))
        .filter(|(v, files)| r.allows(v) && files.iter().any(|f| !f.yanked))
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    let best = versions
        .iter()
        .find(|(v, _)| !v.is_prerelease())
        .or_else(|| versions.first())
        .ok_or_else(|| {
            anyhow!(
                "{}: the package index has no release satisfying `{}`",
                r.key,
                r.text
            )
        })?;
    let (version, files) = best;
    let wheels: Vec<(WheelName, &IndexFile)> = files
        .iter()
        .filter(|f| !f.yanked)
        .filter_map(|f| Some((WheelName::parse(&f.filename)?, f)))
        .filter(|(w, _)| w.key == r.key && !w.file.contains('/'))
        .collect();
    let Some((wheel, file)) = wheels.iter().find(|(w, _)| w.impure_tags().is_none()) else {
        let why = wheels
            .first()
            .and_then(|(w, _)| w.impure_tags())
            .unwrap_or_else(|| {
                "it publishes no wheel (a source distribution would have to be built)".into()
            });
        bail!(PackagesError::Refused {
            package: r.key.clone(),
            reason: format!("{version} has no pure-Python wheel: {why}"),
        });
    };
    let want = file
        .digests
        .get("sha256")
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| anyhow!("{url}: {} has no sha256 digest", file.filename))?;
    if !r.hashes.is_empty() && !r.hashes.contains(&want) {
        bail!(PackagesError::HashMismatch {
            package: r.key.clone(),
            file: file.filename.clone(),
            expected: format!(
                "requirements.txt line {} allows {}",
                r.line,
                r.hashes
                    .iter()
                    .map(|h| format!("sha256:{h}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            got: want,
        });
    }
    let bytes = get(&agent, &file.url, py_packages::wheel::MAX_WHEEL_BYTES)?;
    let got: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != want {
        bail!(PackagesError::HashMismatch {
            package: r.key.clone(),
            file: file.url.clone(),
            expected: format!("the package index lists sha256:{want}"),
            got,
        });
    }
    std::fs::create_dir_all(cache)
        .map_err(|e| anyhow!("cannot create {}: {e}", cache.display()))?;
    let dest = cache.join(&wheel.file);
    let tmp = cache.join(format!(".{}.{}", wheel.file, std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| anyhow!("cannot write {}: {e}", dest.display()))?;
    eprintln!("downloaded {} ({} bytes)", wheel.file, bytes.len());
    Ok(())
}
