//! From a [`WorkflowSpec`] to a checked graph: steps flattened into nodes (a parallel
//! group is an opening node its steps wait for and a closing node waiting for them), each
//! with the nodes it waits for. Every mistake is reported at its key path.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde_json::Value;

use super::{Step, WorkflowError, WorkflowSpec, template::Templates};

/// What exists outside the workflow: the tools and agents its steps name.
pub trait Known {
    /// `Ok` when `tool` can be called; else why not, with the closest names.
    fn tool(&self, tool: &str) -> Result<(), String>;
    /// `Ok` when `agent` is defined; else why not, with the defined names.
    fn agent(&self, agent: &str) -> Result<(), String>;
}

/// Steps running at once by default.
pub(crate) const DEFAULT_MAX_PARALLEL: usize = 8;

/// What a node does.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Calls the tools in order until one answers.
    Tool {
        tools: Vec<String>,
        arguments: Option<Value>,
    },
    /// Runs an agent on a task (a template).
    Agent { agent: String, task: String },
    /// Opens a parallel group: decides (by `when:`) whether its steps run.
    Open,
    /// Closes a parallel group (opened by node `open`) once its steps are done.
    Close { open: usize, children: Vec<usize> },
}

/// One node of the graph.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The step's id (a group's opening and closing nodes share it).
    pub(crate) id: String,
    pub(crate) action: Action,
    /// Nodes that must be done first.
    pub(crate) deps: Vec<usize>,
    pub(crate) when: Option<String>,
    pub(crate) timeout: Option<Duration>,
    /// The opening node of the group the step is in.
    pub(crate) group: Option<usize>,
}

/// A checked workflow.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) nodes: Vec<Node>,
    /// The node reporting each step, in the order written (a group's closing node).
    pub(crate) report: Vec<usize>,
    /// The node whose output is the default answer: the last top-level step.
    pub(crate) last: usize,
}

/// A step with where it is written and which nodes stand for it.
struct Entry<'a> {
    step: &'a Step,
    path: Vec<String>,
    /// The group's opening node, or the step's node.
    start: usize,
    /// The group's closing node, or the step's node.
    end: usize,
    /// The opening node of the enclosing group.
    group: Option<usize>,
    top_level: bool,
}

