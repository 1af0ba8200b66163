//! The matrix as a markdown table: a row per crash point (and the scenario that reaches it), a
//! column per event, each cell ✓ or ✗ with the checks that failed and a footnote with the whole
//! text; and its place in docs/RELIABILITY.md, between two markers.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::cell::CellResult;
use super::table::{EVENTS, ROWS, Scenario};

pub const BEGIN: &str = "<!-- crash-matrix:begin -->";
pub const END: &str = "<!-- crash-matrix:end -->";

const SCENARIOS: [Scenario; 5] = [
    Scenario::Happy,
    Scenario::SoldOut,
    Scenario::UserCancel,
    Scenario::Expiry,
    Scenario::PointsShort,
];

/// The table, its legend and its footnotes, under `summary`.
pub fn markdown(results: &[CellResult], summary: &str) -> String {
    let mut head = String::from("| point | scenario |");
    let mut rule = String::from("| --- | --- |");
    for e in EVENTS {
        head.push_str(&format!(" {} |", e.label()));
        rule.push_str(" --- |");
    }
    let mut lines = vec![summary.to_owned(), String::new(), head, rule];
    let mut notes = Vec::new();
    for row in ROWS {
        let of_row: Vec<&CellResult> = results.iter().filter(|r| r.cell.row() == *row).collect();
        if of_row.is_empty() {
            continue;
        }
        let mut line = format!("| `{}` | {} |", row.point, row.scenario.short());
        for event in EVENTS {
            let text = match of_row.iter().find(|r| r.cell.event == event) {
                None => "·".to_owned(),
                Some(r) if r.ok() => "✓".to_owned(),
                Some(r) => {
                    notes.push(footnote(notes.len() + 1, r));
                    format!("✗ {}[^{}]", tags(r), notes.len())
                }
            };
            line.push_str(&format!(" {text} |"));
        }
        lines.push(line);
    }
    lines.push(String::new());
    lines.push(
        "✓ every check passed; ✗ the checks that failed (the footnote has the whole text); · \
         not run. Scenarios:"
            .to_owned(),
    );
    lines.push(String::new());
    for s in SCENARIOS {
        lines.push(format!("- {}: {}", s.short(), s.describe()));
    }
    if !notes.is_empty() {
        lines.push(String::new());
        lines.extend(notes);
    }
    lines.join("\n") + "\n"
}

/// The checks a cell failed, by the tag its violations start with (`[outcome] ...`).
fn tags(r: &CellResult) -> String {
    let mut tags: Vec<&str> = Vec::new();
    for f in r.failures() {
        let tag = f
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map_or("other", |(tag, _)| tag);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let shown = tags.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    match tags.len() {
        0..=3 => shown,
        n => format!("{shown} +{}", n - 3),
    }
}

fn footnote(n: usize, r: &CellResult) -> String {
    let text: Vec<String> = r.failures().map(|f| f.replace('\n', " ")).collect();
    format!(
        "[^{n}]: `{}` × {} ({}): {}",
        r.cell.point,
        r.cell.event.label(),
        r.cell.scenario.short(),
        text.join(" — ")
    )
}

/// Puts `table` between the markers of docs/RELIABILITY.md.
pub fn write_doc(root: &Path, table: &str) -> Result<()> {
    let file = root.join("docs/RELIABILITY.md");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} has no {BEGIN} … {END} markers", file.display());
    };
    if end < begin {
        bail!("{}: {END} comes before {BEGIN}", file.display());
    }
    let updated = format!("{}{BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    std::fs::write(&file, updated).with_context(|| format!("cannot write {}", file.display()))
}
