//! OFREP on the HTTP port, with a plain HTTP/1.1 client: every status code and body shape of
//! the spec, ETag / 304, the SSE change stream, CORS, and every vector case through the
//! single-flag endpoint. The server runs in this process so a test can pick its rate limit
//! and, for the 500, plant a token whose environment does not exist.

mod bulk;
mod events;
mod single;
mod vectors;

use crate::support::eventually::DEADLINE;
use crate::support::*;
use flagwire_proto::v1::*;
use flagwire_server::catalog::tokens::StoredToken;
use flagwire_server::catalog::{Catalog, CatalogOptions};
use flagwire_server::ofrep::OfrepOptions;
use flagwire_server::store::{Batch, Store, keys, memory::MemoryStore};
use flagwire_server::{Settings, run};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use prost::Message;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// A server in this process.
pub struct Ofrep {
    /// gRPC address.
    pub grpc: String,
    /// HTTP address.
    pub http: String,
    /// The catalog, to read revisions.
    pub catalog: Arc<Catalog>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Connect for Ofrep {
    fn address(&self) -> String {
        self.grpc.clone()
    }
    fn http_address(&self) -> String {
        self.http.clone()
    }
}

impl Drop for Ofrep {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The secret of a token planted straight into the store, bound to an environment that does
/// not exist (what no API allows: it is how a 500 is reached).
pub const ORPHAN: &str = "fw_orphan_token_of_a_missing_environment";

impl Ofrep {
    /// Starts a server over `store` (entries already committed) with `options`.
    pub async fn on(store: Arc<MemoryStore>, options: OfrepOptions) -> Self {
        let catalog = Arc::new(Catalog::open(store, CatalogOptions::default()).unwrap());
        catalog.bootstrap_admin(Some(ADMIN.into())).await.unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Self {
            grpc: grpc.local_addr().unwrap().to_string(),
            http: http.local_addr().unwrap().to_string(),
            catalog: Arc::clone(&catalog),
            stop: Some(stop),
        };
        let settings = Settings {
            shutdown_grace: Duration::from_millis(200),
            ofrep: options,
            ..Settings::new(catalog)
        };
        tokio::spawn(run(grpc, http, settings, async move {
            let _ = stopped.await;
        }));
        server
    }

    /// A server with environment `prod`, the flags of [`seed`], and an orphan token.
    pub async fn start(options: OfrepOptions) -> (Self, String) {
        let store = Arc::new(MemoryStore::new());
        let mut batch = Batch::default();
        // The admin token is planted too: the catalog bootstraps one only into an empty store.
        for (id, secret, role, env) in [
            ("orphan", ORPHAN, Role::Sdk, "gone"),
            ("admin", ADMIN, Role::Admin, ""),
        ] {
            batch.put(
                keys::token(id),
                planted(id, secret, role, env).encode_to_vec(),
            );
        }
        store.commit(batch).unwrap();
        let server = Self::on(store, options).await;
        let mut admin = server.admin().await;
        create_env(&mut admin, "prod").await;
        create_env(&mut admin, "staging").await;
        seed(&mut admin).await;
        let sdk = create_token(&mut admin, "web", Role::Sdk, "prod").await;
        (server, sdk)
    }

