//! Which YAML tags a DAG file may carry, and what each one makes of its value.
//!
//! dag-factory reads DAG files with PyYAML's `FullLoader`. weft reads the tags that loader turns
//! into plain data (`!!str`, `!!int`, `!!python/tuple`, ...) the same way, and
//! `!!python/name:module.attr` as the reference text it names. Tags that build or call Python
//! objects (`!!python/object/apply:os.system`, `!!python/object/new:`, `!!python/object:`,
//! `!!python/module:`) and tags no loader knows (`!kubernetes.client.models.V1Pod`) are refused
//! at their line: nothing a DAG file says is ever imported, constructed or called.

use yaml_rust2::parser::Tag;

/// The standard YAML tag prefix (`!!`).
const YAML_PREFIX: &str = "tag:yaml.org,2002:";

/// What a tag does to the value it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagUse {
    /// A string, whatever the scalar looks like.
    Str,
    /// An integer.
    Int,
    /// A float.
    Float,
    /// A boolean.
    Bool,
    /// `null`.
    Null,
    /// A scalar resolved as if untagged (`!!timestamp`: dates stay text for the DAG loader).
    Plain,
    /// `!!python/name:X`: the text `X`, a reference to a Python object that is never imported.
    PythonName(String),
    /// A sequence (`!!seq`, `!!python/list`, `!!python/tuple`).
    Seq,
    /// A mapping (`!!map`, `!!python/dict`).
    Map,
    /// Refused, with the reason.
    Refused(String),
}

/// The tag as written in messages (`!!python/object/apply:os.system`, `!Custom`).
pub(crate) fn shown(tag: &Tag) -> String {
    match tag.handle.strip_prefix(YAML_PREFIX) {
        Some(rest) => format!("!!{rest}{}", tag.suffix),
        None if tag.handle == "!" || tag.handle.is_empty() => format!("!{}", tag.suffix),
        None => format!("!<{}{}>", tag.handle, tag.suffix),
    }
}

/// What `tag` means on a scalar (`is_scalar`) or on a collection.
pub(crate) fn classify(tag: &Tag, is_scalar: bool) -> TagUse {
    let full = format!("{}{}", tag.handle, tag.suffix);
    let Some(name) = full.strip_prefix(YAML_PREFIX) else {
        return TagUse::Refused(format!(
            "tag `{}` is not read: PyYAML's loader, which dag-factory uses, has no constructor for it, and weft builds no objects from DAG files",
            shown(tag)
        ));
    };
    if let Some(reference) = name.strip_prefix("python/name:") {
        return if is_scalar && !reference.is_empty() {
            TagUse::PythonName(reference.to_string())
        } else {
            TagUse::Refused(format!(
                "tag `{}` must be on a scalar naming `module.attribute`",
                shown(tag)
            ))
        };
    }
    if name.starts_with("python/object") || name.starts_with("python/module") {
        return TagUse::Refused(format!(
            "tag `{}` would import, construct or call Python code; DAG files are data, so it is refused (PyYAML's safe and full loaders refuse most of these too)",
            shown(tag)
        ));
    }
    let use_ = match name {
        "str" | "python/str" | "python/unicode" => TagUse::Str,
        "int" | "python/int" | "python/long" => TagUse::Int,
        "float" | "python/float" => TagUse::Float,
        "bool" | "python/bool" => TagUse::Bool,
        "null" | "python/none" => TagUse::Null,
        "timestamp" => TagUse::Plain,
        "seq" | "python/list" | "python/tuple" => TagUse::Seq,
        "map" | "python/dict" => TagUse::Map,
        _ => {
            return TagUse::Refused(format!(
                "tag `{}` is not read by weft (supported: !!str, !!int, !!float, !!bool, !!null, !!timestamp, !!seq, !!map, their !!python/ forms, !!python/tuple and !!python/name:)",
                shown(tag)
            ))
        }
    };
    let scalar_use = !matches!(use_, TagUse::Seq | TagUse::Map);
    if scalar_use == is_scalar {
        use_
    } else {
        TagUse::Refused(format!(
            "tag `{}` does not fit a {}",
            shown(tag),
            if is_scalar { "scalar" } else { "collection" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(suffix: &str) -> Tag {
        Tag {
            handle: YAML_PREFIX.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn data_tags_are_read_and_code_tags_refused() {
        assert_eq!(classify(&yaml("str"), true), TagUse::Str);
        assert_eq!(classify(&yaml("python/tuple"), false), TagUse::Seq);
        assert_eq!(
            classify(&yaml("python/name:mod.f"), true),
            TagUse::PythonName("mod.f".into())
        );
        for code in [
            "python/object/apply:os.system",
            "python/object/new:subprocess.Popen",
            "python/object:mod.Cls",
            "python/module:os",
        ] {
            let TagUse::Refused(why) = classify(&yaml(code), false) else {
                panic!("{code} accepted");
            };
            assert!(why.contains(&format!("!!{code}")), "{why}");
        }
        let local = Tag {
            handle: "!".into(),
            suffix: "kubernetes.client.models.V1Pod".into(),
        };
        let TagUse::Refused(why) = classify(&local, false) else {
            panic!("local tag accepted");
        };
        assert!(why.contains("!kubernetes.client.models.V1Pod"), "{why}");
        assert!(matches!(classify(&yaml("seq"), true), TagUse::Refused(_)));
    }
}
