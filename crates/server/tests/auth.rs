//! Inbound authentication at the HTTP edge, in process over real HTTP, with a real
//! fixture server behind the gateway: refused requests never reach it (its `counter`
//! tool counts the calls that did), API keys and JWTs (keys generated here, JWKS in a
//! temp file rotated while serving) establish the identity a tool call runs under.

use std::{path::Path, sync::Arc, time::Duration};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair},
};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, OctetKeyPairParameters,
        OctetKeyPairType,
    },
};
use rmcp::model::ContentBlock;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_core::{
    CallContext, CallError, CallToolResult, Invoker, ServerId, Tool, ToolCall, result_text,
};
use toolmesh_registry::{NativeBackend, Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{
    CatalogServer, GatewayState, HttpOptions, HttpServer,
    auth::{ApiKey, AuthMode, AuthSettings, Authenticator, JwtKeys, JwtSettings},
};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::{Endpoint, Session};

const ACCEPT: &str = "application/json, text/event-stream";
const ISSUER: &str = "https://idp.test";
const API_KEY: &str = "tm_the-right-key";

/// A native tool answering who called it: the principal and roles on its context.
struct WhoAmI;

impl Invoker for WhoAmI {
    async fn invoke(
        &self,
        _call: ToolCall,
        ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        let who = json!({ "principal": ctx.principal.as_deref(), "roles": ctx.roles.as_deref() });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            who.to_string(),
        )]))
    }
}

/// The fixture as `fx`, and `who__whoami`.
async fn registry(fixture: &FixtureServer) -> anyhow::Result<Registry> {
    let fx = ServiceSpec::single(ServerId::new("fx"), Endpoint::url(fixture.http_url()));
    let schema = Arc::new(
        json!({"type": "object"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let who = ServiceSpec::native(
        ServerId::new("who"),
        NativeBackend {
            tools: vec![Tool::new("whoami", "Who is calling", schema)],
            invoker: Arc::new(WhoAmI),
            prefer: true,
        },
    );
    Ok(Registry::from_specs(vec![fx, who], RegistryOptions::default()).await?)
}

/// One signing key with its id.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    fn es256(kid: &str) -> anyhow::Result<Self> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("EC key generation failed"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        jwk.common.key_id = Some(kid.to_owned());
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            key,
            jwk,
        })
    }

    fn ed25519(kid: &str) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::generate()
            .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|_| anyhow::anyhow!("Ed25519 key export failed"))?;
        let x = base64_url(pair.public_key().as_ref());
        let jwk = Jwk {
            common: CommonParameters {
                key_id: Some(kid.to_owned()),
                key_algorithm: Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk,
        })
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Writes the public keys of `signers` as a JWKS, atomically (a reader never sees half).
fn write_jwks(path: &Path, signers: &[&Signer]) -> anyhow::Result<()> {
    let set = JwkSet {
        keys: signers.iter().map(|s| s.jwk.clone()).collect(),
    };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec(&set)?)?;
    std::fs::rename(partial, path)?;
    Ok(())
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims of a good token for `resource`.
fn claims(resource: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": resource,
        "sub": "alice",
        "exp": now() + 600,
        "roles": ["analyst", "ops"],
        "scope": "mcp:tools",
    })
}

/// A gateway in stateless mode (one POST is a whole call) with `auth`, on a free port.
struct Gateway {
    base: String,
    registry: Registry,
    shutdown: CancellationToken,
    http: reqwest::Client,
}

impl Gateway {
    async fn start(
        fixture: &FixtureServer,
        auth: impl FnOnce(String) -> AuthSettings,
        stateless: bool,
    ) -> anyhow::Result<Self> {
        let listener = HttpServer::bind("127.0.0.1:0".parse()?).await?;
        let base = format!("http://{}", listener.local_addr());
        let authenticator = Authenticator::new(auth(listener.mcp_url()))?;
        let options = HttpOptions::default()
            .stateless(stateless)
            .authenticate(authenticator);
        let registry = registry(fixture).await?;
        let state = GatewayState::ready(CatalogServer::new(registry.clone()), options);
        let shutdown = CancellationToken::new();
        tokio::spawn(listener.serve(state, shutdown.clone()));
        Ok(Self {
            base,
            registry,
            shutdown,
            http: reqwest::Client::new(),
        })
    }

