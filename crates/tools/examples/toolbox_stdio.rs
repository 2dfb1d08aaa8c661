//! Serves the standard native tools as an MCP server over stdio.
//!
//! ```sh
//! cargo run -p toolmesh-tools --example toolbox_stdio            # no filesystem tools
//! cargo run -p toolmesh-tools --example toolbox_stdio -- ./data  # read-only access to ./data
//! ```

use toolmesh_tools::{FilesystemConfig, Toolbox, ToolsConfig, serve_stdio};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = ToolsConfig::default();
    if let Some(root) = std::env::args_os().nth(1) {
        config.filesystem = Some(FilesystemConfig::new([root]));
    }
    let toolbox = Toolbox::default_tools(&config)?;
    eprintln!("toolbox_stdio: serving {} tools over stdio", toolbox.len());
    serve_stdio(toolbox).await?;
    Ok(())
}