    /// The environment's revision.
    pub fn revision(&self, env: &str) -> u64 {
        self.catalog.revision(env).unwrap()
    }
}

fn planted(id: &str, secret: &str, role: Role, env: &str) -> StoredToken {
    use sha2::Digest;
    StoredToken {
        token: Some(ApiToken {
            id: id.into(),
            name: id.into(),
            role: role as i32,
            environment: env.into(),
            ..Default::default()
        }),
        hash: sha2::Sha256::digest(secret.as_bytes()).to_vec(),
    }
}

fn variant(key: &str, value: flag_value::Kind) -> Variant {
    Variant {
        key: key.into(),
        value: Some(FlagValue { kind: Some(value) }),
        description: String::new(),
    }
}

/// `banner` (boolean, on for everyone), `theme` (string, a 50/50 split by targeting key,
/// cohorts `a`/`b`) and `limit` (integer, disabled: serves `low`).
pub async fn seed(admin: &mut Admin) {
    let mut banner = bool_flag("banner", &["prod"]);
    banner.environments.get_mut("prod").unwrap().enabled = true;
    create_flag(admin, banner).await;
    use flag_value::Kind::*;
    let split = Split {
        entries: vec![
            SplitEntry {
                variant: "blue".into(),
                weight: 50,
                label: "a".into(),
            },
            SplitEntry {
                variant: "green".into(),
                weight: 50,
                label: "b".into(),
            },
        ],
        ..Default::default()
    };
    let theme = Flag {
        key: "theme".into(),
        r#type: ValueType::String as i32,
        variants: vec![
            variant("blue", StringValue("blue".into())),
            variant("green", StringValue("green".into())),
        ],
        environments: [(
            "prod".to_owned(),
            FlagConfig {
                enabled: true,
                off_variant: "blue".into(),
                default_rule: Some(Serve {
                    kind: Some(serve::Kind::Split(split)),
                }),
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    create_flag(admin, theme).await;
    let limit = Flag {
        key: "limit".into(),
        r#type: ValueType::Integer as i32,
        variants: vec![
            variant("low", IntValue(10)),
            variant("high", IntValue(1000)),
        ],
        environments: [(
            "prod".to_owned(),
            FlagConfig {
                enabled: false,
                off_variant: "low".into(),
                default_rule: Some(Serve {
                    kind: Some(serve::Kind::Variant("high".into())),
                }),
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    create_flag(admin, limit).await;
}

/// An HTTP response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: ::http::HeaderMap,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {:?}", self.status, self.body))
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

async fn open(
    addr: &str,
    request: ::http::Request<String>,
) -> ::http::Response<hyper::body::Incoming> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    sender.send_request(request).await.expect("HTTP request")
}

/// Sends `method path` with `headers` and `body` to `addr`.
pub async fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut request = ::http::Request::builder()
        .method(method)
        .uri(path)
        .header(::http::header::HOST, addr);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = open(addr, request.body(body.to_owned()).unwrap()).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `POST path` with `Authorization: Bearer token` and a JSON body.
pub async fn post(addr: &str, path: &str, token: &str, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    call(addr, "POST", path, &headers, body).await
}

/// An open server-sent-events stream.
pub struct Sse {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    body: hyper::body::Incoming,
    buffer: String,
}

/// One event: its `id` and `data`.
#[derive(Debug, PartialEq)]
pub struct Event {
    /// The `id:` field.
    pub id: String,
    /// The `event:` field.
    pub event: String,
    /// The `data:` field, parsed.
    pub data: Json,
}

impl Sse {
    /// Opens `GET path` with `headers`.
    pub async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut request = ::http::Request::get(path).header(::http::header::HOST, addr);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = open(addr, request.body(String::new()).unwrap()).await;
        Sse {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get(::http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// Waits (within [`DEADLINE`]) for the server to end the stream, failing on any event.
    pub async fn ended(&mut self) {
        tokio::time::timeout(DEADLINE, async {
            while let Some(frame) = self.body.frame().await {
                let data = frame.unwrap().into_data().unwrap_or_default();
                let text = std::str::from_utf8(&data).unwrap();
                assert!(!text.contains("data:"), "an event after the end: {text}");
            }
        })
        .await
        .expect("the stream did not end within the deadline");
    }

    /// The next event (comments, keep-alives, are skipped), within [`DEADLINE`].
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim_start().to_owned())
                    };
                    if let Some(data) = field("data:") {
                        return Event {
                            id: field("id:").unwrap_or_default(),
                            event: field("event:").unwrap_or_default(),
                            data: serde_json::from_str(&data).unwrap(),
                        };
                    }
                    continue;
                }
                let frame = self
                    .body
                    .frame()
                    .await
                    .expect("the event stream ended")
                    .unwrap();
                if let Ok(data) = frame.into_data() {
                    self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        })
        .await
        .expect("no event within the deadline")
    }
}
