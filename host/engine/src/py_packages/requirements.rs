//! `requirements.txt` as pip reads it, bounded to what weft installs: one requirement per line
//! (a name, optional version specifiers `==`, `!=`, `>=`, `<=`, `>`, `<`, `~=`, `==X.*`),
//! `#` comments, `\` continuations, `--hash=sha256:HEX` options and PEP 508 environment markers
//! (`pkg; python_version < "3.13"`), evaluated against the sandbox's Python ([`super::markers`]):
//! a requirement whose marker is false there is left out, as pip leaves it out. Everything that
//! would make weft read another file, reach another index or build something (`-r`, `-c`, `-e`,
//! URLs, paths, `--index-url`, extras) is refused with its line, as are a malformed marker, more
//! than [`MAX_REQUIREMENTS`] requirements or a file larger than [`MAX_REQUIREMENTS_BYTES`].

use super::markers;
use super::version::{Specifier, Version};
use super::PackagesError;

/// Largest `requirements.txt` read.
pub const MAX_REQUIREMENTS_BYTES: usize = 64 << 10;

/// Most requirements one file may list.
pub const MAX_REQUIREMENTS: usize = 200;

/// One line of `requirements.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The name as written.
    pub name: String,
    /// PEP 503 normalised name (`Typing_Extensions` -> `typing-extensions`).
    pub key: String,
    /// All must hold (empty: any version).
    pub specifiers: Vec<Specifier>,
    /// Accepted `sha256` digests, lowercase hex (empty: none given).
    pub hashes: Vec<String>,
    /// 1-based line in the file.
    pub line: usize,
    /// The requirement as written (`tinypkg>=1.0`), options left out.
    pub text: String,
}

impl Requirement {
    /// Whether `v` satisfies every specifier.
    pub fn allows(&self, v: &Version) -> bool {
        self.specifiers.iter().all(|s| s.matches(v))
    }
}

/// PEP 503's normalised project name.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Parses the text of `file` (named in errors).
pub fn parse(file: &str, text: &str) -> Result<Vec<Requirement>, PackagesError> {
    if text.len() > MAX_REQUIREMENTS_BYTES {
        return Err(PackagesError::Requirements {
            file: file.into(),
            line: 0,
            reason: format!("larger than {MAX_REQUIREMENTS_BYTES} bytes"),
        });
    }
    let err = |line: usize, reason: String| PackagesError::Requirements {
        file: file.into(),
        line,
        reason,
    };
    let mut out: Vec<Requirement> = Vec::new();
    // logical lines: `\` at the end joins the next physical line
    let mut logical = String::new();
    let mut start = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (i, raw) in lines.iter().enumerate() {
        if logical.is_empty() {
            start = i + 1;
        }
        // a comment starts at `#` at the line's start or after whitespace
        let mut body = *raw;
        if let Some(p) = comment_start(body) {
            body = &body[..p];
        }
        if let Some(cont) = body.trim_end().strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            if i + 1 < lines.len() {
                continue;
            }
        } else {
            logical.push_str(body);
        }
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(r) = parse_line(line).map_err(|reason| err(start, reason))? else {
            tracing::info!(
                file,
                line = start,
                requirement = line,
                "requirement left out: its environment marker is false in the sandbox (CPython {} on {})",
                markers::PYTHON_FULL_VERSION,
                markers::SYS_PLATFORM
            );
            continue;
        };
        if let Some(prev) = out.iter().find(|p| p.key == r.key) {
            return Err(err(
                start,
                format!("`{}` is listed twice (first at line {})", r.name, prev.line),
            ));
        }
        if out.len() >= MAX_REQUIREMENTS {
            return Err(err(
                start,
                format!("more than {MAX_REQUIREMENTS} requirements"),
            ));
        }
        out.push(Requirement { line: start, ..r });
    }
    Ok(out)
}

fn comment_start(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()))
}

