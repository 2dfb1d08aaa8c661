//! `toolmesh tools`: the catalog as a table or JSON.

use std::process::ExitCode;

use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

use crate::{
    cli::ToolsArgs,
    output,
    target::{self, Target},
};

/// One row of the listing.
struct Row {
    name: String,
    service: Option<String>,
    description: String,
    annotations: String,
    json: Value,
}

/// Lists the tools; exit status 1 when every configured server is down.
pub(crate) async fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let target = Target::open(&args.target).await?;
    let rows = rows(&target).await;
    let (down, services) = target.registry().map_or((Vec::new(), 0), |registry| {
        (target::down_services(registry), registry.services().len())
    });
    target.close().await;
    let rows = rows?;
    for (_, why) in &down {
        eprintln!("toolmesh: service down: {why}");
    }
    let all_down = services > 0 && down.len() == services;
    if args.json {
        let list: Vec<&Value> = rows.iter().map(|r| &r.json).collect();
        output::emit(&serde_json::to_string_pretty(&list)?)?;
    } else {
        print_table(&rows)?;
    }
    if all_down {
        eprintln!("toolmesh: every configured server is down; no tool can be called");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[Row]) -> anyhow::Result<()> {
    let mut table = output::table(&["tool", "service", "annotations", "description"]);
    for row in rows {
        table.add_row(vec![
            row.name.as_str(),
            row.service.as_deref().unwrap_or("-"),
            row.annotations.as_str(),
            first_line(&row.description).as_str(),
        ]);
    }
    output::emit(&table.to_string())?;
    eprintln!("{} tools", rows.len());
    Ok(())
}

async fn rows(target: &Target) -> anyhow::Result<Vec<Row>> {
    if let Some(registry) = target.registry() {
        let catalog = registry.catalog();
        return Ok(catalog
            .entries()
            .iter()
            .map(|entry| {
                let tool = entry.public_tool();
                let service = entry.service.to_string();
                Row {
                    name: entry.rendered.clone(),
                    annotations: output::annotations(tool.annotations.as_ref()),
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    json: describe(&tool, Some(&service)),
                    service: Some(service),
                }
            })
            .collect());
    }
    let Target::Remote(session) = target else {
        return Ok(Vec::new());
    };
    let tools = session.list_tools(&session.context()).await?;
    Ok(tools
        .iter()
        .map(|tool| Row {
            name: tool.name.to_string(),
            service: None,
            annotations: output::annotations(tool.annotations.as_ref()),
            description: tool.description.as_deref().unwrap_or_default().to_owned(),
            json: describe(tool, None),
        })
        .collect())
}

fn describe(tool: &toolmesh::layers::core::Tool, service: Option<&str>) -> Value {
    let mut value = serde_json::to_value(tool).unwrap_or_else(|_| json!({ "name": tool.name }));
    if let (Some(object), Some(service)) = (value.as_object_mut(), service) {
        object.insert("service".to_owned(), Value::from(service));
    }
    value
}

/// The first sentence of `text`, at most 72 characters (the JSON has it whole).
fn first_line(text: &str) -> String {
    const MAX: usize = 72;
    let line = text.lines().next().unwrap_or_default();
    let sentence = first_sentence(line);
    if sentence.chars().count() <= MAX {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(MAX - 1).collect();
    format!("{}…", cut.trim_end())
}

/// The first sentence of `line` (Unicode sentence boundaries), not cut after an
/// abbreviation such as "e.g." or "etc.".
fn first_sentence(line: &str) -> &str {
    let mut end = 0;
    for piece in line.split_sentence_bounds() {
        end += piece.len();
        let last_word = piece.trim_end().rsplit(' ').next().unwrap_or_default();
        if !is_abbreviation(last_word) {
            break;
        }
    }
    line[..end].trim_end()
}

/// "e.g.", "i.e.", "etc.", "vs." and other words a period ends without ending the sentence.
fn is_abbreviation(word: &str) -> bool {
    const WORDS: [&str; 12] = [
        "etc.", "vs.", "approx.", "incl.", "cf.", "no.", "eg.", "ie.", "resp.", "max.", "min.",
        "esp.",
    ];
    let word = word.trim_start_matches(['(', '[', '"', '\'']);
    // Letters between periods: e.g., i.e., U.S. (not a domain such as example.com.)
    let mut letters = word.trim_end_matches('.').split('.');
    let initials = letters.clone().count() > 1
        && letters.all(|l| (1..=2).contains(&l.len()) && l.chars().all(char::is_alphabetic));
    initials || WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn descriptions_are_shortened_for_the_table() {
        assert_eq!(first_line("Add two numbers. Exactly."), "Add two numbers.");
        assert_eq!(first_line("One line\nanother"), "One line");
        assert_eq!(
            first_line("Fetch a URL, e.g. https://example.com. Then more."),
            "Fetch a URL, e.g. https://example.com."
        );
        assert_eq!(
            first_line("Convert units (i.e. Metric to imperial). Rest."),
            "Convert units (i.e. Metric to imperial)."
        );
        assert_eq!(
            first_line("Sum, max. Ten values. More."),
            "Sum, max. Ten values."
        );
        assert_eq!(first_line("No period at all"), "No period at all");
        let long = "x".repeat(100);
        assert_eq!(first_line(&long).chars().count(), 72);
        assert!(first_line(&long).ends_with('…'));
    }
}
