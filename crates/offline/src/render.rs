//! Rendering the templates: Jinja with `[[ ]]`, `[% %]` and `[# #]` delimiters (so JSX,
//! Python dicts and template literals need no escaping), blocks trimmed, undefined names
//! refused, nothing escaped implicitly (templates escape where their output needs it).

use std::sync::LazyLock;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// An extra field of the main entity, beyond `id`, `title`, `completed`, `created_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Field {
    /// snake_case.
    pub name: String,
    pub label: String,
    /// `text`, `integer`, `boolean` or `date`.
    pub kind: &'static str,
}

/// What every template may use (`app/SPEC.md`, "Template context").
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Context {
    pub entity: String,
    #[serde(rename = "Entity")]
    pub entity_type: String,
    pub entities: String,
    #[serde(rename = "Entities")]
    pub entities_type: String,
    pub project_name: String,
    pub description: String,
    pub features: Vec<String>,
    /// `ts` or `py`.
    pub stack: &'static str,
    pub backend: bool,
    pub frontend: bool,
    pub devops: bool,
    pub fields: Vec<Field>,
    pub backend_port: u16,
}

impl Context {
    /// Replaces `__Entity__`, `__Entities__`, `__entities__` and `__entity__`.
    pub fn fill(&self, text: &str) -> String {
        text.replace("__Entities__", &self.entities_type)
            .replace("__Entity__", &self.entity_type)
            .replace("__entities__", &self.entities)
            .replace("__entity__", &self.entity)
    }
}

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .block_delimiters("[%", "%]")
            .variable_delimiters("[[", "]]")
            .comment_delimiters("[#", "#]")
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the delimiters are valid"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
});

/// Renders template text `text` (named `name` in errors) for `context`.
pub(crate) fn render(name: &str, text: &str, context: &Context) -> String {
    ENVIRONMENT
        .render_named_str(
            name,
            text,
            minijinja::Value::from(minijinja::value::Serde(context)),
        )
        .unwrap_or_else(|e| panic!("the offline template {name} does not render: {e:#}"))
}