    fn resource(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// POSTs a `tools/call` of `tool` to `path` with `headers`.
    async fn call(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        tool: &str,
    ) -> anyhow::Result<(u16, Option<String>, Value)> {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": tool, "arguments": {} },
        });
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", ACCEPT)
            .header("content-type", "application/json")
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, challenge, value))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.registry.shutdown().await;
    }
}

/// The text of a JSON-RPC `tools/call` answer.
fn answer_text(value: &Value) -> String {
    value["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What a refused request was: a name, the path and its headers.
type Attempt<'a> = (&'a str, String, Vec<(&'a str, String)>);

fn jwks_settings(resource: String, jwks: &Path) -> AuthSettings {
    AuthSettings::new(resource)
        .api_key(ApiKey::from_key("ci", API_KEY, vec!["ops".into()]))
        .jwt(JwtSettings::new(
            ISSUER,
            JwtKeys::JwksFile(jwks.to_path_buf()),
        ))
}

#[tokio::test]
async fn refused_requests_get_the_challenge_and_never_reach_an_upstream() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    let signer = Signer::es256("k1")?;
    write_jwks(&jwks, &[&signer])?;
    let gateway = Gateway::start(&fixture, |r| jwks_settings(r, &jwks), true).await?;
    let resource = gateway.resource();
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", gateway.base);

    let good = signer.sign(&claims(&resource))?;
    let mut expired = claims(&resource);
    expired["exp"] = json!(now() - 3600);
    let mut elsewhere = claims(&resource);
    elsewhere["aud"] = json!("https://other.example/mcp");
    let mut forged_issuer = claims(&resource);
    forged_issuer["iss"] = json!("https://evil.example");
    let mut no_exp = claims(&resource);
    no_exp.as_object_mut().map(|c| c.remove("exp"));
    let stranger = Signer::es256("k1")?.sign(&claims(&resource))?;
    let bearer = |token: &str| format!("Bearer {token}");

    let refused: Vec<Attempt<'_>> = vec![
        ("no credentials", "/mcp".into(), vec![]),
        (
            "a wrong key",
            "/mcp".into(),
            vec![("authorization", bearer("tm_wrong"))],
        ),
        (
            "a wrong X-API-Key",
            "/mcp".into(),
            vec![("x-api-key", "tm_wrong".into())],
        ),
        (
            "an expired JWT",
            "/mcp".into(),
            vec![("authorization", bearer(&signer.sign(&expired)?))],
        ),
        (
            "a JWT for another server",
            "/mcp".into(),
            vec![("authorization", bearer(&signer.sign(&elsewhere)?))],
        ),
        (
            "a JWT from another issuer",
            "/mcp".into(),
            vec![("authorization", bearer(&signer.sign(&forged_issuer)?))],
        ),
        (
            "a JWT without exp",
            "/mcp".into(),
            vec![("authorization", bearer(&signer.sign(&no_exp)?))],
        ),
        (
            "a JWT signed by another key",
            "/mcp".into(),
            vec![("authorization", bearer(&stranger))],
        ),
        (
            "a token in the query",
            format!("/mcp?access_token={good}"),
            vec![],
        ),
        (
            "a token in the query beside a good header",
            format!("/mcp?access_token={good}"),
            vec![("authorization", bearer(&good))],
        ),
        (
            "a key in the query",
            format!("/mcp?api_key={API_KEY}"),
            vec![],
        ),
        (
            "Basic credentials",
            "/mcp".into(),
            vec![("authorization", "Basic Y2k6cHc=".into())],
        ),
    ];
    for (what, path, headers) in &refused {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, challenge, body) = gateway.call(path, &headers, "fx__counter").await?;
        assert_eq!(status, 401, "{what}: {body}");
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
            "{what}: {challenge}"
        );
        if *what != "no credentials" {
            assert!(challenge.contains("error=\""), "{what}: {challenge}");
        }
        assert!(!challenge.contains(&good) && !body.to_string().contains(&good));
    }
    // `/status` is behind the same gate; health probes are not.
    let status = gateway
        .http
        .get(format!("{}/status", gateway.base))
        .send()
        .await?;
    assert_eq!(status.status().as_u16(), 401);
    let health = gateway
        .http
        .get(format!("{}/healthz", gateway.base))
        .send()
        .await?;
    assert_eq!(health.status().as_u16(), 200);

    // None of them reached the fixture: the first accepted call is its first.
    let (status, _, body) = gateway
        .call(
            "/mcp",
            &[("authorization", &bearer(API_KEY))],
            "fx__counter",
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(answer_text(&body), "1", "{body}");
    let (status, _, body) = gateway
        .call("/mcp", &[("x-api-key", API_KEY)], "fx__counter")
        .await?;
    assert_eq!((status, answer_text(&body).as_str()), (200, "2"), "{body}");
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn identities_reach_the_call_context() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    let signer = Signer::ed25519("ed")?;
    write_jwks(&jwks, &[&signer])?;
    let gateway = Gateway::start(&fixture, |r| jwks_settings(r, &jwks), true).await?;

    let (status, _, body) = gateway
        .call("/mcp", &[("x-api-key", API_KEY)], "who__whoami")
        .await?;
    assert_eq!(status, 200, "{body}");
    let who: Value = serde_json::from_str(&answer_text(&body))?;
    assert_eq!(who, json!({ "principal": "key:ci", "roles": ["ops"] }));

    let token = signer.sign(&claims(&gateway.resource()))?;
    let (status, _, body) = gateway
        .call(
            "/mcp",
            &[("authorization", &format!("Bearer {token}"))],
            "who__whoami",
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let who: Value = serde_json::from_str(&answer_text(&body))?;
    assert_eq!(
        who,
        json!({ "principal": "alice", "roles": ["analyst", "ops"] })
    );
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up_while_serving() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    let old = Signer::es256("2025-old")?;
    let new = Signer::es256("2026-new")?;
    write_jwks(&jwks, &[&old])?;
    // Sessions (not stateless): a real MCP client keeps its bearer on every request.
    let gateway = Gateway::start(&fixture, |r| jwks_settings(r, &jwks), false).await?;
    let resource = gateway.resource();
    let ctx = || CallContext::with_timeout(Duration::from_secs(10));

    let session =
        Session::connect(&Endpoint::url(&resource).bearer(old.sign(&claims(&resource))?)).await?;
    let who = session.call_tool("who__whoami", None, &ctx()).await?;
    assert!(result_text(&who).contains("alice"), "{who:?}");

    // The issuer starts signing with a key the gateway has not seen yet.
    let new_token = new.sign(&claims(&resource))?;
    assert!(
        Session::connect(&Endpoint::url(&resource).bearer(new_token.clone()))
            .await
            .is_err(),
        "a key missing from the JWKS must be refused"
    );
    write_jwks(&jwks, &[&old, &new])?;
    let rotated = Session::connect(&Endpoint::url(&resource).bearer(new_token)).await?;
    let counted = rotated.call_tool("fx__counter", None, &ctx()).await?;
    assert_eq!(result_text(&counted), "1");
    // The old key's session still works too.
    let who = session.call_tool("who__whoami", None, &ctx()).await?;
    assert!(result_text(&who).contains("alice"), "{who:?}");
    session.close(Duration::from_secs(1)).await;
    rotated.close(Duration::from_secs(1)).await;
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_metadata_document_and_scopes() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    let signer = Signer::es256("k")?;
    write_jwks(&jwks, &[&signer])?;
    let gateway = Gateway::start(
        &fixture,
        |r| jwks_settings(r, &jwks).require_scope("mcp:tools"),
        true,
    )
    .await?;
    let resource = gateway.resource();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = gateway
            .http
            .get(format!("{}{path}", gateway.base))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let document: Value = response.json().await?;
        assert_eq!(
            document,
            json!({
                "resource": resource,
                "authorization_servers": [ISSUER],
                "scopes_supported": ["mcp:tools"],
                "bearer_methods_supported": ["header"],
                "resource_name": "toolmesh",
            })
        );
    }
    let mut narrow = claims(&resource);
    narrow["scope"] = json!("profile");
    let (status, challenge, body) = gateway
        .call(
            "/mcp",
            &[(
                "authorization",
                &format!("Bearer {}", signer.sign(&narrow)?),
            )],
            "fx__counter",
        )
        .await?;
    assert_eq!(status, 403, "{body}");
    let challenge = challenge.unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:tools\""), "{challenge}");
    let good = format!("Bearer {}", signer.sign(&claims(&resource))?);
    let (status, _, body) = gateway
        .call("/mcp", &[("authorization", &good)], "fx__counter")
        .await?;
    assert_eq!((status, answer_text(&body).as_str()), (200, "1"), "{body}");
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn optional_mode_serves_anonymous_callers_but_refuses_bad_keys() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let gateway = Gateway::start(
        &fixture,
        |r| {
            let mut settings = AuthSettings::new(r)
                .mode(AuthMode::Optional)
                .api_key(ApiKey::from_key("ci", API_KEY, vec!["ops".into()]));
            settings.anonymous_role = "guest".into();
            settings
        },
        true,
    )
    .await?;
    let (status, _, body) = gateway.call("/mcp", &[], "who__whoami").await?;
    assert_eq!(status, 200, "{body}");
    let who: Value = serde_json::from_str(&answer_text(&body))?;
    assert_eq!(who, json!({ "principal": "anonymous", "roles": ["guest"] }));
    let (status, _, _) = gateway
        .call("/mcp", &[("x-api-key", "tm_wrong")], "who__whoami")
        .await?;
    assert_eq!(status, 401);
    gateway.stop().await;
    Ok(())
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let none = Authenticator::new(AuthSettings::new("http://127.0.0.1:1/mcp"));
    assert!(none.unwrap_err().to_string().contains("no credential"));
    let relative = Authenticator::new(AuthSettings::new("/mcp").api_key(ApiKey::from_key(
        "k",
        "tm_k",
        vec![],
    )));
    assert!(relative.unwrap_err().to_string().contains("absolute URL"));
    let short = Authenticator::new(AuthSettings::new("http://h/mcp").jwt(JwtSettings::new(
        ISSUER,
        JwtKeys::Hs256Secret("short".into()),
    )));
    assert!(short.unwrap_err().to_string().contains("32"));
    let missing = Authenticator::new(AuthSettings::new("http://h/mcp").jwt(JwtSettings::new(
        ISSUER,
        JwtKeys::JwksFile("/nonexistent/jwks.json".into()),
    )));
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/jwks.json")
    );
}

