//! PEP 508 environment markers (`pkg; python_version < "3.13"`), evaluated against the one
//! Python environment weft's sandbox has: the CPython that componentize-py 0.25.1 builds into
//! every Python component (3.14.0 for WASI on wasm32, what `sys.version`, `sys.platform`,
//! `os.name` and `os.uname()` say inside the `weft-airflow-py` component). A requirement
//! whose marker is false there is not installed (pip skips it the same way); a marker that is
//! not PEP 508 is an error saying why. Markers are parsed and evaluated by `pep508_rs`, with
//! its parse warnings (a version that is not PEP 440, comparing two literals, `in` on a version
//! variable, which it cannot evaluate) treated as errors; their parenthesis depth and length are
//! capped first.

use std::sync::OnceLock;

use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, MarkerWarningKind};

/// `python_full_version` / `implementation_version` of the sandbox's CPython.
pub const PYTHON_FULL_VERSION: &str = "3.14.0";
/// `python_version` (major.minor).
pub const PYTHON_VERSION: &str = "3.14";
/// `sys_platform` (and `platform_system`: `os.uname().sysname`).
pub const SYS_PLATFORM: &str = "wasi";
/// `platform_machine`.
pub const PLATFORM_MACHINE: &str = "wasm32";

/// Longest marker read.
pub const MAX_MARKER_LEN: usize = 1024;
/// Deepest parenthesis nesting read.
pub const MAX_MARKER_DEPTH: usize = 16;

/// The sandbox's marker environment.
pub fn sandbox_environment() -> &'static MarkerEnvironment {
    static ENV: OnceLock<MarkerEnvironment> = OnceLock::new();
    ENV.get_or_init(|| {
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: PYTHON_FULL_VERSION,
            os_name: "posix",
            platform_machine: PLATFORM_MACHINE,
            platform_python_implementation: "CPython",
            platform_release: "0.0.0",
            platform_system: SYS_PLATFORM,
            platform_version: "0.0.0",
            python_full_version: PYTHON_FULL_VERSION,
            python_version: PYTHON_VERSION,
            sys_platform: SYS_PLATFORM,
        })
        .expect("the sandbox's Python versions are PEP 440 versions")
    })
}

/// Whether `marker` holds in the sandbox (`extra` is empty: no extra is ever requested).
pub fn evaluate(marker: &str) -> Result<bool, String> {
    let marker = marker.trim();
    if marker.is_empty() {
        return Err("an empty environment marker after `;`".into());
    }
    if depth(marker) > MAX_MARKER_DEPTH {
        return Err(format!(
            "an environment marker nested deeper than {MAX_MARKER_DEPTH} parentheses"
        ));
    }
    if marker.len() > MAX_MARKER_LEN {
        return Err(format!(
            "an environment marker longer than {MAX_MARKER_LEN} characters"
        ));
    }
    let mut warnings: Vec<String> = Vec::new();
    let mut reporter = |_: MarkerWarningKind, text: String| warnings.push(text);
    let tree = MarkerTree::parse_reporter(marker, &mut reporter)
        .map_err(|e| format!("bad environment marker `{marker}`: {}", e.message))?;
    if let Some(w) = warnings.first() {
        return Err(format!("bad environment marker `{marker}`: {w}"));
    }
    // evaluation notes (`pep508_rs` notes every string comparison) are not errors
    let holds = tree.evaluate_reporter(
        sandbox_environment(),
        &[],
        &mut |_, text: String| tracing::debug!(marker, note = %text, "environment marker"),
    );
    Ok(holds)
}

/// Deepest parenthesis nesting outside quoted strings.
fn depth(marker: &str) -> usize {
    let (mut d, mut max, mut quote) = (0usize, 0usize, None);
    for c in marker.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => {
                d += 1;
                max = max.max(d);
            }
            (None, ')') => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Splits `name>=1; marker` into the requirement and its marker (`None` without `;`).
pub fn split(text: &str) -> (&str, Option<&str>) {
    match text.split_once(';') {
        Some((req, marker)) => (req.trim(), Some(marker.trim())),
        None => (text.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_is_cpython_3_14_on_wasi() {
        for (m, want) in [
            (r#"python_version < "3.13""#, false),
            (r#"python_version >= "3.8""#, true),
            (r#"python_version == "3.14""#, true),
            (r#"python_full_version >= "3.14.0""#, true),
            (r#"python_version ~= "3.10""#, true),
            (r#"sys_platform == "win32""#, false),
            (r#"sys_platform != "win32""#, true),
            (r#"sys_platform == "wasi""#, true),
            (r#"os_name == "nt" or platform_system == "Windows""#, false),
            (r#"platform_machine == "x86_64""#, false),
            (r#"platform_machine == "wasm32""#, true),
            (r#"implementation_name == "cpython""#, true),
            (r#"platform_python_implementation == 'PyPy'"#, false),
            (r#"extra == "socks""#, false),
            (
                r#"(os_name == "posix" and python_version > "3.9") or sys_platform == "darwin""#,
                true,
            ),
            (r#"python_version < "3.11" and extra == "dev""#, false),
            (r#""linux" in sys_platform"#, false),
            (r#""wa" in sys_platform"#, true),
            (r#""win" not in sys_platform"#, true),
            // PEP 345's dotted names, which pip still reads
            (r#"os.name == "posix""#, true),
        ] {
            assert_eq!(evaluate(m), Ok(want), "{m}");
        }
    }

    #[test]
    fn hostile_and_malformed_markers_are_errors_saying_why() {
        let nested = format!(
            "{}python_version > \"3\"{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        let e = evaluate(&nested).unwrap_err();
        assert!(e.contains("parentheses"), "{e}");
        let long = vec![r#"os_name == "posix""#; 200].join(" and ");
        let e = evaluate(&long).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
        // just within the depth cap: read and evaluated
        let ok = format!(
            "{}python_version > \"3\"{}",
            "(".repeat(MAX_MARKER_DEPTH),
            ")".repeat(MAX_MARKER_DEPTH)
        );
        assert_eq!(evaluate(&ok), Ok(true));
        for bad in [
            r#"python_verison < "3.13""#,
            r#"favourite_colour == "blue""#,
            r#"python_version <> "3.13""#,
            r#"python_version => "3.13""#,
            r#"python_version < "three""#,
            r#"python_version < "3.13" andor os_name == "posix""#,
            r#"(python_version < "3.13""#,
            r#"python_version < 3.13"#,
            "",
            "   ",
        ] {
            let e = evaluate(bad).expect_err(bad);
            assert!(e.contains("marker"), "{bad}: {e}");
        }
    }

    #[test]
    fn splits_requirement_and_marker() {
        assert_eq!(
            split(r#"pkg>=1 ; python_version < "3.13""#),
            ("pkg>=1", Some(r#"python_version < "3.13""#))
        );
        assert_eq!(split("pkg"), ("pkg", None));
    }
}