impl WorkflowSpec {
    /// Checks the workflow: step ids, kinds, `needs:` and template references, cycles,
    /// template syntax, and the tools and agents named (against `known`).
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Invalid`] at the key path of the first mistake.
    pub fn validate(&self, known: &dyn Known) -> Result<(), WorkflowError> {
        Plan::new(self, known, &Templates::default()).map(drop)
    }
}

impl Plan {
    pub(crate) fn new(
        spec: &WorkflowSpec,
        known: &dyn Known,
        templates: &Templates,
    ) -> Result<Self, WorkflowError> {
        if spec.steps.is_empty() {
            return Err(invalid(
                &["steps"],
                "a workflow needs at least one step (a `tool:`, `agent:` or `parallel:` step)",
            ));
        }
        if spec.max_parallel == Some(0) {
            return Err(invalid(
                &["max_parallel"],
                "must be at least 1 (steps running at once)",
            ));
        }
        let mut nodes = Vec::new();
        let mut entries = Vec::new();
        flatten(
            &spec.steps,
            &["steps".to_owned()],
            None,
            None,
            &mut nodes,
            &mut entries,
        )?;
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            check_id(entry)?;
            if let Some(first) = ids.insert(&entry.step.id, i) {
                return Err(at(
                    entry,
                    &["id"],
                    format!(
                        "step id `{}` is also the id of {}; step ids must be unique",
                        entry.step.id,
                        super::error::render_path(&entries[first].path)
                    ),
                ));
            }
        }
        let names = ids.keys().copied().collect::<Vec<_>>().join(", ");
        let end_of = |id: &str| ids.get(id).map(|&i| entries[i].end);
        let mut previous: Option<usize> = None;
        for entry in &entries {
            check_kind(entry, known)?;
            let mut deps = BTreeSet::new();
            deps.extend(entry.group);
            match &entry.step.needs {
                Some(needs) => {
                    for need in needs {
                        let end = end_of(need).ok_or_else(|| {
                            at(
                                entry,
                                &["needs"],
                                format!("unknown step `{need}`; steps are: {names}"),
                            )
                        })?;
                        deps.insert(end);
                    }
                }
                None if entry.top_level => deps.extend(previous),
                None => {}
            }
            for (key, read) in references(entry, templates)? {
                if read == entry.step.id {
                    return Err(at_owned(
                        entry,
                        key,
                        format!(
                            "step `{read}` reads its own result; a step can read only the steps before it"
                        ),
                    ));
                }
                let end = end_of(&read).ok_or_else(|| {
                    at_owned(
                        entry,
                        key.clone(),
                        format!("reads `steps.{read}`, an unknown step; steps are: {names}"),
                    )
                })?;
                deps.insert(end);
            }
            nodes[entry.start].deps = deps.into_iter().collect();
            if entry.top_level {
                previous = Some(entry.end);
            }
        }
        if let Some(output) = &spec.output {
            let mut reads = BTreeSet::new();
            templates
                .check_value(output, &mut reads)
                .map_err(|(rest, message)| {
                    let mut path = vec!["output".to_owned()];
                    path.extend(rest);
                    WorkflowError::invalid(path, message)
                })?;
            if let Some(unknown) = reads.iter().find(|r| !ids.contains_key(r.as_str())) {
                return Err(invalid(
                    &["output"],
                    format!("reads `steps.{unknown}`, an unknown step; steps are: {names}"),
                ));
            }
        }
        check_cycles(&nodes, &entries)?;
        let report = entries.iter().map(|e| e.end).collect();
        Ok(Self {
            nodes,
            report,
            last: previous.unwrap_or_default(),
        })
    }
}

/// Nodes for `steps` (and their groups' steps), in the order written.
fn flatten<'a>(
    steps: &'a [Step],
    prefix: &[String],
    group: Option<usize>,
    // A group's `timeout:`, for its steps that set none.
    inherited: Option<Duration>,
    nodes: &mut Vec<Node>,
    entries: &mut Vec<Entry<'a>>,
) -> Result<(), WorkflowError> {
    for (i, step) in steps.iter().enumerate() {
        let mut path = prefix.to_vec();
        path.push(i.to_string());
        let node = |action| Node {
            id: step.id.clone(),
            action,
            deps: Vec::new(),
            when: step.when.clone(),
            timeout: step.timeout.or(inherited),
            group,
        };
        let action = if !step.parallel.is_empty() {
            Action::Open
        } else if let Some(agent) = &step.agent {
            Action::Agent {
                agent: agent.clone(),
                task: step.task.clone().unwrap_or_default(),
            }
        } else {
            Action::Tool {
                tools: step
                    .tool
                    .iter()
                    .chain(&step.fallback_tools)
                    .cloned()
                    .collect(),
                arguments: step.arguments.clone(),
            }
        };
        let start = nodes.len();
        nodes.push(node(action));
        let index = entries.len();
        entries.push(Entry {
            step,
            path: path.clone(),
            start,
            end: start,
            group,
            top_level: prefix.len() == 1,
        });
        if !step.parallel.is_empty() {
            let first_child = entries.len();
            let mut inner = path.clone();
            inner.push("parallel".to_owned());
            let timeout = step.timeout.or(inherited);
            flatten(&step.parallel, &inner, Some(start), timeout, nodes, entries)?;
            // Direct children only: a nested group's steps close into their own group.
            let children: Vec<usize> = entries[first_child..]
                .iter()
                .filter(|e| e.group == Some(start))
                .map(|e| e.end)
                .collect();
            let mut close = node(Action::Close {
                open: start,
                children: children.clone(),
            });
            close.when = None;
            close.deps = children;
            entries[index].end = nodes.len();
            nodes.push(close);
        }
    }
    Ok(())
}

/// Ids are read as `steps.ID` in templates: identifiers only.
fn check_id(entry: &Entry<'_>) -> Result<(), WorkflowError> {
    let id = &entry.step.id;
    let mut chars = id.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return Ok(());
    }
    Err(at(
        entry,
        &["id"],
        if id.is_empty() {
            "every step needs an `id` (letters, digits and `_`), which later steps read as `steps.ID`".to_owned()
        } else {
            format!(
                "`{id}` is not a step id: use letters, digits and `_`, not starting with a digit (`{}`), so templates can read `steps.ID`",
                id.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            )
        },
    ))
}

/// Exactly one of `tool`, `agent`, `parallel`, with the keys that go with it.
fn check_kind(entry: &Entry<'_>, known: &dyn Known) -> Result<(), WorkflowError> {
    let step = entry.step;
    let kinds = [
        ("tool", step.tool.is_some()),
        ("agent", step.agent.is_some()),
        ("parallel", !step.parallel.is_empty()),
    ];
    let given: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0).collect();
    match given.as_slice() {
        [] => {
            return Err(at(
                entry,
                &[],
                format!(
                    "step `{}` does nothing: give it `tool:` (with `arguments:`), `agent:` (with `task:`) or `parallel:` (a list of steps)",
                    step.id
                ),
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err(at(
                entry,
                &[second],
                format!(
                    "a step is one of `tool`, `agent` or `parallel`; this one also has `{first}`: split it into two steps"
                ),
            ));
        }
    }
    if step.tool.is_none() {
        if step.arguments.is_some() {
            return Err(at(
                entry,
                &["arguments"],
                "`arguments` go with `tool:`; an agent takes `task:`",
            ));
        }
        if !step.fallback_tools.is_empty() {
            return Err(at(
                entry,
                &["fallback_tools"],
                "`fallback_tools` go with `tool:`",
            ));
        }
    }
    if step.agent.is_none() && step.task.is_some() {
        return Err(at(entry, &["task"], "`task` goes with `agent:`"));
    }
    if let Some(tool) = &step.tool {
        known.tool(tool).map_err(|m| at(entry, &["tool"], m))?;
        match &step.arguments {
            None | Some(Value::Object(_) | Value::String(_) | Value::Null) => {}
            Some(_) => {
                return Err(at(
                    entry,
                    &["arguments"],
                    "the arguments must be a mapping (`{query: \"{{ input.topic }}\"}`) or a template giving one",
                ));
            }
        }
        for (i, fallback) in step.fallback_tools.iter().enumerate() {
            known
                .tool(fallback)
                .map_err(|m| at(entry, &["fallback_tools", &i.to_string()], m))?;
        }
    }
    if let Some(agent) = &step.agent {
        known.agent(agent).map_err(|m| at(entry, &["agent"], m))?;
        if step.task.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(at(
                entry,
                &["task"],
                format!(
                    "agent step `{}` needs a `task:` (what to ask the agent; a template)",
                    step.id
                ),
            ));
        }
    }
    Ok(())
}