/// Where a requirement line's options (`--hash`) start in the text after its `;`: the first
/// whitespace-preceded `--` outside a quoted string (the text's length when there is none).
fn options_start(after_marker: &str) -> usize {
    let b = after_marker.as_bytes();
    let mut quote = None;
    for i in 0..b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c @ (b'\'' | b'"')) => quote = Some(c),
            (None, b'-')
                if i > 0 && b[i - 1].is_ascii_whitespace() && b.get(i + 1) == Some(&b'-') =>
            {
                return i
            }
            _ => {}
        }
    }
    b.len()
}

/// One logical line: its requirement, or `None` when its environment marker is false.
fn parse_line(line: &str) -> Result<Option<Requirement>, String> {
    if line.starts_with('-') {
        let opt = line.split([' ', '=']).next().unwrap_or(line);
        return Err(match opt {
            "-r" | "--requirement" | "-c" | "--constraint" => format!(
                "`{opt}` includes another file; weft reads one requirements.txt (list every package in it)"
            ),
            "-e" | "--editable" => "editable installs (`-e`) are not supported: weft installs wheels only".into(),
            _ => format!(
                "the option `{opt}` is not supported (weft reads package names, version specifiers and --hash)"
            ),
        });
    }
    // the marker is cut out first: its words must not be glued like a specifier's
    let (line, marker) = match line.split_once(';') {
        Some((req, after)) => {
            let at = options_start(after);
            (
                format!("{} {}", req.trim_end(), &after[at..]),
                Some(after[..at].trim()),
            )
        }
        None => (line.to_string(), None),
    };
    let mut parts = line.split_whitespace();
    let spec = parts.next().unwrap_or_default();
    let mut rest: Vec<&str> = parts.collect();
    // `name >= 1.0` with spaces: glue the specifier words back until an option starts
    let mut req_text = spec.to_string();
    while let Some(w) = rest.first() {
        if w.starts_with("--") {
            break;
        }
        req_text.push_str(w);
        rest.remove(0);
    }
    let mut hashes = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let w = rest[i];
        let value = if let Some(v) = w.strip_prefix("--hash=") {
            v
        } else if w == "--hash" {
            i += 1;
            rest.get(i).copied().ok_or("`--hash` without a value")?
        } else {
            return Err(format!(
                "the option `{w}` is not supported on a requirement line (only --hash)"
            ));
        };
        let hex = value.strip_prefix("sha256:").ok_or_else(|| {
            format!("`--hash={value}`: only sha256 hashes are supported (`--hash=sha256:HEX`)")
        })?;
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`--hash={value}`: not a sha256 digest (64 hex digits)"
            ));
        }
        hashes.push(hex.to_ascii_lowercase());
        i += 1;
    }
    if req_text.contains("://") || req_text.contains('@') || req_text.contains('/') {
        return Err(format!(
            "`{req_text}`: URLs and paths are not supported; put the wheel in the wheelhouse and name the package"
        ));
    }
    if req_text.contains('[') {
        return Err(format!(
            "`{req_text}`: extras are not supported; list the packages the extra needs"
        ));
    }
    let split = req_text
        .find(|c: char| "=!<>~".contains(c))
        .unwrap_or(req_text.len());
    let (name, specs) = req_text.split_at(split);
    if !valid_name(name) {
        return Err(format!("`{name}` is not a package name"));
    }
    let specifiers = if specs.is_empty() {
        Vec::new()
    } else {
        specs
            .split(',')
            .map(Specifier::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{req_text}`: {e}"))?
    };
    if let Some(m) = marker {
        if !markers::evaluate(m).map_err(|e| format!("`{req_text}`: {e}"))? {
            return Ok(None);
        }
    }
    Ok(Some(Requirement {
        name: name.to_string(),
        key: normalize(name),
        specifiers,
        hashes,
        line: 0,
        text: req_text.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pips_format() {
        let text = "# packages\n\ntinypkg==1.0.0  # pinned\nOther_Pkg >= 2, <3 \\\n    --hash=sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nplain\n";
        let r = parse("requirements.txt", text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].key.as_str(), r[0].line), ("tinypkg", 3));
        assert!(r[0].allows(&Version::parse("1.0").unwrap()));
        assert!(!r[0].allows(&Version::parse("1.0.1").unwrap()));
        assert_eq!((r[1].key.as_str(), r[1].line), ("other-pkg", 4));
        assert_eq!(r[1].hashes, vec!["a".repeat(64)]);
        assert!(r[1].allows(&Version::parse("2.5").unwrap()));
        assert!(!r[1].allows(&Version::parse("3.0").unwrap()));
        assert!(r[2].specifiers.is_empty());
    }

    #[test]
    fn refuses_what_would_reach_elsewhere() {
        for (line, why) in [
            ("-r other.txt", "includes another file"),
            ("--requirement=x.txt", "includes another file"),
            ("-e .", "editable"),
            ("--index-url https://evil", "not supported"),
            ("pkg @ https://x/y.whl", "URLs"),
            ("pkg[extra]", "extras"),
            ("pkg; python_version <> '3'", "marker"),
            ("pkg; nosuch_variable == 'x'", "marker"),
            ("pkg==1 --hash=md5:abc", "sha256"),
            ("pkg==1 --hash=sha256:zz", "64 hex"),
            ("pkg===1", "not supported"),
            ("../evil", "paths"),
            ("bad name!", "version specifier"),
            ("-bad", "not supported"),
        ] {
            let e = parse("r.txt", line).unwrap_err().to_string();
            assert!(e.contains(why), "{line}: {e}");
            assert!(e.contains("r.txt:1"), "{e}");
        }
        let e = parse("r.txt", "a\nA\n").unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        let many: String = (0..=MAX_REQUIREMENTS).map(|i| format!("p{i}\n")).collect();
        assert!(parse("r.txt", &many).is_err());
        assert!(parse("r.txt", &"#".repeat(MAX_REQUIREMENTS_BYTES + 1)).is_err());
    }

    #[test]
    fn environment_markers_keep_or_leave_out_a_requirement() {
        let text = concat!(
            "keep==1.0 ; python_version >= \"3.8\" and sys_platform != \"win32\"\n",
            "tomli>=1; python_version < \"3.11\"\n",
            "# the same package under two markers: only the one that holds is kept\n",
            "dual==1.0; python_version < '3.13'\n",
            "dual==2.0; python_version >= '3.13' --hash=sha256:",
            "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n",
            "colorama; os_name == \"nt\"\n",
        );
        let r = parse("requirements.txt", text).unwrap();
        let kept: Vec<_> = r.iter().map(|r| (r.key.as_str(), r.line)).collect();
        assert_eq!(kept, [("keep", 1), ("dual", 5)]);
        assert_eq!(r[0].text, "keep==1.0");
        assert!(r[1].allows(&Version::parse("2.0").unwrap()));
        assert_eq!(r[1].hashes, vec!["b".repeat(64)]);
    }

    #[test]
    fn malformed_markers_name_the_line_and_why() {
        let deep = format!(
            "pkg; {}os_name == 'posix'{}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        let long = format!("pkg; {}", vec!["os_name == 'posix'"; 100].join(" and "));
        for (text, why) in [
            ("ok\npkg; python_version ~ '3'\n", "r.txt:2"),
            ("pkg; python_version ~ '3'", "marker"),
            ("pkg; shoe_size > '42'", "marker"),
            ("pkg;", "empty environment marker"),
            (deep.as_str(), "parentheses"),
            (long.as_str(), "longer than"),
        ] {
            let e = parse("r.txt", text).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn normalises_names() {
        assert_eq!(normalize("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalize("a.-_b"), "a-b");
    }
}
