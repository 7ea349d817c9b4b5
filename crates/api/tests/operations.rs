//! Running Guild as a service: metrics that move with work, request ids, the deadline,
//! the rate limit, CORS, compression, and deleting a finished project.

mod common;

use std::time::Duration;

use common::{Options, start};
use guild_api::HttpSettings;
use guild_store::sqlx;
use guild_testkit::metric;
use serde_json::{Value, json};

const TODO: &str = "A todo list app with user accounts and sharing";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_work_happens() {
    let server = start(Options::default()).await;
    let scrape = || async {
        let response = server.get("/metrics").await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/plain")
        );
        response.text().await.expect("text")
    };
    let before = scrape().await;
    let id = server.create(json!({"description": TODO})).await;
    server.until_finished(&id).await;
    let after = scrape().await;

    let grew =
        |name: &str, labels: &[&str]| metric(&after, name, labels) - metric(&before, name, labels);
    // The recorder is shared by the tests of this binary: others may add, never take.
    assert!(grew("guild_tasks_claimed_total", &[]) >= 15.0);
    assert!(grew("guild_tasks_completed_total", &["agent=\"backend\""]) >= 4.0);
    assert!(
        grew(
            "guild_task_duration_seconds_count",
            &["outcome=\"completed\""]
        ) >= 15.0
    );
    assert!(
        grew(
            "guild_llm_calls_total",
            &["provider=\"offline\"", "model=\"offline-1\""]
        ) >= 15.0
    );
    assert!(grew("guild_llm_tokens_total", &["type=\"prompt\""]) > 0.0);
    assert!(grew("guild_llm_call_duration_seconds_count", &[]) >= 15.0);
    assert!(
        grew(
            "guild_http_requests_total",
            &["method=\"POST\"", "route=\"/projects\"", "status=\"202\""]
        ) >= 1.0
    );
    assert!(
        grew(
            "guild_http_request_duration_seconds_count",
            &["route=\"/projects/{id}/events\""]
        ) >= 1.0
    );
    for gauge in [
        "guild_ready_tasks",
        "guild_oldest_ready_task_age_seconds",
        "guild_running_tasks",
        "guild_db_pool_max_connections",
    ] {
        assert!(after.contains(&format!("\n{gauge} ")), "{gauge} missing");
    }
    assert!(metric(&after, "guild_db_pool_connections", &["state=\"idle\""]) >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let server = start(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let fresh = server.get("/healthz").await;
    let id = fresh.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&id)
            .expect("a UUID")
            .get_version_num(),
        4
    );

    let given = server
        .client
        .get(server.url("/projects/01a20e79-e14f-7718-a503-c9a7360ab999"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(given.status(), 404);
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_a_problem_not_a_hang() {
    let server = start(Options {
        workers: 0,
        http: HttpSettings {
            request_timeout: Duration::from_millis(300),
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    let id = server.create(json!({"description": TODO})).await;
    // Hold the project's row: cancelling it must wait for the lock.
    let mut holder = server.pool.begin().await.expect("begin");
    sqlx::query("SELECT id FROM projects WHERE id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *holder)
        .await
        .expect("lock");
    let response = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["type"], "/problems/timeout");
    holder.rollback().await.expect("release");
    // Nothing was half-done: the project is still pending and can be cancelled now.
    let project = server.get_json(&format!("/projects/{id}")).await;
    assert_eq!(project["status"], "pending");
    let response = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_has_its_own_rate_limit_and_hears_when_to_retry() {
    let server = start(Options {
        workers: 0,
        keys: "k1,k2",
        http: HttpSettings {
            rate_limit_per_minute: std::num::NonZeroU32::new(3),
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    let get = |key: &'static str| {
        server
            .client
            .get(server.url("/projects"))
            .bearer_auth(key)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(get("k1").await.expect("request").status(), 200);
    }
    let limited = get("k1").await.expect("request");
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&wait), "{wait}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    // Another key is not affected, nor are health checks and metrics; a made-up key gets
    // no allowance of its own: access control refuses it first.
    assert_eq!(get("k2").await.expect("request").status(), 200);
    assert_eq!(get("made-up").await.expect("request").status(), 401);
    for path in ["/healthz", "/metrics"] {
        let response = server
            .client
            .get(server.url(path))
            .bearer_auth("k1")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_get_cors_and_clients_get_compression() {
    let server = start(Options {
        workers: 0,
        http: HttpSettings {
            cors_origins: vec!["https://dash.example".into()],
            ..HttpSettings::default()
        },
        ..Options::default()
    })
    .await;
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/projects"))
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let stranger = server
        .client
        .get(server.url("/workflows"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let compressed = server
        .client
        .get(server.url("/workflows"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(compressed.status(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    let plain = server.get("/workflows").await;
    assert!(plain.headers().get("content-encoding").is_none());
    // An archive is gzip already: it is not compressed again.
    let id = server.create(json!({"description": TODO})).await;
    let cancelled = server
        .post(&format!("/projects/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status(), 200);
    let archive = server
        .client
        .get(server.url(&format!("/projects/{id}/archive")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(archive.status(), 200);
    assert_eq!(archive.headers()["content-type"], "application/gzip");
    assert!(archive.headers().get("content-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_finished_project_removes_exactly_what_it_owns() {
    let server = start(Options::default()).await;
    let keep = server.create(json!({"description": TODO})).await;
    let gone = server
        .create(json!({"description": "A recipe box", "project_type": "frontend"}))
        .await;
    server.until_finished(&keep).await;
    server.until_finished(&gone).await;

    let count = |table: &'static str, id: String| {
        let pool = server.pool.clone();
        async move {
            // `table` is one of three literals of this test.
            let sql = format!("SELECT count(*) FROM {table} WHERE project_id = $1::uuid");
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("count");
            n
        }
    };
    let kept_before = (
        count("tasks", keep.clone()).await,
        count("events", keep.clone()).await,
        count("project_files", keep.clone()).await,
    );
    assert!(count("project_files", gone.clone()).await > 0);

    let response = server
        .client
        .delete(server.url(&format!("/projects/{gone}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    assert_eq!(server.get(&format!("/projects/{gone}")).await.status(), 404);
    for table in ["tasks", "events", "project_files"] {
        assert_eq!(count(table, gone.clone()).await, 0, "{table}");
    }
    let (dependencies,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM task_dependencies d LEFT JOIN tasks t ON t.id = d.task_id WHERE t.id IS NULL",
    )
    .fetch_one(&server.pool)
    .await
    .expect("orphans");
    assert_eq!(dependencies, 0);
    let kept_after = (
        count("tasks", keep.clone()).await,
        count("events", keep.clone()).await,
        count("project_files", keep.clone()).await,
    );
    assert_eq!(kept_after, kept_before, "the other project is untouched");

    // A project still pending cannot be deleted; once cancelled it can.
    let idle = start(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let pending = idle.create(json!({"description": TODO})).await;
    let refused = idle
        .client
        .delete(idle.url(&format!("/projects/{pending}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.expect("json");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("cancel it")
    );
    idle.post(&format!("/projects/{pending}/cancel"), json!({}))
        .await;
    let deleted = idle
        .client
        .delete(idle.url(&format!("/projects/{pending}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
}
