//! The registry in a real etcd: registrations appear in a follower's view, disappear on
//! close or lease expiry, and the view survives etcd going away and coming back.

use std::time::Duration;

use tokio::sync::watch;
use toolmesh_registry::discovery::{
    Discovered, SourceHealth,
    etcd::{EtcdMembership, EtcdOptions, Member, MemberRecord, Registration},
};
use toolmesh_testkit::EtcdServer;

const WAIT: Duration = Duration::from_secs(20);

fn member(service: &str, id: &str, port: u16) -> Member {
    Member {
        service: service.into(),
        id: id.into(),
        record: MemberRecord::new(format!("http://127.0.0.1:{port}/mcp")),
    }
}

fn instances(view: &Discovered) -> Vec<String> {
    view.services
        .iter()
        .flat_map(|s| {
            s.instances
                .iter()
                .map(move |i| format!("{}/{}", s.id, i.id))
        })
        .collect()
}

async fn until(
    view: &mut watch::Receiver<Discovered>,
    what: &str,
    check: impl Fn(&Discovered) -> bool,
) -> anyhow::Result<()> {
    let waited = tokio::time::timeout(WAIT, view.wait_for(|v| check(v)))
        .await
        .map(|seen| seen.map(|_| ()));
    match waited {
        Ok(seen) => Ok(seen?),
        Err(_) => anyhow::bail!(
            "timed out waiting for {what}; view: {:?}",
            instances(&view.borrow())
        ),
    }
}

#[tokio::test]
async fn a_registration_appears_and_a_close_removes_it_at_once() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t1");
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    assert_eq!(view.borrow().health, SourceHealth::Live);
    assert!(instances(&view.borrow()).is_empty());

    let registration = Registration::start(
        options.clone(),
        vec![
            member("search", "a", 1001),
            member("search", "b", 1002),
            member("files", "x", 1003),
        ],
        Duration::from_secs(30),
    )?;
    registration.registered(WAIT).await?;
    until(&mut view, "three instances", |v| instances(v).len() == 3).await?;
    assert_eq!(
        instances(&view.borrow()),
        ["files/x", "search/a", "search/b"]
    );

    // Closing revokes the lease: gone long before the 30 s TTL.
    registration.close().await;
    until(&mut view, "none", |v| instances(v).is_empty()).await?;

    // A follower started later loads what is there.
    let kept = Registration::start(
        options.clone(),
        vec![member("s", "late", 1)],
        Duration::from_secs(30),
    )?;
    kept.registered(WAIT).await?;
    let second = EtcdMembership::start(options).await?;
    assert_eq!(instances(&second.view().borrow()), ["s/late"]);
    kept.close().await;
    Ok(())
}

#[tokio::test]
async fn a_registrar_that_stops_renewing_expires_after_its_ttl() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t2");
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    let registration = Registration::start(
        options,
        vec![member("svc", "one", 1)],
        Duration::from_secs(2),
    )?;
    let lease = registration.registered(WAIT).await?;
    until(&mut view, "the instance", |v| instances(v).len() == 1).await?;
    // Kept past twice its TTL while it runs: the lease is renewed, not re-granted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(instances(&view.borrow()), ["svc/one"]);
    assert_eq!(
        *registration.state().borrow(),
        toolmesh_registry::discovery::etcd::RegistrationState::Registered { lease }
    );
    // Dropped without closing, as when the process dies: the lease runs out.
    drop(registration);
    until(&mut view, "expiry", |v| instances(v).is_empty()).await?;
    Ok(())
}

#[tokio::test]
async fn the_view_outlives_etcd_and_catches_up_when_it_returns() -> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t3");
    let registration = Registration::start(
        options.clone(),
        vec![member("svc", "kept", 1)],
        Duration::from_secs(30),
    )?;
    registration.registered(WAIT).await?;
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    until(&mut view, "the instance", |v| instances(v).len() == 1).await?;

    etcd.kill().await;
    until(&mut view, "lost", |v| {
        matches!(v.health, SourceHealth::Lost { .. })
    })
    .await?;
    assert_eq!(
        instances(&view.borrow()),
        ["svc/kept"],
        "the last membership stays"
    );

    etcd.restart().await?;
    until(&mut view, "live", |v| v.health == SourceHealth::Live).await?;
    // Changes made after the return reach the follower (the watch resumed).
    let added = Registration::start(
        options,
        vec![member("svc", "new", 2)],
        Duration::from_secs(30),
    )?;
    added.registered(WAIT).await?;
    until(&mut view, "both", |v| instances(v).len() == 2).await?;
    let mut state = registration.state();
    tokio::time::timeout(
        WAIT,
        state.wait_for(|s| {
            matches!(
                s,
                toolmesh_registry::discovery::etcd::RegistrationState::Registered { .. }
            )
        }),
    )
    .await??;
    added.close().await;
    registration.close().await;
    Ok(())
}

