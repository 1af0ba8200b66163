//! The workflow's custom search attributes as the servers register them: `search-attributes.txt`
//! at the repository's root, one `Name=Type` a line (`#` starts a comment), read by
//! `scripts/temporal.sh`, `docker-compose.yml` and `chaos`. A test holds it equal to
//! `workflows::search_attributes`.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// The file, relative to the repository's root.
pub const FILE: &str = "search-attributes.txt";

/// The `(name, type)` pairs of the file's text, in order.
pub fn parse(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, kind)) = line.split_once('=') else {
            bail!("{FILE}:{}: not Name=Type: {line:?}", n + 1);
        };
        let (name, kind) = (name.trim(), kind.trim());
        if name.is_empty() || kind.is_empty() || name.contains(char::is_whitespace) {
            bail!("{FILE}:{}: not Name=Type: {line:?}", n + 1);
        }
        out.push((name.to_owned(), kind.to_owned()));
    }
    Ok(out)
}

/// The file of the repository at `root`.
pub fn read(root: &Path) -> Result<Vec<(String, String)>> {
    let path = root.join(FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_name_equals_type() -> Result<()> {
        let text = "# comment\n\nOrderStatus=Keyword\n CustomerId = Int \n";
        assert_eq!(
            parse(text)?,
            [
                ("OrderStatus".to_owned(), "Keyword".to_owned()),
                ("CustomerId".to_owned(), "Int".to_owned())
            ]
        );
        assert!(parse("OrderStatus").is_err());
        assert!(parse("=Int").is_err());
        Ok(())
    }
}
