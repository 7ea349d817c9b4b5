//! The response cache: answers of calls at temperature 0, by a hash of everything the
//! answer depends on. A hit costs nothing and is counted.

use sqlx::PgPool;

use crate::Result;

/// An answer to keep.
#[derive(Debug, Clone)]
pub struct CachedAnswer<'a> {
    pub provider: &'a str,
    pub model: &'a str,
    pub content: &'a str,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// The kept answer for `key` as `(content, model)`, counting the hit.
pub async fn get(pool: &PgPool, key: &[u8; 32]) -> Result<Option<(String, String)>> {
    let hit: Option<(String, String)> = sqlx::query_as(
        "UPDATE llm_cache SET hits = hits + 1, last_hit_at = now()
         WHERE key = $1 RETURNING content, model",
    )
    .bind(key.as_slice())
    .fetch_optional(pool)
    .await?;
    Ok(hit)
}

/// Keeps an answer; the first answer kept for a key stays. An answer holding NUL (which
/// PostgreSQL text cannot store) is not kept: a hit must give back exactly what was said.
pub async fn put(pool: &PgPool, key: &[u8; 32], answer: CachedAnswer<'_>) -> Result<()> {
    if answer.content.contains('\0') {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO llm_cache (key, provider, model, content, prompt_tokens, completion_tokens)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.as_slice())
    .bind(answer.provider)
    .bind(answer.model)
    .bind(answer.content)
    .bind(answer.prompt_tokens)
    .bind(answer.completion_tokens)
    .execute(pool)
    .await?;
    Ok(())
}
