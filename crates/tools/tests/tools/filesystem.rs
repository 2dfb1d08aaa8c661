use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;
use toolmesh_tools::{
    FilesystemConfig, FsList, FsRead, FsSearch, FsStat, FsWrite, Sandbox, Toolbox, ToolsConfig,
};

use crate::support::{call, ok, text, tool_err};

/// A root with files, and a directory outside it with a secret that links point to.
struct Fixture {
    root: TempDir,
    outside: TempDir,
}

impl Fixture {
    fn new() -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        std::fs::write(root.path().join("a.txt"), "hello")?;
        std::fs::create_dir(root.path().join("sub"))?;
        std::fs::write(root.path().join("sub/b.md"), "# B\n")?;
        std::fs::write(root.path().join("big.txt"), "0123456789".repeat(10))?;
        std::fs::write(outside.path().join("secret.txt"), "top secret")?;
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.path().join("link"))?;
        std::os::unix::fs::symlink(outside.path(), root.path().join("linkdir"))?;
        std::os::unix::fs::symlink(root.path().join("a.txt"), root.path().join("inner_link"))?;
        Ok(Self { root, outside })
    }

    fn config(&self) -> FilesystemConfig {
        FilesystemConfig::new([self.root.path()])
    }

    fn sandbox(&self) -> anyhow::Result<Sandbox> {
        Ok(Sandbox::new(self.config())?)
    }

    fn writable(&self) -> anyhow::Result<Sandbox> {
        Ok(Sandbox::new(FilesystemConfig {
            allow_write: true,
            ..self.config()
        })?)
    }

    fn secret(&self) -> PathBuf {
        self.outside.path().join("secret.txt")
    }

    fn secret_untouched(&self) -> anyhow::Result<()> {
        assert_eq!(std::fs::read_to_string(self.secret())?, "top secret");
        Ok(())
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn reads_a_file() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let read = FsRead::new(fx.sandbox()?);
    let result = call(&read, json!({ "path": "a.txt" })).await?;
    let structured = ok(&result);
    assert_eq!(text(&result), "hello");
    assert_eq!(structured["content"], "hello");
    assert_eq!(structured["truncated"], false);
    // Absolute paths inside the root work too, as do links that stay inside.
    let result = call(
        &read,
        json!({ "path": p(&fx.root.path().join("sub/b.md")) }),
    )
    .await?;
    assert_eq!(text(&result), "# B\n");
    let result = call(&read, json!({ "path": "inner_link" })).await?;
    assert_eq!(text(&result), "hello");
    Ok(())
}

#[tokio::test]
async fn traversal_is_refused() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let read = FsRead::new(fx.sandbox()?);
    let outside_name = fx
        .outside
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = call(
        &read,
        json!({ "path": format!("../{outside_name}/secret.txt") }),
    )
    .await?;
    tool_err(&result, &["contains `..`", "not allowed"]);
    let result = call(&read, json!({ "path": "sub/../../x" })).await?;
    tool_err(&result, &["contains `..`"]);
    // Even an absolute path that would come back inside.
    let inside_again = format!("{}/sub/../a.txt", p(fx.root.path()));
    let result = call(&read, json!({ "path": inside_again })).await?;
    tool_err(&result, &["contains `..`"]);
    Ok(())
}

