//! `search-attributes.txt`, the list every server registers (scripts/temporal.sh,
//! docker-compose.yml, chaos), against the workflow's own declaration
//! (`workflows::search_attributes`): the same names with the same types, so that the two
//! cannot drift.

use std::path::Path;

use anyhow::{Result, ensure};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use workflows::search_attributes::{CUSTOMER_ID, ORDER_STATUS, ORDER_TOTAL};

#[test]
fn the_servers_register_the_search_attributes_the_workflow_sets() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = testkit::search_attributes::read(&root)?;
    let wrong = differences(&file, &declared());
    ensure!(
        wrong.is_empty(),
        "{} and workflows::search_attributes differ:\n{}",
        testkit::search_attributes::FILE,
        wrong.join("\n")
    );
    Ok(())
}

/// The guard proven red: a missing attribute, an extra one and a changed type are reported.
#[test]
fn a_list_that_drifted_is_reported() -> Result<()> {
    let drifted = testkit::search_attributes::parse("OrderStatus=Text\nOrderTotal=Int\nX=Int\n")?;
    let wrong = differences(&drifted, &declared());
    ensure!(
        wrong
            == [
                "CustomerId (Int) is not in the file",
                "OrderStatus is Text in the file, Keyword in the workflow",
                "X is in the file, not in the workflow",
            ],
        "{wrong:?}"
    );
    Ok(())
}

/// What the workflow declares: each key's name and its type as the Temporal CLI spells it.
fn declared() -> Vec<(String, String)> {
    vec![
        (ORDER_STATUS.name(), ORDER_STATUS.indexed_value_type()),
        (CUSTOMER_ID.name(), CUSTOMER_ID.indexed_value_type()),
        (ORDER_TOTAL.name(), ORDER_TOTAL.indexed_value_type()),
    ]
    .into_iter()
    .map(|(name, kind)| (name.to_owned(), cli_type(kind).to_owned()))
    .collect()
}

/// The CLI's name of a type (`--search-attribute Name=Type`).
fn cli_type(kind: IndexedValueType) -> &'static str {
    match kind {
        IndexedValueType::Unspecified => "Unspecified",
        IndexedValueType::Text => "Text",
        IndexedValueType::Keyword => "Keyword",
        IndexedValueType::Int => "Int",
        IndexedValueType::Double => "Double",
        IndexedValueType::Bool => "Bool",
        IndexedValueType::Datetime => "Datetime",
        IndexedValueType::KeywordList => "KeywordList",
    }
}

/// How the file's `(name, type)` pairs differ from the workflow's, sorted.
fn differences(file: &[(String, String)], declared: &[(String, String)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, kind) in declared {
        match file.iter().find(|(n, _)| n == name) {
            None => wrong.push(format!("{name} ({kind}) is not in the file")),
            Some((_, k)) if k != kind => {
                wrong.push(format!("{name} is {k} in the file, {kind} in the workflow"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in file {
        if !declared.iter().any(|(n, _)| n == name) {
            wrong.push(format!("{name} is in the file, not in the workflow"));
        }
    }
    wrong.sort();
    wrong
}
