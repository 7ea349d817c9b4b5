//! Which model a task asks: a route for its task type, else one for its agent kind, else
//! the configured default, else the provider's default. Routes are written
//! `reviewer=gpt-4.1,security_audit=o3` (`GUILD_LLM_MODELS`).

/// The configured models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelRoutes {
    /// The model for every task without a route; `None` uses the provider's default.
    pub default: Option<String>,
    /// `(task type or agent kind, model)`.
    routes: Vec<(String, String)>,
}

impl ModelRoutes {
    /// Routes from `default` and comma-separated `name=model` pairs.
    pub fn parse(default: Option<&str>, routes: &str) -> Result<Self, String> {
        let routes = routes
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|route| match route.split_once('=') {
                Some((name, model)) if !name.trim().is_empty() && !model.trim().is_empty() => {
                    Ok((name.trim().to_owned(), model.trim().to_owned()))
                }
                _ => Err(format!(
                    "`{route}` is not `name=model` (name: a task type or an agent kind)"
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            default: default
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            routes,
        })
    }

    /// The model for a task of `task_type` run by `agent`, if one is configured.
    pub fn model_for(&self, task_type: &str, agent: &str) -> Option<&str> {
        let route = |name: &str| {
            self.routes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, model)| model.as_str())
        };
        route(task_type)
            .or_else(|| route(agent))
            .or(self.default.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_types_win_over_agents_over_the_default() {
        let routes = ModelRoutes::parse(Some("small"), "reviewer=strong, security_audit=strongest")
            .expect("valid");
        assert_eq!(
            routes.model_for("security_audit", "reviewer"),
            Some("strongest")
        );
        assert_eq!(routes.model_for("code_review", "reviewer"), Some("strong"));
        assert_eq!(
            routes.model_for("api_development", "backend"),
            Some("small")
        );
        let none = ModelRoutes::parse(None, "").expect("valid");
        assert_eq!(none.model_for("api_development", "backend"), None);
        assert!(ModelRoutes::parse(None, "reviewer").is_err());
        assert!(ModelRoutes::parse(None, "reviewer=").is_err());
    }
}
