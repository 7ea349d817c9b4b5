//! The agents' budget and response cache, kept in PostgreSQL. Each is a statement or two
//! around a model call; neither holds a connection while the model thinks.

use async_trait::async_trait;
use guild_agents::{Budget, BudgetError, ResponseCache, Spend};
use guild_core::{ProjectId, TaskId};
use guild_llm::LlmResponse;
use guild_store::budget::{self, Amount};
use guild_store::{PgPool, llm_cache};

/// The budget of a running task's project.
#[derive(Debug)]
pub(crate) struct ProjectBudget {
    pub pool: PgPool,
    pub project_id: ProjectId,
    pub task_id: TaskId,
    pub attempt: i32,
}

fn amount(spend: Spend) -> Amount {
    Amount {
        tokens: i64::try_from(spend.tokens).unwrap_or(i64::MAX),
        cost_usd: spend.cost_usd,
    }
}

#[async_trait]
impl Budget for ProjectBudget {
    async fn reserve(&self, worst: Spend) -> Result<(), BudgetError> {
        match budget::reserve(
            &self.pool,
            self.project_id,
            self.task_id,
            self.attempt,
            amount(worst),
        )
        .await
        {
            Ok(budget::Reservation::Held) => Ok(()),
            Ok(budget::Reservation::Refused(why)) => Err(BudgetError::Exceeded(why)),
            Err(error) => Err(BudgetError::Unavailable(error.to_string())),
        }
    }

    async fn settle(&self, reserved: Spend, spent: Spend) {
        if let Err(error) = budget::settle_call(
            &self.pool,
            self.task_id,
            self.attempt,
            amount(reserved),
            amount(spent),
        )
        .await
        {
            // The reservation stays until the task settles, which clears it: the budget
            // is only stricter meanwhile.
            tracing::warn!(%error, "recording a call's spend against the budget failed");
        }
    }
}

/// The response cache in PostgreSQL. Failing to read or write it never fails a call: a
/// miss costs a call, nothing more.
pub struct PgResponseCache {
    pool: PgPool,
}

impl PgResponseCache {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl ResponseCache for PgResponseCache {
    async fn get(&self, key: &[u8; 32]) -> Option<(String, String)> {
        llm_cache::get(&self.pool, key)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "reading the response cache failed");
                None
            })
    }

    async fn put(&self, key: &[u8; 32], provider: &str, response: &LlmResponse) {
        let answer = llm_cache::CachedAnswer {
            provider,
            model: &response.model,
            content: &response.content,
            prompt_tokens: i64::from(response.usage.prompt_tokens),
            completion_tokens: i64::from(response.usage.completion_tokens),
        };
        if let Err(error) = llm_cache::put(&self.pool, key, answer).await {
            tracing::warn!(%error, "writing the response cache failed");
        }
    }
}
