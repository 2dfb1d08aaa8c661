//! `toolmesh tools`: the catalog as a table or JSON.

use serde_json::{Value, json};

use crate::{cli::ToolsArgs, output, target::Target};

/// One row of the listing.
struct Row {
    name: String,
    service: Option<String>,
    description: String,
    annotations: String,
    json: Value,
}

pub(crate) async fn run(args: ToolsArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target).await?;
    let rows = rows(&target).await;
    target.close().await;
    let rows = rows?;
    if args.json {
        let list: Vec<&Value> = rows.iter().map(|r| &r.json).collect();
        output::emit(&serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    let mut table = output::table(&["tool", "service", "annotations", "description"]);
    for row in &rows {
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
    let sentence = line.find(". ").map_or(line, |end| &line[..=end]).trim_end();
    if sentence.chars().count() <= MAX {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(MAX - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::first_line;

    #[test]
    fn descriptions_are_shortened_for_the_table() {
        assert_eq!(first_line("Add two numbers. Exactly."), "Add two numbers.");
        assert_eq!(first_line("One line\nanother"), "One line");
        let long = "x".repeat(100);
        assert_eq!(first_line(&long).chars().count(), 72);
        assert!(first_line(&long).ends_with('…'));
    }
}
