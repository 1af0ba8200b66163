//! ARCHITECTURE.md's rules of what may depend on what, held against the workspace as cargo
//! sees it (`cargo metadata`): every package has a rule, and every dependency on another
//! package of the workspace (normal, build or dev) is one its rule allows. And `store` is the
//! only crate of the product that speaks SQL: the only one that depends on `sqlx`. And the rules
//! of the code's shape: what is declared once, the search attributes ([`search_attributes`]);
//! no function of the tests, `chaos` or `testkit` over 100 lines ([`functions`]).

mod functions;
mod search_attributes;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

type Rules = BTreeMap<String, BTreeSet<String>>;

#[test]
fn every_dependency_is_one_architecture_md_allows() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md"))?;
    let rules = rules(&text)?;
    let deps = workspace_dependencies(&root)?;
    let broken = violations(&rules, &deps);
    ensure!(
        broken.is_empty(),
        "ARCHITECTURE.md's dependency rules are broken:\n{}",
        broken.join("\n")
    );
    Ok(())
}

/// Who may depend on `sqlx`: `store`, and the crates that check what the saga did.
const SPEAKS_SQL: [&str; 5] = ["store", "testkit", "saga-tests", "bench", "chaos"];

#[test]
fn store_is_the_only_crate_of_the_product_that_speaks_sql() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let users = dependents(&metadata(&root)?, "sqlx")?;
    // Found at all, or the guard guards nothing.
    ensure!(
        users.contains("store"),
        "store does not depend on sqlx? {users:?}"
    );
    let strays: Vec<&String> = users
        .iter()
        .filter(|p| !SPEAKS_SQL.contains(&p.as_str()))
        .collect();
    ensure!(
        strays.is_empty(),
        "only store speaks SQL (ARCHITECTURE.md); these depend on sqlx: {strays:?}"
    );
    Ok(())
}

/// The guard proven red: a dependency the rules do not allow, and a package without a rule,
/// are both reported.
#[test]
fn a_dependency_against_the_rules_is_reported() -> Result<()> {
    let rules = rules("```text\ndomain:\nstore: domain\n```\n")?;
    let deps: Rules = [
        ("domain".to_owned(), BTreeSet::from(["store".to_owned()])),
        ("store".to_owned(), BTreeSet::from(["domain".to_owned()])),
        ("stray".to_owned(), BTreeSet::new()),
    ]
    .into_iter()
    .collect();
    let broken = violations(&rules, &deps);
    ensure!(
        broken == ["domain may not depend on store", "stray has no rule"],
        "{broken:?}"
    );
    Ok(())
}

/// The first ```text block whose lines are `package: dep, dep`.
fn rules(markdown: &str) -> Result<Rules> {
    let mut blocks = markdown.split("```text").skip(1);
    let block = blocks
        .find_map(|b| b.split("```").next())
        .context("ARCHITECTURE.md has no ```text block of rules")?;
    let mut rules = Rules::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, deps) = line
            .split_once(':')
            .with_context(|| format!("not a rule: {line:?}"))?;
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
        if rules.insert(name.trim().to_owned(), deps).is_some() {
            bail!("{name} has two rules");
        }
    }
    Ok(rules)
}

/// The workspace's packages as `cargo metadata` has them.
fn metadata(root: &Path) -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()?;
    ensure!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The workspace packages that depend on `crate_name`, in any kind.
fn dependents(meta: &Value, crate_name: &str) -> Result<BTreeSet<String>> {
    let packages = meta["packages"].as_array().context("no packages")?;
    Ok(packages
        .iter()
        .filter(|p| {
            p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["name"].as_str() == Some(crate_name))
        })
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// Each workspace package and the workspace packages it depends on, of every kind.
fn workspace_dependencies(root: &Path) -> Result<Rules> {
    let meta = metadata(root)?;
    let packages = meta["packages"].as_array().context("no packages")?;
    let names: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut deps = Rules::new();
    for package in packages {
        let name = package["name"]
            .as_str()
            .context("a package without a name")?;
        let of_workspace = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str())
            .filter(|d| names.contains(*d))
            .map(str::to_owned)
            .collect();
        deps.insert(name.to_owned(), of_workspace);
    }
    Ok(deps)
}

fn violations(rules: &Rules, deps: &Rules) -> Vec<String> {
    let mut broken = Vec::new();
    for (package, uses) in deps {
        let Some(allowed) = rules.get(package) else {
            broken.push(format!("{package} has no rule"));
            continue;
        };
        broken.extend(
            uses.difference(allowed)
                .map(|d| format!("{package} may not depend on {d}")),
        );
    }
    broken
}