#[tokio::test]
async fn a_session_serves_only_the_caller_that_created_it() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let jwks = dir.path().join("jwks.json");
    let signer = Signer::ed25519("ed")?;
    write_jwks(&jwks, &[&signer])?;
    let gateway = Gateway::start(&fixture, |r| jwks_settings(r, &jwks), false).await?;
    let token = signer.sign(&claims(&gateway.resource()))?;
    let as_key = [("x-api-key", API_KEY)];
    let bearer = format!("Bearer {token}");
    let as_alice = [("authorization", bearer.as_str())];

    let post = |headers: Vec<(&'static str, String)>, body: Value| {
        let mut request = gateway
            .http
            .post(gateway.resource())
            .header("accept", ACCEPT)
            .header("content-type", "application/json")
            .json(&body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let created = post(vec![(as_key[0].0, as_key[0].1.to_owned())], initialize).await?;
    assert_eq!(created.status().as_u16(), 200);
    let session = created
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let with_session = |who: &[(&'static str, &str)]| {
        let mut headers: Vec<(&'static str, String)> =
            who.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        headers.push(("mcp-session-id", session.clone()));
        headers.push(("mcp-protocol-version", "2025-11-25".to_owned()));
        headers
    };
    let answer = post(with_session(&as_key), initialized).await?;
    assert!(answer.status().is_success(), "{}", answer.status());
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});

    // Another authenticated caller holding the id: no such session.
    let stolen = post(with_session(&as_alice), list.clone()).await?;
    assert_eq!(stolen.status().as_u16(), 404);
    // A tools/call too, which the fast path would otherwise serve.
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "fx__echo", "arguments": {"message": "hi"}}});
    let stolen = post(with_session(&as_alice), call.clone()).await?;
    assert_eq!(stolen.status().as_u16(), 404);
    let ended = gateway
        .http
        .delete(gateway.resource())
        .header("authorization", &bearer)
        .header("mcp-session-id", &session)
        .send()
        .await?;
    assert_eq!(ended.status().as_u16(), 404, "nor may it end the session");

    // Its creator goes on using it.
    let own = post(with_session(&as_key), list).await?;
    assert_eq!(own.status().as_u16(), 200);
    assert!(own.text().await?.contains("who__whoami"));
    let own = post(with_session(&as_key), call).await?;
    assert_eq!(own.status().as_u16(), 200);
    assert!(own.text().await?.contains("hi"));
    gateway.stop().await;
    Ok(())
}
