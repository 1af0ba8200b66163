//! No function of the tests, `chaos` or `testkit` is longer than [`LONGEST`] lines, from its
//! `fn` to its closing brace: a test or a scenario reads as its steps, each a function of its
//! own.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};

/// The longest a function of the harness may be.
const LONGEST: usize = 100;

/// The folders held to it, from the repository's root.
const FOLDERS: [&str; 3] = ["tests", "chaos", "testkit"];

#[test]
fn no_function_of_the_tests_chaos_or_testkit_is_over_100_lines() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = Vec::new();
    for folder in FOLDERS {
        for file in rust_files(&root.join(folder))? {
            let text = std::fs::read_to_string(&file)?;
            let shown = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            long.extend(
                functions(&text)
                    .into_iter()
                    .filter(|f| f.lines > LONGEST)
                    .map(|f| format!("{shown}:{} {} is {} lines", f.line, f.name, f.lines)),
            );
        }
    }
    ensure!(
        long.is_empty(),
        "functions over {LONGEST} lines:\n{}",
        long.join("\n")
    );
    Ok(())
}

/// The guard proven red: a long function is measured as long, whatever braces its strings,
/// characters and comments hold, and a function without a body is no function.
#[test]
fn a_long_function_is_measured_whatever_its_text_holds() {
    let body = "    let x = 1;\n".repeat(99);
    let text = format!(
        "trait T {{\n    fn declared(&self);\n}}\n\n\
         fn long<'a>(s: &'a str) -> char {{\n{body}    let _ = \"}}\";\n    // }}\n    '}}'\n}}\n\n\
         fn short() {{}}\n"
    );
    let found = functions(&text);
    let names: Vec<(&str, usize, usize)> = found
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(names, [("long", 5, 104), ("short", 110, 1)]);
}

/// A function: its name, the line its `fn` is on (from 1) and its length in lines.
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

/// The `.rs` files under `dir`, but not under a `target` folder.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                files.extend(rust_files(&path)?);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every function with a body in `text`.
fn functions(text: &str) -> Vec<Function> {
    let code = code_only(text);
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("fn ").map(|i| i + at) {
        at = i + 3;
        let word_start = i == 0 || !is_ident(code[..i].chars().next_back().unwrap_or(' '));
        let name: String = code[at..]
            .trim_start()
            .chars()
            .take_while(|c| is_ident(*c))
            .collect();
        if !word_start || name.is_empty() {
            continue;
        }
        if let Some(end) = body_end(&code, at) {
            let line = code[..i].matches('\n').count() + 1;
            let last = code[..end].matches('\n').count() + 1;
            found.push(Function {
                name,
                line,
                lines: last - line + 1,
            });
        }
    }
    found
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where the body of the function whose signature starts at `from` ends (its closing brace),
/// or `None` when it has none (a `;` comes first).
fn body_end(code: &str, from: usize) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut nesting = 0i32;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'<' => nesting += 1,
            b')' | b']' | b'>' if bytes.get(i.wrapping_sub(1)) != Some(&b'-') => nesting -= 1,
            b';' if nesting <= 0 => return None,
            b'{' if nesting <= 0 => break,
            _ => {}
        }
        i += 1;
    }
    let mut depth = 0;
    for (j, b) in bytes.iter().enumerate().skip(i) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` with its comments, strings and character literals blanked out (newlines kept), so
/// that only the code's own braces are counted.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, from: &[char]| {
        for c in from {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
    };
    while i < chars.len() {
        let rest = &chars[i..];
        let after_ident = i > 0 && is_ident(chars[i - 1]);
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter().position(|c| *c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            block_comment_end(rest)
        } else if !after_ident && raw_string_start(rest).is_some() {
            raw_string_end(rest)
        } else if rest[0] == '"' || (!after_ident && rest.starts_with(&['b', '"'])) {
            string_end(rest)
        } else if rest[0] == '\'' {
            char_literal_end(rest).unwrap_or(1)
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        blank(&mut out, &rest[..end]);
        i += end;
    }
    out
}

fn block_comment_end(rest: &[char]) -> usize {
    let mut depth = 0;
    let mut j = 0;
    while j < rest.len() {
        if rest[j..].starts_with(&['/', '*']) {
            depth += 1;
            j += 2;
        } else if rest[j..].starts_with(&['*', '/']) {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    rest.len()
}

/// The number of `#` of a raw string starting here (`r"`, `r#"`, `br#"`...).
fn raw_string_start(rest: &[char]) -> Option<usize> {
    let skip = usize::from(rest.first() == Some(&'b'));
    if rest.get(skip) != Some(&'r') {
        return None;
    }
    let hashes = rest[skip + 1..].iter().take_while(|c| **c == '#').count();
    (rest.get(skip + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn raw_string_end(rest: &[char]) -> usize {
    let hashes = raw_string_start(rest).unwrap_or(0);
    let open = rest.iter().position(|c| *c == '"').unwrap_or(0) + 1;
    let mut j = open;
    while j < rest.len() {
        if rest[j] == '"'
            && rest[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return j + 1 + hashes;
        }
        j += 1;
    }
    rest.len()
}

fn string_end(rest: &[char]) -> usize {
    let mut j = if rest[0] == 'b' { 2 } else { 1 };
    while j < rest.len() && rest[j] != '"' {
        j += if rest[j] == '\\' { 2 } else { 1 };
    }
    (j + 1).min(rest.len())
}

/// The end of a character literal here (`'x'`, `'\n'`, `'\u{1F511}'`), or `None` for a
/// lifetime.
fn char_literal_end(rest: &[char]) -> Option<usize> {
    if rest.get(1) == Some(&'\\') {
        let close = rest[2..].iter().position(|c| *c == '\'')?;
        return Some(close + 3);
    }
    (rest.get(2) == Some(&'\'')).then_some(3)
}
