//! [`ConfigLoader`]: files and text in order, then environment overrides.

use std::path::{Path, PathBuf};

use figment::{
    Error, Figment, Metadata, Profile, Provider, Source,
    providers::{Data, Format as _, Json, Toml, Yaml},
    value::{Dict, Map},
};

use super::{
    Config, ConfigError, TOP_LEVEL_KEYS,
    env::{EnvOverrides, EnvSource},
    interpolate::Interpolate,
    mcp_servers::{Dialect, Translate},
};

/// A configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
    /// JSON (`.json`), including Claude Desktop, Cursor and VS Code MCP files.
    Json,
}

impl Format {
    /// The format a file name's extension stands for.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "toml" => Some(Self::Toml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// One configuration source, in merge order.
#[derive(Debug, Clone)]
enum Input {
    File(PathBuf),
    Text {
        name: String,
        format: Format,
        text: String,
        client: bool,
    },
}

/// Builds a [`Config`] from files, text and the environment.
///
/// Sources merge in the order given, later ones overriding earlier ones key by key;
/// then `TOOLMESH_*` environment variables override keys (`TOOLMESH_SERVERS__SEARCH__TIMEOUT=5s`
/// sets `servers.search.timeout`). `${VAR}` references in file values expand from
/// the same environment.
///
/// ```no_run
/// use toolmesh::ConfigLoader;
///
/// let config = ConfigLoader::new()
///     .file("toolmesh.yaml")
///     .file("toolmesh.local.yaml")
///     .env_prefix("TOOLMESH_")
///     .load()?;
/// # Ok::<(), toolmesh::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    inputs: Vec<Input>,
    env_prefix: String,
    env: EnvSource,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigLoader {
    /// The prefix of overriding environment variables unless changed.
    pub const DEFAULT_ENV_PREFIX: &'static str = "TOOLMESH_";

    /// No sources yet; overrides from `TOOLMESH_*` in the process environment.
    pub fn new() -> Self {
        Self {
            inputs: Vec::new(),
            env_prefix: Self::DEFAULT_ENV_PREFIX.to_owned(),
            env: EnvSource::Process,
        }
    }

    /// Adds a file; `.yaml`/`.yml`, `.toml` or `.json` (which may also be a Claude
    /// Desktop, Cursor or VS Code MCP configuration).
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.inputs.push(Input::File(path.as_ref().to_owned()));
        self
    }

    /// Adds configuration text in `format`; `name` stands for it in errors.
    pub fn text(
        mut self,
        name: impl Into<String>,
        format: Format,
        text: impl Into<String>,
    ) -> Self {
        self.inputs.push(Input::Text {
            name: name.into(),
            format,
            text: text.into(),
            client: false,
        });
        self
    }

    /// Adds an MCP client's JSON (`mcpServers` or VS Code `servers`) given as text.
    pub(crate) fn mcp_servers_json(
        mut self,
        name: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        self.inputs.push(Input::Text {
            name: name.into(),
            format: Format::Json,
            text: text.into(),
            client: true,
        });
        self
    }

    /// Sets the prefix of overriding environment variables; `""` turns overrides off.
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = prefix.into();
        self
    }

    /// Ignores environment variables for overrides (`${VAR}` still expands).
    pub fn without_env_overrides(self) -> Self {
        self.env_prefix("")
    }

    /// Uses exactly these variables, instead of the process environment, for both
    /// overrides and `${VAR}` expansion.
    pub fn env_vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env = EnvSource::vars(vars);
        self
    }

    /// The files added with [`file`](Self::file), in merge order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.inputs.iter().filter_map(|input| match input {
            Input::File(path) => Some(path.as_path()),
            Input::Text { .. } => None,
        })
    }

    /// Loads, merges and validates the configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::from_figment(&self.figment()?)
    }

    /// The merged sources, not yet extracted: for reading parts of the configuration
    /// that [`Config`] does not cover, or the origin of a value.
    pub fn figment(&self) -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        for input in &self.inputs {
            let provider = Interpolate::new(self.translated(input)?).with_env(self.env.clone());
            figment = figment.merge(&provider);
            if let Some(error) = provider.take_failure() {
                return Err(error);
            }
        }
        if !self.env_prefix.is_empty() {
            figment = figment.merge(EnvOverrides::new(
                &self.env_prefix,
                TOP_LEVEL_KEYS,
                self.env.clone(),
            ));
        }
        Ok(figment)
    }

    fn translated(&self, input: &Input) -> Result<Translate<Parsed>, ConfigError> {
        Ok(match input {
            Input::File(path) => {
                let format = Format::from_path(path)
                    .ok_or_else(|| ConfigError::UnknownFormat { path: path.clone() })?;
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let dialect = if format == Format::Json {
                    Dialect::detect(&text)
                } else {
                    Dialect::Toolmesh
                };
                Translate::new(Parsed::file(format, path), dialect)
            }
            Input::Text {
                name,
                format,
                text,
                client,
            } => {
                let dialect = match (format, client) {
                    (Format::Json, true) => Dialect::detect_client(text),
                    (Format::Json, false) => Dialect::detect(text),
                    _ => Dialect::Toolmesh,
                };
                Translate::new(Parsed::text(*format, name, text), dialect)
            }
        })
    }
}

/// figment's parser for one format, from a file or from text.
struct Parsed {
    data: ParsedData,
    name: Option<String>,
}

enum ParsedData {
    Yaml(Data<Yaml>),
    Toml(Data<Toml>),
    Json(Data<Json>),
}

impl Parsed {
    fn file(format: Format, path: &Path) -> Self {
        let data = match format {
            Format::Yaml => ParsedData::Yaml(Yaml::file_exact(path)),
            Format::Toml => ParsedData::Toml(Toml::file_exact(path)),
            Format::Json => ParsedData::Json(Json::file_exact(path)),
        };
        Self { data, name: None }
    }

    fn text(format: Format, name: &str, text: &str) -> Self {
        let data = match format {
            Format::Yaml => ParsedData::Yaml(Yaml::string(text)),
            Format::Toml => ParsedData::Toml(Toml::string(text)),
            Format::Json => ParsedData::Json(Json::string(text)),
        };
        Self {
            data,
            name: Some(name.to_owned()),
        }
    }
}

impl Provider for Parsed {
    fn metadata(&self) -> Metadata {
        let metadata = match &self.data {
            ParsedData::Yaml(data) => data.metadata(),
            ParsedData::Toml(data) => data.metadata(),
            ParsedData::Json(data) => data.metadata(),
        };
        match &self.name {
            Some(name) => metadata.source(Source::Custom(name.clone())),
            None => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        match &self.data {
            ParsedData::Yaml(data) => data.data(),
            ParsedData::Toml(data) => data.data(),
            ParsedData::Json(data) => data.data(),
        }
    }

    fn profile(&self) -> Option<Profile> {
        match &self.data {
            ParsedData::Yaml(data) => data.profile(),
            ParsedData::Toml(data) => data.profile(),
            ParsedData::Json(data) => data.profile(),
        }
    }
}
