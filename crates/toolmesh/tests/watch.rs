//! Hot reload: `ConfigWatcher` sees edits of real files (in place, and replaced by
//! rename) and yields each new configuration, or why it does not load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use tempfile::TempDir;
use tokio::time::{Instant, timeout_at};
use toolmesh::{Config, ConfigError, ConfigLoader, ConfigWatcher};

/// How long a change may take to show up.
const BOUND: Duration = Duration::from_secs(10);

fn loader(files: &[&Path]) -> ConfigLoader {
    files
        .iter()
        .fold(ConfigLoader::new(), |loader, file| loader.file(file))
        .env_vars([("TOKEN", "t")])
}

/// Results of `next` until one satisfies `wanted` (an editor's save may first be seen
/// as an earlier state), within [`BOUND`].
async fn next_where(
    watcher: &mut ConfigWatcher,
    what: &str,
    wanted: impl Fn(&Result<Config, ConfigError>) -> bool,
) -> Result<Config, ConfigError> {
    let deadline = Instant::now() + BOUND;
    loop {
        let result = timeout_at(deadline, watcher.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {BOUND:?}"));
        if wanted(&result) {
            return result;
        }
        eprintln!(
            "SKIPPED while waiting for {what}: {:?}",
            result.as_ref().map(names)
        );
    }
}

fn names(config: &Config) -> Vec<&str> {
    config.servers.keys().map(String::as_str).collect()
}

async fn next_servers(watcher: &mut ConfigWatcher, expected: &[&str]) -> Config {
    next_where(watcher, &format!("config with {expected:?}"), |r| {
        r.as_ref().is_ok_and(|c| names(c) == expected)
    })
    .await
    .unwrap()
}

const ONE: &str = "servers:\n  a: { url: http://127.0.0.1:9001/mcp }\n";
const TWO: &str =
    "servers:\n  a: { url: http://127.0.0.1:9001/mcp }\n  b: { command: [toolmesh-fixture] }\n";

#[tokio::test]
async fn edits_yield_each_new_config_and_broken_files_their_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("toolmesh.yaml");
    std::fs::write(&path, ONE).unwrap();
    let loader = loader(&[&path]);
    let mut watcher = ConfigWatcher::new(loader.clone()).unwrap();
    assert_eq!(names(&loader.load().unwrap()), ["a"]);

    // A server is added.
    std::fs::write(&path, TWO).unwrap();
    let config = next_servers(&mut watcher, &["a", "b"]).await;
    assert_eq!(config.services().unwrap().len(), 2);

    // A field changes.
    std::fs::write(
        &path,
        "servers:\n  a: { url: http://127.0.0.1:9001/mcp }\n  b: { command: [toolmesh-fixture], replicas: 2 }\n",
    )
    .unwrap();
    let config = next_where(&mut watcher, "replicas: 2", |r| {
        r.as_ref()
            .is_ok_and(|c| c.servers.get("b").is_some_and(|b| b.replicas == Some(2)))
    })
    .await
    .unwrap();
    assert_eq!(config.services().unwrap()[1].instances.len(), 2);

    // A server is removed.
    std::fs::write(&path, "servers:\n  b: { command: [toolmesh-fixture] }\n").unwrap();
    next_servers(&mut watcher, &["b"]).await;

    // A broken edit yields the error, naming the file.
    std::fs::write(&path, "servers:\n  b: { command: [toolmesh-fixture]\n").unwrap();
    let err = next_where(&mut watcher, "error", Result::is_err)
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: invalid YAML", path.display())),
        "{err}"
    );

    // So does one that parses but is invalid.
    std::fs::write(&path, "servers:\n  b: { urll: http://h/mcp }\n").unwrap();
    let err = next_where(&mut watcher, "unknown key error", |r| {
        matches!(r, Err(ConfigError::UnknownKey { .. }))
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: servers.b: unknown key `urll`",
            path.display()
        )),
        "{err}"
    );

    // Fixed, it yields a config again.
    std::fs::write(&path, ONE).unwrap();
    next_servers(&mut watcher, &["a"]).await;
}

#[tokio::test]
async fn files_replaced_by_rename_and_every_file_of_the_loader_are_watched() {
    let base_dir = TempDir::new().unwrap();
    let local_dir = TempDir::new().unwrap();
    let base = base_dir.path().join("base.yaml");
    let local = local_dir.path().join("local.toml");
    std::fs::write(&base, ONE).unwrap();
    std::fs::write(&local, "").unwrap();
    let mut watcher = ConfigWatcher::new(loader(&[&base, &local])).unwrap();

    // As editors and deploy tools do: write another file, rename it over the config.
    let temporary = base_dir.path().join(".base.yaml.tmp");
    std::fs::write(&temporary, TWO).unwrap();
    std::fs::rename(&temporary, &base).unwrap();
    next_servers(&mut watcher, &["a", "b"]).await;

    // The second file, in another directory.
    std::fs::write(
        &local,
        "[servers.c]\nurl = \"http://127.0.0.1:9003/mcp\"\nauth = { type = \"bearer\", token = \"${TOKEN}\" }\n",
    )
    .unwrap();
    next_servers(&mut watcher, &["a", "b", "c"]).await;

    // Other files in the watched directories are not the configuration.
    std::fs::write(base_dir.path().join("notes.txt"), "x").unwrap();
    std::fs::write(&local, "").unwrap();
    let config = next_servers(&mut watcher, &["a", "b"]).await;
    assert_eq!(config.services().unwrap().len(), 2);

    // A deleted file is an error naming it; written again, it loads.
    std::fs::remove_file(&base).unwrap();
    let err = next_where(&mut watcher, "read error", |r| {
        matches!(r, Err(ConfigError::Read { .. }))
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("base.yaml"), "{err}");
    std::fs::write(&base, ONE).unwrap();
    next_servers(&mut watcher, &["a"]).await;
}

#[tokio::test]
async fn a_change_is_not_lost_when_next_is_cancelled() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("toolmesh.yaml");
    std::fs::write(&path, ONE).unwrap();
    let mut watcher = ConfigWatcher::new(loader(&[&path])).unwrap();
    std::fs::write(&path, TWO).unwrap();
    // Cancelled after the change was seen, before the debounce ends.
    let deadline = Instant::now() + BOUND;
    while !watcher.change_pending() {
        assert!(Instant::now() < deadline, "the change was never seen");
        // Far shorter than the debounce, so a call that saw the change is cut in it.
        let cut = tokio::time::timeout(Duration::from_millis(10), watcher.next()).await;
        if let Ok(loaded) = cut {
            panic!("next was not cancelled within the debounce: {loaded:?}");
        }
    }
    next_servers(&mut watcher, &["a", "b"]).await;
}

#[test]
fn watching_needs_files_in_existing_directories() {
    let err = ConfigWatcher::new(ConfigLoader::new()).unwrap_err();
    assert!(matches!(err, ConfigError::Watch { .. }), "{err:?}");
    assert!(err.to_string().contains("no files to watch"), "{err}");

    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nowhere").join("toolmesh.yaml");
    let err = ConfigWatcher::new(ConfigLoader::new().file(&missing)).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: cannot watch", missing.display())),
        "{message}"
    );
}
