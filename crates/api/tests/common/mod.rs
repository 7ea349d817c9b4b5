//! A real Guild server for tests: PostgreSQL, the worker pool, HTTP on 127.0.0.1.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use guild_agents::{Agent, AgentSettings, Agents};
use guild_api::{ApiKeys, AppState};
use guild_llm::{LlmClient, LlmError, LlmRequest, LlmResponse};
use guild_offline::OfflineProvider;
use guild_store::PgPool;
use guild_worker::{WorkerConfig, WorkerEvent, WorkerPool};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub worker_events: broadcast::Receiver<WorkerEvent>,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct Options {
    pub workers: usize,
    pub keys: &'static str,
    pub agent: Arc<dyn Agent>,
    /// The server's budget for projects whose options set none.
    pub default_max_tokens: Option<u64>,
    /// Deadline, CORS, rate limit.
    pub http: guild_api::HttpSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 4,
            keys: "",
            agent: offline_team(Duration::ZERO),
            default_max_tokens: None,
            http: guild_api::HttpSettings::default(),
        }
    }
}

pub fn offline_team(latency: Duration) -> Arc<dyn Agent> {
    Arc::new(Agents::new(
        Arc::new(OfflineProvider::new(latency)),
        AgentSettings::default(),
    ))
}

pub async fn start(options: Options) -> Server {
    let pool = guild_testkit::database().await;
    let shutdown = CancellationToken::new();
    let (activity, activity_rx) = watch::channel(0u64);
    let workers = WorkerPool::new(
        pool.clone(),
        options.agent,
        WorkerConfig {
            retry_base_delay: Duration::from_millis(20),
            ..WorkerConfig::new(options.workers.max(1))
        },
    );
    let worker_events = workers.subscribe();
    if options.workers > 0 {
        let token = shutdown.clone();
        tokio::spawn(async move { workers.run(token).await });
        let mut events = worker_events.resubscribe();
        let token = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = events.recv() => if matches!(event, Err(broadcast::error::RecvError::Closed)) { return; },
                    () = token.cancelled() => return,
                }
                activity.send_modify(|n| *n += 1);
            }
        });
    }
    let state = AppState {
        pool: pool.clone(),
        keys: Arc::new(ApiKeys::from_list(options.keys)),
        activity: activity_rx,
        default_max_attempts: 3,
        default_max_tokens: options.default_max_tokens,
        default_max_cost_usd: None,
        // The offline team here has no verifier: projects are planned without the stage.
        verification: false,
        http: options.http,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            guild_api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(token.cancelled_owned())
        .await
    });
    Server {
        base,
        client: guild_testkit::http_client(),
        pool,
        worker_events,
        shutdown,
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: i64,
    pub kind: String,
    pub data: Value,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a project and returns its id.
    pub async fn create(&self, body: Value) -> String {
        let response = self.post("/projects", body).await;
        assert_eq!(response.status(), 202);
        let project: Value = response.json().await.expect("json");
        project["id"].as_str().expect("id").to_owned()
    }

    /// Follows a project's event stream from `after` until `stop` says so or the server
    /// closes it (the project ended). Returns the events read.
    pub async fn follow(
        &self,
        id: &str,
        after: Option<i64>,
        stop: impl Fn(&Sse) -> bool,
    ) -> Vec<Sse> {
        let mut request = self
            .client
            .get(self.url(&format!("/projects/{id}/events")))
            .header("accept", "text/event-stream");
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        let mut response = request.send().await.expect("stream");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/event-stream")
        );
        let mut events = Vec::new();
        let mut buffer = String::new();
        let read = async {
            while let Some(chunk) = response.chunk().await.expect("chunk") {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    if let Some(event) = parse_frame(&frame) {
                        let done = stop(&event);
                        events.push(event);
                        if done {
                            return;
                        }
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("the stream ended in time");
        events
    }

    /// Waits until the project has ended, through its event stream.
    pub async fn until_finished(&self, id: &str) -> Vec<Sse> {
        self.follow(id, None, |_| false).await
    }
}

fn parse_frame(frame: &str) -> Option<Sse> {
    let mut id = None;
    let mut kind = None;
    let mut data = None;
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str(v).ok();
        }
    }
    Some(Sse {
        id: id?,
        kind: kind?,
        data: data?,
    })
}

/// A model that answers like the offline provider and keeps every request.
#[derive(Default)]
pub struct Recording {
    inner: OfflineProvider,
    pub requests: Mutex<Vec<LlmRequest>>,
}

#[async_trait]
impl LlmClient for Recording {
    fn provider(&self) -> &'static str {
        "offline"
    }

    fn default_model(&self) -> &str {
        self.inner.default_model()
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.requests.lock().expect("lock").push(request.clone());
        self.inner.complete(request).await
    }
}