/// The steps a step's templates read, each with the key it is read from.
fn references(
    entry: &Entry<'_>,
    templates: &Templates,
) -> Result<Vec<(Vec<String>, String)>, WorkflowError> {
    let step = entry.step;
    let mut found = Vec::new();
    if let Some(arguments) = &step.arguments {
        let mut reads = BTreeSet::new();
        templates
            .check_value(arguments, &mut reads)
            .map_err(|(rest, message)| {
                let mut key = vec!["arguments".to_owned()];
                key.extend(rest);
                at_owned(entry, key, message)
            })?;
        found.extend(reads.into_iter().map(|r| (vec!["arguments".to_owned()], r)));
    }
    if let Some(task) = &step.task {
        let reads = templates
            .check_text(task)
            .map_err(|m| at(entry, &["task"], m))?;
        found.extend(reads.into_iter().map(|r| (vec!["task".to_owned()], r)));
    }
    if let Some(when) = &step.when {
        let reads = templates
            .check_expression(when)
            .map_err(|m| at(entry, &["when"], format!("{m} (write an expression like `input.flag` or `steps.a.status == 'ok'`, without braces)")))?;
        found.extend(reads.into_iter().map(|r| (vec!["when".to_owned()], r)));
    }
    Ok(found)
}

/// A cycle among the nodes, named by its steps.
fn check_cycles(nodes: &[Node], entries: &[Entry<'_>]) -> Result<(), WorkflowError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; nodes.len()];
    // Iterative depth-first search: (node, next dependency to visit).
    for root in 0..nodes.len() {
        if marks[root] != Mark::New {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&dep) = nodes[node].deps.get(*next) else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            match marks[dep] {
                Mark::Done => {}
                Mark::New => {
                    marks[dep] = Mark::Open;
                    stack.push((dep, 0));
                }
                Mark::Open => {
                    let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut names: Vec<&str> = stack[from..]
                        .iter()
                        .map(|(n, _)| nodes[*n].id.as_str())
                        .collect();
                    names.dedup();
                    names.push(names.first().copied().unwrap_or_default());
                    let first = names.first().copied().unwrap_or_default();
                    let entry = entries.iter().find(|e| e.step.id == first);
                    let message = format!(
                        "the steps wait for each other in a cycle: {} (each waits for the next through `needs:`, a `steps.ID` reference or its group); remove one of these dependencies",
                        names.join(" -> ")
                    );
                    return Err(match entry {
                        Some(entry) if entry.step.needs.is_some() => at(entry, &["needs"], message),
                        Some(entry) => at(entry, &[], message),
                        None => invalid(&["steps"], message),
                    });
                }
            }
        }
    }
    Ok(())
}

