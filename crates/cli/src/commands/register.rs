//! `toolmesh register`: keeps one MCP server registered in the shared registry (etcd) while
//! it runs, for sidecars; withdraws it on Ctrl-C or SIGTERM.

use std::{process::ExitCode, time::Duration};

use toolmesh::{
    CallContext, Endpoint, Session,
    services::discovery::etcd::{
        EtcdOptions, Member, MemberRecord, Registration, RegistrationState,
    },
};

use crate::{cli::RegisterArgs, commands::stop_signal, failure::Usage};

/// How long listing the server's tools for the digest may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::url(args.url.clone());
    if let Err(e) = endpoint.validate() {
        return Err(Usage(format!("--url {}: {e}", args.url)).into());
    }
    let id = match &args.id {
        Some(id) => id.clone(),
        None => default_id(&args.service, &args.url),
    };
    let mut options = EtcdOptions::new(args.etcd.clone()).prefix(args.prefix.clone());
    options.required = true;
    let mut record = MemberRecord::new(args.url.clone());
    record.tier = args.tier;
    record.weight = args.weight;
    record.capabilities.clone_from(&args.capabilities);
    let mut member = Member {
        service: args.service.clone(),
        id: id.clone(),
        record,
    };
    Registration::validate(&options, std::slice::from_ref(&member), args.ttl)
        .map_err(|e| Usage(e.to_string()))?;
    member.record.tools_digest = tools_digest(&endpoint).await;
    let registration =
        Registration::start(options, vec![member], args.ttl).map_err(|e| Usage(e.to_string()))?;
    let name = format!("{}/{id}", args.service);
    let mut state = registration.state();
    eprintln!(
        "toolmesh register: registering {name} ({}) in etcd at {}",
        args.url,
        args.etcd.join(",")
    );
    loop {
        tokio::select! {
            () = stop_signal() => break,
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                match &*state.borrow_and_update() {
                    RegistrationState::Registered { lease } => eprintln!(
                        "toolmesh register: {name} registered (lease {lease:x}, ttl {:?}); Ctrl-C withdraws it",
                        args.ttl
                    ),
                    RegistrationState::Lost { error } => eprintln!(
                        "toolmesh register: {error}; retrying (gateways drop {name} after the ttl meanwhile)"
                    ),
                    RegistrationState::Registering => {}
                }
            }
        }
    }
    registration.close().await;
    eprintln!("toolmesh register: {name} withdrawn");
    Ok(ExitCode::SUCCESS)
}

/// `<service>-<host>-<port>`, with characters a key segment cannot hold replaced.
fn default_id(service: &str, url: &str) -> String {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let clean: String = authority
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{service}-{clean}")
}

/// A digest of the server's tools, when it answers now; registering does not wait for it.
async fn tools_digest(endpoint: &Endpoint) -> Option<String> {
    let listed = async {
        let session = Session::connect(endpoint).await?;
        let tools = session
            .list_tools(&CallContext::with_timeout(LIST_TIMEOUT))
            .await;
        session.close(Duration::from_secs(1)).await;
        tools
    };
    match tokio::time::timeout(LIST_TIMEOUT, listed).await {
        Ok(Ok(tools)) => Some(MemberRecord::digest_of(&tools)),
        Ok(Err(e)) => {
            eprintln!(
                "toolmesh register: cannot list its tools now ({e}); registering without a tools digest"
            );
            None
        }
        Err(_) => {
            eprintln!(
                "toolmesh register: it did not list its tools within {LIST_TIMEOUT:?}; registering without a tools digest"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_id;

    #[test]
    fn the_default_id_comes_from_host_and_port() {
        assert_eq!(
            default_id("search", "http://10.0.0.5:8080/mcp"),
            "search-10.0.0.5-8080"
        );
        assert_eq!(default_id("s", "https://[::1]:9/mcp"), "s----1--9");
    }
}
