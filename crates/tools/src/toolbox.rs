//! A named set of native tools.

use std::{collections::BTreeMap, sync::Arc};

use rmcp::model::{CallToolResult, JsonObject, Tool};
use toolmesh_core::{CallContext, CallError, Invoker, ToolCall};

use crate::{
    ArxivSearch, Calculator, FsList, FsRead, FsSearch, FsStat, FsWrite, HttpFetch, NativeInvoker,
    NativeTool, Sandbox, TimeConvert, TimeFormat, TimeNow, TimeParse, ToolsConfig, ToolsError,
    WebSearch, native::DynNativeTool,
};

/// A named set of native tools; cheap to clone.
///
/// Tools are keyed by the name in their definition; adding a tool with a name already
/// present replaces the earlier one. [`Toolbox`] is itself an [`Invoker`] that
/// dispatches on the tool part of [`ToolCall::name`] (the namespace is ignored).
#[derive(Clone, Default)]
pub struct Toolbox {
    tools: BTreeMap<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    definition: Tool,
    tool: Arc<dyn DynNativeTool>,
}

impl Toolbox {
    /// An empty toolbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The standard set described by `config`:
    ///
    /// `calculator`, `time_now`, `time_convert`, `time_parse`, `time_format`,
    /// `http_fetch`, `arxiv_search`; `fs_read`, `fs_list`, `fs_stat`, `fs_search`
    /// (and `fs_write` when writes are allowed) when `filesystem` is configured;
    /// `web_search` when `web_search` is configured.
    pub fn default_tools(config: &ToolsConfig) -> Result<Self, ToolsError> {
        let mut toolbox = Self::new()
            .with(Calculator)
            .with(TimeNow)
            .with(TimeConvert)
            .with(TimeParse)
            .with(TimeFormat)
            .with(HttpFetch::new(config.http_fetch.clone())?)
            .with(ArxivSearch::new(config.arxiv.clone())?);
        if let Some(fs) = &config.filesystem {
            let sandbox = Sandbox::new(fs.clone())?;
            toolbox = toolbox
                .with(FsRead::new(sandbox.clone()))
                .with(FsList::new(sandbox.clone()))
                .with(FsStat::new(sandbox.clone()))
                .with(FsSearch::new(sandbox.clone()));
            if fs.allow_write {
                toolbox = toolbox.with(FsWrite::new(sandbox));
            }
        }
        if let Some(search) = &config.web_search {
            toolbox = toolbox.with(WebSearch::new(search.clone())?);
        }
        Ok(toolbox)
    }

    /// Adds `tool`, replacing any tool of the same name.
    pub fn with(self, tool: impl NativeTool) -> Self {
        self.with_dyn(Arc::new(tool))
    }

    /// Adds an already shared tool, replacing any tool of the same name.
    pub fn with_dyn(mut self, tool: Arc<dyn DynNativeTool>) -> Self {
        self.insert(tool);
        self
    }

    /// Adds `tool`; returns the tool it replaced, if any.
    pub fn insert(&mut self, tool: Arc<dyn DynNativeTool>) -> Option<Arc<dyn DynNativeTool>> {
        let definition = tool.definition_dyn();
        self.tools
            .insert(definition.name.to_string(), Entry { definition, tool })
            .map(|old| old.tool)
    }

    /// Removes the tool called `name`.
    pub fn remove(&mut self, name: &str) -> Option<Arc<dyn DynNativeTool>> {
        self.tools.remove(name).map(|entry| entry.tool)
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynNativeTool>> {
        self.tools.get(name).map(|entry| &entry.tool)
    }

    /// The tool called `name` as an [`Invoker`].
    pub fn invoker(&self, name: &str) -> Option<NativeInvoker> {
        self.get(name).cloned().map(NativeInvoker::from_dyn)
    }

    /// The definition of the tool called `name`.
    pub fn definition(&self, name: &str) -> Option<&Tool> {
        self.tools.get(name).map(|entry| &entry.definition)
    }

    /// Every tool's definition, sorted by name.
    pub fn definitions(&self) -> Vec<Tool> {
        self.tools
            .values()
            .map(|entry| entry.definition.clone())
            .collect()
    }

    /// The tool names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether the toolbox has no tool.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Runs the tool called `name` within the deadline and cancellation of `ctx`.
    ///
    /// An unknown name is [`CallError::ToolNotFound`] listing the tools there are.
    pub async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        let Some(entry) = self.tools.get(name) else {
            return Err(CallError::ToolNotFound {
                tool: name.to_owned(),
                hint: format!(
                    "; native tools are: {}",
                    self.names().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        crate::native::bounded(name, ctx, entry.tool.call_dyn(arguments, ctx)).await?
    }
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Invoker for Toolbox {
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        self.call(call.name.tool(), call.arguments.unwrap_or_default(), ctx)
            .await
    }
}
