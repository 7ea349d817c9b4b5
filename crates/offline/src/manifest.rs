//! The application's file plan and components, as `app/manifest.json` declares them, and
//! the templates they name.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// `app/manifest.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    pub files: Vec<Entry>,
    /// `backend` → stack → component; `frontend` → component.
    pub components: BTreeMap<String, Value>,
    pub reserved: Reserved,
}

/// A file of the plan, with `__entity__`-style placeholders.
#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    pub path: String,
    /// Relative to `app/`.
    pub template: String,
    /// `ts`, `py`.
    pub stacks: Vec<String>,
    /// The project flags (`backend`, `frontend`, `devops`) it needs, all of them.
    pub when: Vec<String>,
    pub component: String,
    /// The task type that writes it.
    pub task: String,
    pub purpose: String,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Reserved {
    /// Entity names that would collide with the application's own modules or types.
    pub entities: Vec<String>,
}

pub(crate) static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../app/manifest.json"))
        .expect("app/manifest.json is a manifest")
});

/// The text of the template at `path` (relative to `app/`).
pub(crate) fn template(path: &str) -> &'static str {
    TEMPLATES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| {
            panic!("app/manifest.json names a template that is not embedded: {path}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planned_template_is_embedded() {
        assert!(!MANIFEST.files.is_empty());
        for entry in &MANIFEST.files {
            assert!(!template(&entry.template).is_empty(), "{}", entry.template);
        }
        assert!(!template("contract/openapi.json").is_empty());
    }
}
