//! Pruning old projects keeps what matters (projects, tasks, the latest file of each path)
//! and removes only the events and superseded file versions of projects finished long ago.

use std::time::Duration;

use guild_core::ProjectId;
use guild_core::{AgentKind, Plan};
use guild_store::files::NewFile;
use guild_store::settle::{self, Completion};
use guild_store::{PgPool, retention, tasks};
use serde_json::json;

fn file(content: &str) -> NewFile {
    guild_testkit::new_file("src/app.ts", content, "typescript")
}

/// A finished project of two tasks, each writing `src/app.ts`: versions 1 and 2.
async fn finished_project(pool: &PgPool) -> ProjectId {
    let plan = Plan::new(vec![
        guild_testkit::task_spec("first", AgentKind::Backend, &[]),
        guild_testkit::task_spec("second", AgentKind::Backend, &["first"]),
    ])
    .expect("plan");
    let project_id = guild_testkit::create_project(pool, &plan, json!({})).await;
    for content in ["one", "two"] {
        let task = tasks::claim_ready(pool, "w", 1, Duration::from_secs(30), &[])
            .await
            .expect("claim")
            .pop()
            .expect("a ready task");
        settle::complete(
            pool,
            Completion {
                result: json!({"summary": content}),
                ..guild_testkit::completion(&task, &[file(content)], &[])
            },
        )
        .await
        .expect("complete");
    }
    project_id
}

async fn count(pool: &PgPool, sql: &'static str, project_id: ProjectId) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(project_id)
        .fetch_one(pool)
        .await
        .expect("count");
    n
}

#[tokio::test]
async fn pruning_removes_old_events_and_superseded_files_only() {
    let pool = guild_testkit::database().await;
    let old = finished_project(&pool).await;
    let recent = finished_project(&pool).await;
    sqlx::query("UPDATE projects SET finished_at = now() - interval '40 days' WHERE id = $1")
        .bind(old)
        .execute(&pool)
        .await
        .expect("age");
    let events = "SELECT count(*) FROM events WHERE project_id = $1";
    let files = "SELECT count(*) FROM project_files WHERE project_id = $1";
    let recent_before = (
        count(&pool, events, recent).await,
        count(&pool, files, recent).await,
    );
    assert_eq!(recent_before.1, 2);
    let old_events = count(&pool, events, old).await;
    assert!(old_events > 0);

    let pruned = retention::prune(&pool, Duration::from_secs(30 * 86_400))
        .await
        .expect("prune");
    assert_eq!(
        pruned,
        retention::Pruned {
            projects: 1,
            events: old_events,
            file_versions: 1
        }
    );
    assert_eq!(count(&pool, events, old).await, 0);
    let (version, content): (i32, String) =
        sqlx::query_as("SELECT version, content FROM project_files WHERE project_id = $1")
            .bind(old)
            .fetch_one(&pool)
            .await
            .expect("the latest version stays");
    assert_eq!((version, content.as_str()), (2, "two"));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE project_id = $1",
            old
        )
        .await,
        2
    );
    assert_eq!(
        (
            count(&pool, events, recent).await,
            count(&pool, files, recent).await
        ),
        recent_before,
        "a project finished recently is untouched"
    );
    // Pruning again finds nothing more to remove.
    let again = retention::prune(&pool, Duration::from_secs(30 * 86_400))
        .await
        .expect("prune");
    assert_eq!((again.events, again.file_versions), (0, 0));
}

#[tokio::test]
async fn only_finished_projects_can_be_deleted() {
    let pool = guild_testkit::database().await;
    // Finished first: its claims would otherwise take the pending project's task.
    let finished = finished_project(&pool).await;
    let plan = Plan::new(vec![guild_testkit::task_spec(
        "only",
        AgentKind::Backend,
        &[],
    )])
    .expect("plan");
    let pending = guild_testkit::create_project(&pool, &plan, json!({})).await;
    let refused = retention::delete_project(&pool, pending).await.unwrap_err();
    assert!(refused.to_string().contains("cancel it"), "{refused}");
    retention::delete_project(&pool, finished)
        .await
        .expect("delete");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE project_id = $1",
            finished
        )
        .await,
        0
    );
    assert!(matches!(
        retention::delete_project(&pool, finished).await,
        Err(guild_store::StoreError::NotFound("project"))
    ));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tasks WHERE project_id = $1",
            pending
        )
        .await,
        1
    );
}
