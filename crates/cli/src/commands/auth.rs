//! `toolmesh auth hash-key`: a new API key and the configuration entry holding its digest.

use std::io::{BufRead, Write};

use toolmesh_server::auth::{api_key_sha256, new_api_key};

use crate::{cli::HashKeyArgs, failure::Usage};

pub(crate) fn hash_key(args: &HashKeyArgs) -> anyhow::Result<()> {
    let (key, made) = if args.stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let key = line.trim().to_owned();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Usage(
                "no key on stdin: give one line of visible ASCII without spaces".to_owned(),
            )
            .into());
        }
        (key, false)
    } else {
        (new_api_key(), true)
    };
    if args.id.trim().is_empty() || args.roles.iter().any(|r| r.trim().is_empty()) {
        return Err(Usage("--id and --role cannot be empty".to_owned()).into());
    }
    let digest = api_key_sha256(&key);
    let roles = args
        .roles
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ");
    let id = serde_json::to_string(&args.id)?;
    let mut out = std::io::stdout().lock();
    if made {
        writeln!(out, "key:    {key}")?;
    }
    writeln!(out, "sha256: {digest}")?;
    writeln!(out)?;
    if made {
        writeln!(
            out,
            "Give the key to the client (it is not stored anywhere); it sends\n\
             `Authorization: Bearer KEY` or `X-API-Key: KEY`. Add to the configuration:"
        )?;
    } else {
        writeln!(out, "Add to the configuration:")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "gateway:\n  auth:\n    api_keys:\n      - {{ id: {id}, sha256: {digest}, roles: [{roles}] }}"
    )?;
    Ok(())
}