#[tokio::test]
async fn unreachable_etcd_is_an_error_unless_not_required() -> anyhow::Result<()> {
    let port = toolmesh_testkit::peers::free_port()?;
    let mut options = EtcdOptions::new([format!("http://127.0.0.1:{port}")]);
    options.timeout = Duration::from_secs(1);
    let error = EtcdMembership::start(options.clone())
        .await
        .expect_err("nothing listens");
    assert!(error.to_string().contains("unreachable"), "{error}");
    options.required = false;
    let membership = EtcdMembership::start(options).await?;
    assert!(matches!(
        membership.view().borrow().health,
        SourceHealth::Lost { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn more_instances_than_one_etcd_transaction_holds_register_together() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t4");
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    // etcd refuses transactions of more than 128 operations by default.
    let members = (0..250)
        .map(|i| member(&format!("s{}", i % 5), &format!("i{i}"), 1))
        .collect();
    let registration = Registration::start(options, members, Duration::from_secs(30))?;
    registration.registered(WAIT).await?;
    until(&mut view, "250 instances", |v| instances(v).len() == 250).await?;
    assert_eq!(view.borrow().services.len(), 5);
    registration.close().await;
    until(&mut view, "none", |v| instances(v).is_empty()).await?;
    Ok(())
}

/// A TCP relay to etcd that can cut every connection and refuse new ones, so a follower
/// misses changes while etcd itself keeps running (and compacting).
struct Cable {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Cable {
    async fn start(target: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (is_open, cuts) = (open.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_open.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            port,
            open,
            generation,
        })
    }

    fn set(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
        if !open {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

#[tokio::test]
async fn a_follower_that_missed_a_compacted_history_reloads_everything() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let port: u16 = etcd
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .parse()?;
    let cable = Cable::start(port).await?;
    let direct = EtcdOptions::new([etcd.endpoint()]).prefix("/t5");
    let mut via_cable =
        EtcdOptions::new([format!("http://127.0.0.1:{}", cable.port)]).prefix("/t5");
    via_cable.timeout = Duration::from_secs(1);
    let first = Registration::start(
        direct.clone(),
        vec![member("svc", "first", 1)],
        Duration::from_secs(30),
    )?;
    first.registered(WAIT).await?;
    let membership = EtcdMembership::start(via_cable).await?;
    let mut view = membership.view();
    until(&mut view, "first", |v| instances(v) == ["svc/first"]).await?;

    // Cut off, it misses a removal and an addition, and etcd compacts that history away.
    cable.set(false);
    until(&mut view, "lost", |v| {
        matches!(v.health, SourceHealth::Lost { .. })
    })
    .await?;
    first.close().await;
    let second = Registration::start(
        direct.clone(),
        vec![member("svc", "second", 2)],
        Duration::from_secs(30),
    )?;
    second.registered(WAIT).await?;
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    let revision = client
        .get("x", None)
        .await?
        .header()
        .map_or(0, |h| h.revision());
    client.compact(revision, None).await?;

    cable.set(true);
    until(&mut view, "the reloaded view", |v| {
        v.health == SourceHealth::Live && instances(v) == ["svc/second"]
    })
    .await?;
    second.close().await;
    Ok(())
}

/// PEM files of a CA, etcd's certificate for 127.0.0.1 and a client certificate, all
/// signed by the CA.
fn certificates(
    dir: &std::path::Path,
) -> anyhow::Result<(
    toolmesh_testkit::EtcdServerTls,
    toolmesh_registry::discovery::etcd::EtcdTls,
)> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "toolmesh etcd test CA");
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut server =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    server.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = rcgen::KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gateway");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &issuer)?;
    let write = |name: &str, pem: String| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, pem)?;
        Ok(path)
    };
    let ca = write("ca.pem", ca_cert.pem())?;
    Ok((
        toolmesh_testkit::EtcdServerTls {
            cert: write("server.pem", server_cert.pem())?,
            key: write("server.key", server_key.serialize_pem())?,
            client_ca: ca.clone(),
        },
        toolmesh_registry::discovery::etcd::EtcdTls {
            ca: Some(ca),
            cert: Some(write("client.pem", client_cert.pem())?),
            key: Some(write("client.key", client_key.serialize_pem())?),
            domain: None,
        },
    ))
}

#[tokio::test]
async fn the_registry_works_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server_tls, client_tls) = certificates(dir.path())?;
    let etcd = EtcdServer::start_tls(server_tls).await?;
    let mut options = EtcdOptions::new([etcd.endpoint()]).prefix("/t6");
    options.tls = Some(client_tls);
    options.timeout = Duration::from_secs(2);
    // The port is open before etcd serves: wait until it answers (bounded).
    let deadline = tokio::time::Instant::now() + WAIT;
    let membership = loop {
        match EtcdMembership::start(options.clone()).await {
            Ok(membership) => break membership,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("etcd not serving TLS yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut view = membership.view();
    let registration = Registration::start(
        options.clone(),
        vec![member("svc", "tls", 1)],
        Duration::from_secs(30),
    )?;
    registration.registered(WAIT).await?;
    until(&mut view, "the instance", |v| instances(v) == ["svc/tls"]).await?;
    registration.close().await;

    // Without a client certificate etcd refuses the connection.
    let mut anonymous = options;
    if let Some(tls) = anonymous.tls.as_mut() {
        tls.cert = None;
        tls.key = None;
    }
    let refused = EtcdMembership::start(anonymous)
        .await
        .expect_err("no client certificate");
    assert!(refused.to_string().contains("unreachable"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn the_registry_works_with_etcd_authentication_on() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let mut admin = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    admin.user_add("root", "root-secret", None).await?;
    admin.user_grant_role("root", "root").await?;
    admin.auth_enable().await?;

    let mut options = EtcdOptions::new([etcd.endpoint()]).prefix("/t7");
    options.username = Some("root".into());
    options.password = Some("root-secret".into());
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    let registration = Registration::start(
        options.clone(),
        vec![member("svc", "auth", 1)],
        Duration::from_secs(30),
    )?;
    registration.registered(WAIT).await?;
    until(&mut view, "the instance", |v| instances(v) == ["svc/auth"]).await?;
    registration.close().await;

    let mut wrong = options;
    wrong.password = Some("guess".into());
    let refused = EtcdMembership::start(wrong)
        .await
        .expect_err("a wrong password");
    assert!(
        refused.to_string().contains("refused the request"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("username and password"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn a_follower_reloads_when_etcd_comes_back_with_an_older_store() -> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t8");
    let kept = Registration::start(
        options.clone(),
        vec![member("svc", "kept", 1)],
        Duration::from_secs(30),
    )?;
    kept.registered(WAIT).await?;
    // Enough writes that the old revision is well above what the new store will reach.
    for round in 0..10 {
        let churn = Registration::start(
            options.clone(),
            vec![member("churn", &format!("c{round}"), 1)],
            Duration::from_secs(30),
        )?;
        churn.registered(WAIT).await?;
        churn.close().await;
    }
    // Its registrar dies with the old store: its record must not outlive it.
    let lost = Registration::start(
        options.clone(),
        vec![member("svc", "lost", 2)],
        Duration::from_secs(30),
    )?;
    lost.registered(WAIT).await?;
    let membership = EtcdMembership::start(options).await?;
    let mut view = membership.view();
    until(&mut view, "both", |v| {
        instances(v) == ["svc/kept", "svc/lost"]
    })
    .await?;
    drop(lost);

    etcd.wipe_and_restart().await?;
    // `kept` registers again in the empty store, at revisions below the old one.
    until(&mut view, "only the re-registered instance", |v| {
        v.health == SourceHealth::Live && instances(v) == ["svc/kept"]
    })
    .await?;
    kept.close().await;
    Ok(())
}

#[tokio::test]
async fn two_registrars_of_one_instance_keep_it_when_one_withdraws() -> anyhow::Result<()> {
    // As when every gateway publishes the same configuration.
    let etcd = EtcdServer::start().await?;
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/t9");
    let membership = EtcdMembership::start(options.clone()).await?;
    let mut view = membership.view();
    let first = Registration::start(
        options.clone(),
        vec![member("svc", "shared", 1)],
        Duration::from_secs(3),
    )?;
    first.registered(WAIT).await?;
    let second = Registration::start(
        options,
        vec![member("svc", "shared", 1)],
        Duration::from_secs(3),
    )?;
    second.registered(WAIT).await?;
    until(&mut view, "the instance", |v| {
        instances(v) == ["svc/shared"]
    })
    .await?;

    // The last writer withdraws: its revoke deletes the key, which the other restores.
    second.close().await;
    until(&mut view, "withdrawn", |v| instances(v).is_empty()).await?;
    until(&mut view, "restored by the other registrar", |v| {
        instances(v) == ["svc/shared"]
    })
    .await?;
    first.close().await;
    until(&mut view, "gone", |v| instances(v).is_empty()).await?;
    Ok(())
}
