//! What calls cost: US dollars per million prompt and completion tokens, per model, with
//! the rates of prompt tokens read from and written to the provider's prompt cache.
//!
//! A built-in table covers common models; `GUILD_LLM_PRICES` adds or overrides entries.
//! A model missing from the table has an unknown cost (`None`), never zero: a total that
//! includes an unknown cost is unknown too.

use std::collections::HashMap;

use crate::Usage;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Prompt tokens not read from or written to the prompt cache.
    pub prompt: f64,
    pub completion: f64,
    /// Prompt tokens read from the prompt cache.
    pub cached_prompt: f64,
    /// Prompt tokens written to the prompt cache.
    pub cache_write: f64,
}

/// Built-in prices in USD per million tokens: prompt, completion, cache read, cache write,
/// as published on the providers' pricing pages (OpenAI: cached input at 50% of input for
/// the GPT-4o family, 25% for GPT-4.1 and o-series, no write surcharge; Anthropic: cache
/// reads at 10% of input, 5-minute cache writes at 125%). Check them against your contract
/// and override with `GUILD_LLM_PRICES`.
const BUILT_IN: &[(&str, f64, f64, f64, f64)] = &[
    ("offline-1", 0.0, 0.0, 0.0, 0.0),
    ("gpt-4o", 2.50, 10.00, 1.25, 2.50),
    ("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15),
    ("gpt-4.1", 2.00, 8.00, 0.50, 2.00),
    ("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40),
    ("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10),
    ("o3", 2.00, 8.00, 0.50, 2.00),
    ("o4-mini", 1.10, 4.40, 0.275, 1.10),
    ("claude-opus-4", 15.00, 75.00, 1.50, 18.75),
    ("claude-opus-4-1", 15.00, 75.00, 1.50, 18.75),
    ("claude-sonnet-4", 3.00, 15.00, 0.30, 3.75),
    ("claude-sonnet-4-5", 3.00, 15.00, 0.30, 3.75),
    ("claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00),
    ("claude-haiku-4-5", 1.00, 5.00, 0.10, 1.25),
];

#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: HashMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            prices: BUILT_IN
                .iter()
                .map(|&(model, prompt, completion, cached_prompt, cache_write)| {
                    (
                        model.to_owned(),
                        Price {
                            prompt,
                            completion,
                            cached_prompt,
                            cache_write,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    /// The built-in table with `overrides` applied: comma-separated
    /// `model=prompt/completion[/cache_read[/cache_write]]` entries in USD per million
    /// tokens, e.g. `llama3.1=0/0,my-model=0.5/1.5/0.05/0.625`. Cache rates left out are
    /// the prompt rate (no discount assumed).
    pub fn with_overrides(overrides: &str) -> Result<Self, String> {
        let mut table = Self::default();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let parsed = entry.split_once('=').and_then(|(model, price)| {
                let rates: Vec<f64> = price
                    .split('/')
                    .map(|r| r.trim().parse().ok())
                    .collect::<Option<_>>()?;
                let price = match rates[..] {
                    [prompt, completion] => Price {
                        prompt,
                        completion,
                        cached_prompt: prompt,
                        cache_write: prompt,
                    },
                    [prompt, completion, cached_prompt] => Price {
                        prompt,
                        completion,
                        cached_prompt,
                        cache_write: prompt,
                    },
                    [prompt, completion, cached_prompt, cache_write] => Price {
                        prompt,
                        completion,
                        cached_prompt,
                        cache_write,
                    },
                    _ => return None,
                };
                let valid =
                    !model.trim().is_empty() && rates.iter().all(|p| p.is_finite() && *p >= 0.0);
                valid.then(|| (model.trim().to_owned(), price))
            });
            let Some((model, price)) = parsed else {
                return Err(format!(
                    "`{entry}` is not `model=prompt/completion[/cache_read[/cache_write]]` with prices in USD per million tokens"
                ));
            };
            table.prices.insert(model, price);
        }
        Ok(table)
    }

    /// The price of `model`: its own entry, or that of the model it is a dated snapshot of
    /// (`gpt-4o-2024-08-06` is priced as `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(price) = self.prices.get(model) {
            return Some(*price);
        }
        self.prices
            .iter()
            .filter(|(name, _)| {
                model
                    .strip_prefix(name.as_str())
                    .is_some_and(is_snapshot_suffix)
            })
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }

    /// What `usage` of `model` cost, when the model's price is known: prompt tokens read
    /// from the cache at the cache-read rate, those written to it at the cache-write rate,
    /// the rest at the prompt rate.
    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        self.price(model).map(|price| {
            let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
            let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
            let plain = usage.prompt_tokens - cached - written;
            (f64::from(plain) * price.prompt
                + f64::from(cached) * price.cached_prompt
                + f64::from(written) * price.cache_write
                + f64::from(usage.completion_tokens) * price.completion)
                / 1_000_000.0
        })
    }
}

/// A snapshot's date suffix: `-` then digits and dashes with at least four digits
/// (`-20250514`, `-2024-08-06`, `-0613`), so `claude-sonnet-4-5` is not `claude-sonnet-4`.
fn is_snapshot_suffix(rest: &str) -> bool {
    rest.strip_prefix('-').is_some_and(|date| {
        date.chars().all(|c| c.is_ascii_digit() || c == '-')
            && date.chars().filter(char::is_ascii_digit).count() >= 4
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage::new(prompt_tokens, completion_tokens)
    }

    #[test]
    fn known_models_and_their_snapshots_are_priced() {
        let table = PriceTable::default();
        let cost = table.cost("gpt-4o-mini", usage(1_000_000, 2_000_000));
        assert!((cost.expect("priced") - 1.35).abs() < 1e-9, "{cost:?}");
        assert_eq!(
            table.price("gpt-4o-mini-2024-07-18"),
            table.price("gpt-4o-mini")
        );
        assert_eq!(
            table.price("claude-sonnet-4-20250514"),
            table.price("claude-sonnet-4")
        );
        assert_eq!(table.cost("offline-1", usage(500, 500)), Some(0.0));
    }

    #[test]
    fn unknown_models_cost_unknown_not_zero() {
        let table = PriceTable::default();
        assert_eq!(table.cost("llama3.1:8b", usage(10, 10)), None);
        assert_eq!(table.price("gpt-4o-audio-preview"), None);
    }

    #[test]
    fn overrides_add_and_replace_prices() {
        let table = PriceTable::with_overrides(" llama3.1=0/0 , gpt-4o=1/2,").expect("valid");
        assert_eq!(table.cost("llama3.1", usage(100, 100)), Some(0.0));
        assert_eq!(table.cost("gpt-4o", usage(1_000_000, 1_000_000)), Some(3.0));
        for bad in [
            "gpt-4o",
            "gpt-4o=1",
            "=1/2",
            "m=a/b",
            "m=-1/2",
            "m=NaN/1",
            "m=1/2/3/4/5",
            "m=1/2/-1",
        ] {
            let error = PriceTable::with_overrides(bad).unwrap_err();
            assert!(error.contains("model=prompt/completion"), "{bad}: {error}");
        }
        let cached = PriceTable::with_overrides("m=1/2/0.1/1.25").expect("valid");
        assert_eq!(
            cached.price("m"),
            Some(Price {
                prompt: 1.0,
                completion: 2.0,
                cached_prompt: 0.1,
                cache_write: 1.25
            })
        );
    }

    #[test]
    fn cached_prompt_tokens_are_priced_at_the_cache_rates() {
        let table = PriceTable::default();
        // Anthropic: 1M prompt tokens of which 600k read from the cache and 300k written.
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            cached_prompt_tokens: 600_000,
            cache_write_tokens: 300_000,
        };
        let cost = table.cost("claude-sonnet-4-5", usage).expect("priced");
        let expected = 0.1 * 3.00 + 0.6 * 0.30 + 0.3 * 3.75;
        assert!((cost - expected).abs() < 1e-9, "{cost} vs {expected}");
        // OpenAI: half the prompt from the cache, at half price for gpt-4o.
        let usage = Usage {
            cached_prompt_tokens: 500_000,
            ..Usage::new(1_000_000, 0)
        };
        let cost = table.cost("gpt-4o", usage).expect("priced");
        assert!((cost - (0.5 * 2.50 + 0.5 * 1.25)).abs() < 1e-9, "{cost}");
        // Counts that exceed the prompt (a gateway's odd usage) never make a cost negative.
        let odd = Usage {
            cached_prompt_tokens: 9,
            cache_write_tokens: 9,
            ..Usage::new(5, 0)
        };
        assert!(table.cost("gpt-4o", odd).expect("priced") >= 0.0);
    }
}
