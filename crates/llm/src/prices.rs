//! What calls cost: US dollars per million prompt and completion tokens, per model.
//!
//! A built-in table covers common models; `GUILD_LLM_PRICES` adds or overrides entries.
//! A model missing from the table has an unknown cost (`None`), never zero: a total that
//! includes an unknown cost is unknown too.

use std::collections::HashMap;

use crate::Usage;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub prompt: f64,
    pub completion: f64,
}

/// Built-in prices (USD per million tokens: prompt, completion), as published by the
/// providers. Check them against your contract and override with `GUILD_LLM_PRICES`.
const BUILT_IN: &[(&str, f64, f64)] = &[
    ("offline-1", 0.0, 0.0),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("o3", 2.00, 8.00),
    ("o4-mini", 1.10, 4.40),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-opus-4-1", 15.00, 75.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-sonnet-4-5", 3.00, 15.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-haiku-4-5", 1.00, 5.00),
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
                .map(|(model, prompt, completion)| {
                    (
                        (*model).to_owned(),
                        Price {
                            prompt: *prompt,
                            completion: *completion,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    /// The built-in table with `overrides` applied: comma-separated
    /// `model=prompt/completion` entries in USD per million tokens, e.g.
    /// `llama3.1=0/0,my-model=0.5/1.5`.
    pub fn with_overrides(overrides: &str) -> Result<Self, String> {
        let mut table = Self::default();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let parsed = entry.split_once('=').and_then(|(model, price)| {
                let (prompt, completion) = price.split_once('/')?;
                let price = Price {
                    prompt: prompt.trim().parse().ok()?,
                    completion: completion.trim().parse().ok()?,
                };
                let valid = !model.trim().is_empty()
                    && [price.prompt, price.completion]
                        .iter()
                        .all(|p| p.is_finite() && *p >= 0.0);
                valid.then(|| (model.trim().to_owned(), price))
            });
            let Some((model, price)) = parsed else {
                return Err(format!(
                    "`{entry}` is not `model=prompt/completion` with prices in USD per million tokens"
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

    /// What `usage` of `model` cost, when the model's price is known.
    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        self.price(model).map(|price| {
            (f64::from(usage.prompt_tokens) * price.prompt
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
        Usage {
            prompt_tokens,
            completion_tokens,
        }
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
        for bad in ["gpt-4o", "gpt-4o=1", "=1/2", "m=a/b", "m=-1/2", "m=NaN/1"] {
            let error = PriceTable::with_overrides(bad).unwrap_err();
            assert!(error.contains("model=prompt/completion"), "{bad}: {error}");
        }
    }
}
