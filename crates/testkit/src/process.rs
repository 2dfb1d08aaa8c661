//! Process checks for tests that must prove nothing was left behind (read from `/proc`).

use std::time::Duration;

/// The state letter of `pid` (`R`, `S`, `Z`, …), or `None` once it is gone entirely.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3, after the parenthesised command name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
}

/// Waits up to 5 s for `pid` to disappear entirely — reaped, not even a zombie.
pub async fn gone(pid: u32) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state(pid).is_some() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Children of this process that are zombies (exited, never reaped).
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z")
            && fields.get(1) == Some(&me.as_str())
            && let Some(pid) = head.split_whitespace().next().and_then(|p| p.parse().ok())
        {
            zombies.push(pid);
        }
    }
    zombies
}