fn at(entry: &Entry<'_>, key: &[&str], message: impl Into<String>) -> WorkflowError {
    at_owned(
        entry,
        key.iter().map(|k| (*k).to_owned()).collect(),
        message,
    )
}

fn at_owned(entry: &Entry<'_>, key: Vec<String>, message: impl Into<String>) -> WorkflowError {
    let mut path = entry.path.clone();
    path.extend(key);
    WorkflowError::invalid(path, message)
}

fn invalid(path: &[&str], message: impl Into<String>) -> WorkflowError {
    WorkflowError::invalid(path.iter().map(|p| (*p).to_owned()).collect(), message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every tool and agent exists, except those named `missing*`.
    struct Anything;

    impl Known for Anything {
        fn tool(&self, tool: &str) -> Result<(), String> {
            if tool.starts_with("missing") {
                Err(format!("no tool named `{tool}`"))
            } else {
                Ok(())
            }
        }
        fn agent(&self, agent: &str) -> Result<(), String> {
            self.tool(agent)
        }
    }

    fn spec(steps: serde_json::Value) -> WorkflowSpec {
        serde_json::from_value(json!({ "steps": steps })).unwrap()
    }

    fn error(steps: serde_json::Value) -> String {
        spec(steps).validate(&Anything).unwrap_err().to_string()
    }

    fn plan(steps: serde_json::Value) -> Plan {
        Plan::new(&spec(steps), &Anything, &Templates::default()).unwrap()
    }

    #[test]
    fn steps_wait_for_the_one_before_unless_they_say_otherwise() {
        let p = plan(json!([
            {"id": "a", "tool": "t"},
            {"id": "b", "tool": "t", "needs": []},
            {"id": "c", "tool": "t", "arguments": {"x": "{{ steps.a.text }}"}},
        ]));
        assert!(p.nodes[0].deps.is_empty());
        assert!(p.nodes[1].deps.is_empty());
        assert_eq!(p.nodes[2].deps, [0, 1]);
        assert_eq!(p.last, 2);
    }

    #[test]
    fn a_group_opens_before_its_steps_and_closes_after_them() {
        let p = plan(json!([
            {"id": "a", "tool": "t"},
            {"id": "g", "parallel": [{"id": "x", "tool": "t"}, {"id": "y", "tool": "t"}]},
            {"id": "b", "tool": "t"},
        ]));
        // a, g(open), x, y, g(close), b
        assert!(matches!(p.nodes[1].action, Action::Open));
        assert_eq!(p.nodes[1].deps, [0]);
        assert_eq!(p.nodes[2].deps, [1]);
        assert_eq!(p.nodes[3].deps, [1]);
        assert_eq!(p.nodes[4].deps, [2, 3]);
        assert_eq!(p.nodes[5].deps, [4]);
        assert_eq!(p.report, [0, 4, 2, 3, 5]);
    }

    #[test]
    fn mistakes_are_reported_at_their_key_path() {
        let e = error(
            json!([{"id": "a", "tool": "t"}, {"id": "b", "tool": "t"}, {"id": "c", "tool": "t", "needs": ["x"]}]),
        );
        assert_eq!(e, "steps[2].needs: unknown step `x`; steps are: a, b, c");
        let e =
            error(json!([{"id": "a", "tool": "t", "arguments": {"q": "{{ steps.nope.text }}"}}]));
        assert!(
            e.starts_with("steps[0].arguments: reads `steps.nope`"),
            "{e}"
        );
        let e = error(json!([{"id": "a", "tool": "missing_tool"}]));
        assert_eq!(e, "steps[0].tool: no tool named `missing_tool`");
        let e = error(json!([{"id": "a", "tool": "t", "fallback_tools": ["ok", "missing2"]}]));
        assert!(e.starts_with("steps[0].fallback_tools[1]: "), "{e}");
        let e = error(json!([{"id": "a", "tool": "t"}, {"id": "a", "tool": "t"}]));
        assert!(
            e.starts_with("steps[1].id: step id `a` is also the id of steps[0]"),
            "{e}"
        );
        let e = error(json!([{"id": "g", "parallel": [{"id": "x"}]}]));
        assert!(
            e.starts_with("steps[0].parallel[0]: step `x` does nothing"),
            "{e}"
        );
        let e = error(json!([{"id": "a", "tool": "t", "agent": "w"}]));
        assert!(e.starts_with("steps[0].agent: a step is one of"), "{e}");
        let e = error(json!([{"id": "a", "agent": "w"}]));
        assert!(
            e.starts_with("steps[0].task: agent step `a` needs a `task:`"),
            "{e}"
        );
        let e = error(json!([{"id": "a-b", "tool": "t"}]));
        assert!(e.contains("`a_b`"), "{e}");
        let e = error(json!([{"id": "a", "tool": "t", "when": "{{ input.x }}"}]));
        assert!(e.starts_with("steps[0].when: "), "{e}");
        let e = error(json!([{"id": "a", "tool": "t", "arguments": {"q": ["{{ inptu.x }}"]}}]));
        assert!(
            e.starts_with("steps[0].arguments.q[0]: unknown variable `inptu`"),
            "{e}"
        );
    }

    #[test]
    fn cycles_are_named() {
        let e = error(json!([
            {"id": "a", "tool": "t", "needs": ["b"]},
            {"id": "b", "tool": "t", "needs": ["a"]},
        ]));
        assert!(
            e.starts_with("steps[0].needs: the steps wait for each other in a cycle: a -> b -> a"),
            "{e}"
        );
        let e = error(
            json!([{"id": "g", "parallel": [{"id": "x", "tool": "t", "arguments": {"q": "{{ steps.g.text }}"}}]}]),
        );
        assert!(e.starts_with("steps[0].parallel[0]: "), "{e}");
        assert!(e.contains("cycle: x -> g -> x"), "{e}");
        // A step waiting for a later one is fine while nothing loops.
        plan(
            json!([{"id": "a", "tool": "t", "needs": ["b"]}, {"id": "b", "tool": "t", "needs": []}]),
        );
    }
}
