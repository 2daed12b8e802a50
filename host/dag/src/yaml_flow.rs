//! Re-indents the continuation lines of flow collections and quoted scalars, which PyYAML
//! accepts at any indentation and `yaml-rust2` refuses when they sit left of their block.
//!
//! dag-factory users write, and PyYAML loads,
//!
//! ```yaml
//!     arguments : [
//!        'arg1',
//!     ]
//! ```
//!
//! where the closing `]` is no further right than `arguments`. Inside a flow collection or a
//! quoted scalar the leading blanks of a line are not content, so giving such a line more of
//! them changes nothing but the indentation check. [`indent_flow_lines`] does only that: no line
//! is added, removed or otherwise changed, so line numbers in errors stay right.

/// Where a line starts, for the scan.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// Block context (indentation is meaningful).
    Block,
    /// Inside `'...'`.
    Single,
    /// Inside `"..."`.
    Double,
}

/// Indent every line that begins inside a flow collection or a quoted scalar one column past
/// the line where that construct began (when it is not already further right).
pub fn indent_flow_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut depth: usize = 0; // open `[` / `{`
    let mut ctx = Ctx::Block;
    let mut open_indent: usize = 0; // indentation of the line where the construct began
                                    // Block scalar (`|`, `>`) content: lines indented more than this are literal text.
    let mut block_scalar: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                out.push_str(line);
                continue;
            }
            block_scalar = None;
        }
        let inside = depth > 0 || ctx != Ctx::Block;
        if inside && !blank && indent <= open_indent {
            out.push_str(&" ".repeat(open_indent + 1 - indent));
        }
        out.push_str(line);
        if !inside {
            open_indent = indent;
        }
        let bytes = line.as_bytes();
        let mut prev_sig: Option<u8> = None; // last non-blank byte outside quotes on this line
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match ctx {
                Ctx::Single => {
                    if c == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            ctx = Ctx::Block;
                            prev_sig = Some(c);
                        }
                    }
                }
                Ctx::Double => {
                    if c == b'\\' {
                        i += 1;
                    } else if c == b'"' {
                        ctx = Ctx::Block;
                        prev_sig = Some(c);
                    }
                }
                Ctx::Block => {
                    let at_start = matches!(
                        prev_sig,
                        None | Some(b':' | b'-' | b'[' | b'{' | b',' | b'?')
                    );
                    match c {
                        b'#' if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => break,
                        b'\'' | b'"' if at_start => {
                            ctx = if c == b'\'' { Ctx::Single } else { Ctx::Double };
                        }
                        b'[' | b'{' if at_start => {
                            depth += 1;
                            prev_sig = Some(c);
                        }
                        b']' | b'}' if depth > 0 => {
                            depth -= 1;
                            prev_sig = Some(c);
                        }
                        b' ' | b'\t' | b'\r' | b'\n' => {}
                        _ => prev_sig = Some(c),
                    }
                }
            }
            i += 1;
        }
        // `key: |` / `- >-` outside any flow: the following more-indented lines are text.
        if depth == 0 && ctx == Ctx::Block {
            let code = strip_comment(line).trim_end();
            let last = code.rsplit([' ', '\t']).next().unwrap_or("");
            if !last.is_empty()
                && (last.starts_with('|') || last.starts_with('>'))
                && last[1..]
                    .chars()
                    .all(|c| matches!(c, '+' | '-' | '1'..='9'))
                && code.len() > last.len()
            {
                block_scalar = Some(indent);
            }
        }
    }
    out
}

/// The line without a trailing ` # comment` (quotes are not considered: only used to find a
/// block scalar indicator at the end of a line).
fn strip_comment(line: &str) -> &str {
    match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_bracket_at_key_column() {
        let text = "d:\n  a : [\n     'x',\n  ]\n  b: 1\n";
        let fixed = indent_flow_lines(text);
        assert_eq!(fixed, "d:\n  a : [\n     'x',\n   ]\n  b: 1\n");
    }

    #[test]
    fn block_text_is_untouched() {
        let text = "a: |\n  [ not flow\nb: \"x\ny\"\n";
        assert_eq!(
            indent_flow_lines(text),
            "a: |\n  [ not flow\nb: \"x\n y\"\n"
        );
    }

    #[test]
    fn apostrophes_in_plain_text_are_not_quotes() {
        let text = "a: it's fine\nb: [1,\n2]\n";
        assert_eq!(indent_flow_lines(text), "a: it's fine\nb: [1,\n 2]\n");
    }
}