#[tokio::test]
async fn absolute_paths_outside_the_roots_are_refused() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let read = FsRead::new(fx.sandbox()?);
    let result = call(&read, json!({ "path": p(&fx.secret()) })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    let result = call(&read, json!({ "path": "/etc/passwd" })).await?;
    tool_err(&result, &["`/etc/passwd` is outside the allowed roots"]);
    let list = FsList::new(fx.sandbox()?);
    let result = call(&list, json!({ "path": "/" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    Ok(())
}

#[tokio::test]
async fn symlinks_escaping_the_root_are_refused() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let sandbox = fx.sandbox()?;
    let read = FsRead::new(sandbox.clone());
    let result = call(&read, json!({ "path": "link" })).await?;
    let message = tool_err(&result, &["symbolic link", "outside the allowed roots"]);
    assert!(!message.contains("top secret"));
    let result = call(&read, json!({ "path": "linkdir/secret.txt" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    let result = call(&FsList::new(sandbox.clone()), json!({ "path": "linkdir" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    let result = call(&FsStat::new(sandbox.clone()), json!({ "path": "link" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    // The search lists links but does not follow them out of the root.
    let result = call(&FsSearch::new(sandbox), json!({ "pattern": "secret" })).await?;
    assert_eq!(ok(&result)["matches"], json!([]));
    Ok(())
}

#[tokio::test]
async fn reads_over_the_limit_are_truncated_with_the_offset_to_continue() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let sandbox = Sandbox::new(FilesystemConfig {
        max_read_bytes: 16,
        ..fx.config()
    })?;
    let read = FsRead::new(sandbox);
    let result = call(&read, json!({ "path": "big.txt" })).await?;
    let structured = ok(&result);
    assert_eq!(structured["content"], "0123456789012345");
    assert_eq!(structured["truncated"], true);
    assert_eq!(structured["size"], 100);
    assert_eq!(structured["next_offset"], 16);
    assert!(text(&result).contains("truncated"), "{}", text(&result));
    assert!(text(&result).contains("offset 16"), "{}", text(&result));

    let result = call(&read, json!({ "path": "big.txt", "offset": 96 })).await?;
    let structured = ok(&result);
    assert_eq!(structured["content"], "6789");
    assert_eq!(structured["truncated"], false);

    // Callers may ask for less than the limit, never more.
    let result = call(&read, json!({ "path": "big.txt", "max_bytes": 1000 })).await?;
    assert_eq!(ok(&result)["bytes_read"], 16);
    let result = call(&read, json!({ "path": "big.txt", "offset": 500 })).await?;
    tool_err(&result, &["past the end"]);
    Ok(())
}

#[tokio::test]
async fn binary_files_and_directories_are_not_read() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    std::fs::write(fx.root.path().join("blob.bin"), [0xff, 0xfe, 0x00, 0x01])?;
    let read = FsRead::new(fx.sandbox()?);
    let result = call(&read, json!({ "path": "blob.bin" })).await?;
    tool_err(&result, &["not UTF-8 text"]);
    let result = call(&read, json!({ "path": "sub" })).await?;
    tool_err(&result, &["is a directory", "fs_list"]);
    let result = call(&read, json!({ "path": "nope.txt" })).await?;
    tool_err(&result, &["`nope.txt` does not exist"]);
    Ok(())
}

#[tokio::test]
async fn writes_are_refused_when_disabled() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let write = FsWrite::new(fx.sandbox()?);
    let result = call(&write, json!({ "path": "new.txt", "content": "x" })).await?;
    tool_err(&result, &["writing is disabled", "allow_write"]);
    assert!(!fx.root.path().join("new.txt").exists());

    let toolbox = Toolbox::default_tools(&ToolsConfig {
        filesystem: Some(fx.config()),
        ..ToolsConfig::default()
    })?;
    assert!(toolbox.get("fs_read").is_some());
    assert!(
        toolbox.get("fs_write").is_none(),
        "fs_write is not offered read-only"
    );
    Ok(())
}

#[tokio::test]
async fn writes_work_when_enabled() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let write = FsWrite::new(fx.writable()?);
    let root = fx.root.path();

    let result = call(&write, json!({ "path": "notes.txt", "content": "one\n" })).await?;
    let structured = ok(&result);
    assert_eq!(structured["created"], true);
    assert_eq!(structured["bytes_written"], 4);
    assert_eq!(std::fs::read_to_string(root.join("notes.txt"))?, "one\n");

    let result = call(&write, json!({ "path": "notes.txt", "content": "two\n" })).await?;
    tool_err(&result, &["already exists", "overwrite"]);
    let result = call(
        &write,
        json!({ "path": "notes.txt", "content": "two\n", "mode": "append" }),
    )
    .await?;
    ok(&result);
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt"))?,
        "one\ntwo\n"
    );
    let result = call(
        &write,
        json!({ "path": "notes.txt", "content": "three\n", "mode": "overwrite" }),
    )
    .await?;
    ok(&result);
    assert_eq!(std::fs::read_to_string(root.join("notes.txt"))?, "three\n");

    let result = call(
        &write,
        json!({ "path": "deep/er/file.txt", "content": "x" }),
    )
    .await?;
    tool_err(&result, &["does not exist", "create_dirs"]);
    let result = call(
        &write,
        json!({ "path": "deep/er/file.txt", "content": "x", "create_dirs": true }),
    )
    .await?;
    ok(&result);
    assert_eq!(std::fs::read_to_string(root.join("deep/er/file.txt"))?, "x");

    let result = call(
        &write,
        json!({ "path": "sub", "content": "x", "mode": "overwrite" }),
    )
    .await?;
    tool_err(&result, &["is a directory"]);
    let result = call(
        &write,
        json!({ "path": "a.txt", "content": "x", "mode": "sideways" }),
    )
    .await?;
    tool_err(&result, &["invalid arguments", "sideways"]);
    Ok(())
}

#[tokio::test]
async fn writes_cannot_escape() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let write = FsWrite::new(fx.writable()?);
    let result = call(&write, json!({ "path": "../escape.txt", "content": "x" })).await?;
    tool_err(&result, &["contains `..`"]);
    let target = p(&fx.outside.path().join("new.txt"));
    let result = call(&write, json!({ "path": target, "content": "x" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    // Through a linked directory, and through a link to an outside file.
    let result = call(&write, json!({ "path": "linkdir/new.txt", "content": "x" })).await?;
    tool_err(&result, &["outside the allowed roots"]);
    let result = call(
        &write,
        json!({ "path": "linkdir/made/new.txt", "content": "x", "create_dirs": true }),
    )
    .await?;
    tool_err(&result, &["outside the allowed roots"]);
    let result = call(
        &write,
        json!({ "path": "link", "content": "pwned", "mode": "overwrite" }),
    )
    .await?;
    tool_err(&result, &["outside the allowed roots"]);
    fx.secret_untouched()?;
    assert!(!fx.outside.path().join("new.txt").exists());
    assert!(!fx.outside.path().join("made").exists());
    Ok(())
}

#[tokio::test]
async fn lists_stats_and_searches() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let sandbox = fx.sandbox()?;

    let result = call(&FsList::new(sandbox.clone()), json!({})).await?;
    let entries = ok(&result)["entries"].clone();
    assert!(
        entries
            .as_array()
            .is_some_and(|e| e.contains(&json!({ "name": "a.txt", "type": "file", "size": 5 }))),
        "{entries}"
    );
    assert!(
        entries.as_array().is_some_and(
            |e| e.contains(&json!({ "name": "sub", "type": "directory", "size": null }))
        ),
        "{entries}"
    );
    assert!(
        entries.as_array().is_some_and(
            |e| e.contains(&json!({ "name": "link", "type": "symlink", "size": null }))
        ),
        "{entries}"
    );
    assert!(text(&result).contains("sub/"), "{}", text(&result));

    let result = call(&FsStat::new(sandbox.clone()), json!({ "path": "a.txt" })).await?;
    let structured = ok(&result);
    assert_eq!(structured["type"], "file");
    assert_eq!(structured["size"], 5);
    assert!(
        structured["modified"]
            .as_str()
            .is_some_and(|m| m.ends_with('Z'))
    );

    let search = FsSearch::new(sandbox);
    let result = call(&search, json!({ "pattern": "*.md" })).await?;
    assert_eq!(
        ok(&result)["matches"],
        json!([{ "path": "sub/b.md", "type": "file", "size": 4 }])
    );
    let result = call(&search, json!({ "pattern": "A.T" })).await?;
    let paths: Vec<_> = ok(&result)["matches"]
        .as_array()
        .map(|m| m.iter().map(|e| e["path"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(paths, vec![json!("a.txt")]);
    let result = call(&search, json!({ "pattern": "sub/*.md" })).await?;
    assert_eq!(ok(&result)["matches"][0]["path"], "sub/b.md");

    for i in 0..10 {
        std::fs::write(fx.root.path().join(format!("many{i}.log")), "x")?;
    }
    let result = call(&search, json!({ "pattern": "*.log", "max_results": 3 })).await?;
    let structured = ok(&result);
    assert_eq!(structured["matches"].as_array().map(Vec::len), Some(3));
    assert_eq!(structured["truncated"], true);
    assert!(
        text(&result).contains("stopped at 3 matches"),
        "{}",
        text(&result)
    );

    let result = call(&search, json!({ "pattern": "*.log", "max_results": 0 })).await?;
    tool_err(&result, &["max_results must be between 1 and 500"]);
    let result = call(&search, json!({ "pattern": "[", "path": "sub" })).await?;
    tool_err(&result, &["invalid glob"]);
    Ok(())
}

#[tokio::test]
async fn several_roots_are_reachable_by_absolute_path() -> anyhow::Result<()> {
    let fx = Fixture::new()?;
    let second = tempfile::tempdir()?;
    std::fs::write(second.path().join("c.txt"), "second root")?;
    let sandbox = Sandbox::new(FilesystemConfig::new([fx.root.path(), second.path()]))?;
    let read = FsRead::new(sandbox);
    let result = call(&read, json!({ "path": p(&second.path().join("c.txt")) })).await?;
    assert_eq!(text(&result), "second root");
    let result = call(&read, json!({ "path": "c.txt" })).await?;
    tool_err(&result, &["does not exist"]);
    Ok(())
}
