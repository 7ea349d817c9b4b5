//! Durable scheduling with real processes and a real PostgreSQL: a worker killed with
//! `kill -9`, a worker stopped with SIGTERM, and the database restarting mid-run.

mod common;

use guild_core::ProjectType;
use std::time::{Duration, Instant};

use common::{
    Database, completes, create, events_to_the_end, events_until, get_json, serve, worker,
};
use guild_pg::{Cluster, Storage};
use guild_store::sqlx;
use serde_json::json;

/// The number of tasks of a template, as planned with verification off (these tests' setting).
fn template_size(project_type: ProjectType) -> i64 {
    let plan = project_type.template().without(guild_core::VERIFY);
    i64::try_from(plan.tasks().len()).expect("small")
}

/// Every task of every project in `ids` completed exactly once: one completion event per
/// task, and no two file versions for the same path and attempt.
async fn completed_exactly_once(url: &str, ids: &[String], tasks_per_project: i64) {
    let pool = guild_store::connect(url, 2).await.expect("connect");
    for id in ids {
        let id: uuid::Uuid = id.parse().expect("uuid");
        let (tasks, completed, completions): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM tasks WHERE project_id = $1),
                    (SELECT count(*) FROM tasks WHERE project_id = $1 AND status = 'completed'),
                    (SELECT count(*) FROM events WHERE project_id = $1 AND kind = 'task_completed')",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("counts");
        assert_eq!(
            (tasks, completed, completions),
            (tasks_per_project, tasks_per_project, tasks_per_project),
            "project {id}"
        );
        let repeated: Vec<(String, i32)> = sqlx::query_as(
            "SELECT path, attempt FROM project_files WHERE project_id = $1
             GROUP BY path, attempt HAVING count(*) > 1",
        )
        .bind(id)
        .fetch_all(&pool)
        .await
        .expect("files");
        assert!(repeated.is_empty(), "{repeated:?}");
    }
    pool.close().await;
}

#[tokio::test]
async fn a_worker_killed_mid_task_loses_nothing_and_repeats_nothing() {
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    let (api, base) = serve(Database::Url(&url), "0", &[]);
    let slow = [
        ("GUILD_OFFLINE_LATENCY_MS", "300"),
        ("GUILD_LEASE_SECS", "2"),
    ];
    // The doomed worker runs alone until it holds a task; it is killed, then the survivor
    // starts and recovers what it held.
    let (doomed, doomed_id) = worker(&url, "3", &slow);

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            create(
                &client,
                &base,
                json!({"description": "A todo app with teams"}),
            )
            .await,
        );
    }
    let held = ids[0].clone();
    let claimed = events_until(&client, &base, &held, |seen| {
        seen.contains("event: task_claimed")
    })
    .await;
    assert!(claimed.contains(&doomed_id), "{claimed}");
    doomed.kill();
    let (survivor, _) = worker(&url, "3", &slow);

    for id in &ids {
        completes(&client, &base, id).await;
    }
    let recovered = events_to_the_end(&client, &base, &held).await;
    assert!(recovered.contains("lease expired"), "{recovered}");
    completed_exactly_once(&url, &ids, template_size(ProjectType::Fullstack)).await;
    survivor.terminate();
    api.terminate();
}

#[tokio::test]
async fn a_worker_stopped_with_sigterm_hands_its_tasks_over_at_once() {
    let url = guild_testkit::database_url().await;
    let client = guild_testkit::http_client();
    let (api, base) = serve(Database::Url(&url), "0", &[]);
    // The first worker answers slowly, with a lease far longer than the test may take.
    let (stopping, stopping_id) = worker(
        &url,
        "2",
        &[
            ("GUILD_OFFLINE_LATENCY_MS", "600000"),
            ("GUILD_LEASE_SECS", "600"),
            ("GUILD_SHUTDOWN_GRACE_SECS", "0"),
        ],
    );
    let id = create(
        &client,
        &base,
        json!({"description": "A todo app", "project_type": "frontend"}),
    )
    .await;
    let claimed = events_until(&client, &base, &id, |seen| {
        seen.contains("event: task_claimed")
    })
    .await;
    assert!(claimed.contains(&stopping_id), "{claimed}");
    let (taking_over, _) = worker(&url, "2", &[]);

    let stopped_at = Instant::now();
    stopping.terminate();
    // Well before the 600 s lease could expire.
    let events = completes(&client, &base, &id).await;
    let took = stopped_at.elapsed();
    assert!(events.contains("event: task_released"), "{events}");
    assert!(
        !events.contains("lease expired"),
        "released, not recovered: {events}"
    );
    eprintln!("handed over and completed in {took:?}");
    completed_exactly_once(&url, &[id], template_size(ProjectType::Frontend)).await;
    taking_over.terminate();
    api.terminate();
}

#[tokio::test]
async fn the_database_restarting_mid_run_loses_nothing() {
    // A cluster of this test's own, since it is stopped and started.
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(&Storage::Ephemeral))
        .await
        .expect("join")
        .expect("PostgreSQL starts");
    let url = cluster.url("postgres");
    let client = guild_testkit::http_client();
    let (server, base) = serve(
        Database::Url(&url),
        "4",
        &[
            ("GUILD_OFFLINE_LATENCY_MS", "200"),
            ("GUILD_LEASE_SECS", "3"),
        ],
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            create(
                &client,
                &base,
                json!({"description": "A todo app", "project_type": "backend"}),
            )
            .await,
        );
    }
    events_until(&client, &base, &ids[0], |seen| {
        seen.contains("event: task_completed")
    })
    .await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_for_now().expect("stop");
        cluster
    })
    .await
    .expect("join");
    // The API answers at once that it cannot serve, rather than hanging.
    let down = client
        .get(format!("{base}/projects/{}", ids[0]))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("an answer while the database is down");
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["content-type"], "application/problem+json");
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again().expect("start again");
        cluster
    })
    .await
    .expect("join");

    for id in &ids {
        completes(&client, &base, id).await;
        let project = get_json(&client, &format!("{base}/projects/{id}")).await;
        assert_eq!(project["status"], "completed");
    }
    completed_exactly_once(&url, &ids, template_size(ProjectType::Backend)).await;
    server.terminate();
    drop(cluster);
}
