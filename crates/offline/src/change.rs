//! The offline change steps: a change request adds the extra fields it names ("Add a due
//! date to todos" → `due_date`, a date) to the main entity. The analysis lists the files
//! whose text the new fields change (rendered both ways and compared); the design update is
//! the design of the application with them.

use guild_design::Design;
use serde_json::json;

use crate::design::{GraphTask, design};
use crate::project::Project;
use crate::prompt;
use crate::subject::Subject;

/// The application before the change (from the design in the prompt) and after it.
fn before_and_after(
    subject: &Subject,
    description: &str,
    prompt_text: &str,
) -> Option<(Design, Project, Project)> {
    let current = prompt::design(prompt_text)?;
    let request = prompt::change_request(prompt_text).unwrap_or_default();
    let before = Project::of_design(subject, description, &current);
    let mut after = before.clone();
    after.context.fields = prompt::fields(subject, prompt_text, &request);
    Some((current, before, after))
}

/// The first generation's tasks, as the current design's owners name them.
fn graph_of(current: &Design) -> Vec<GraphTask> {
    let mut keys: Vec<&str> = current.files.iter().map(|f| f.task.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|k| GraphTask {
            key: k.to_owned(),
            kind: k.to_owned(),
        })
        .collect()
}

/// The change analysis: the files whose text changes.
pub(crate) fn analysis(subject: &Subject, description: &str, prompt_text: &str) -> String {
    let Some((current, before, after)) = before_and_after(subject, description, prompt_text) else {
        return json!({"summary": "nothing to analyse: the prompt has no design", "files": []})
            .to_string();
    };
    let new: Vec<String> = after
        .context
        .fields
        .iter()
        .filter(|f| !before.context.fields.contains(f))
        .map(|f| format!("{} ({})", f.name, f.kind))
        .collect();
    let files: Vec<String> = current
        .files
        .iter()
        .filter_map(|planned| {
            let entry = after.entry_at(&planned.path)?;
            (before.file(entry).1 != after.file(entry).1).then(|| planned.path.clone())
        })
        .collect();
    let components: Vec<&str> = ["backend", "frontend"]
        .into_iter()
        .filter(|c| files.iter().any(|f| f.starts_with(&format!("{c}/"))))
        .collect();
    let entities = &after.context.entities;
    serde_json::to_string_pretty(&json!({
        "summary": if new.is_empty() {
            format!("No field of the {} changes: the request names none the offline model knows", after.context.entity)
        } else {
            format!("Add {} to the {}", new.join(", "), entities)
        },
        "components": components,
        "files": files,
        "operations": [format!("POST /api/{entities}"), format!("PATCH /api/{entities}/{{id}}"), format!("GET /api/{entities}")],
        "design": format!("the `{entities}` table and the contract's schemas gain {}", new.join(", ")),
    }))
    .expect("JSON serialises")
}

/// The design update: the design of the application with the change's fields.
pub(crate) fn design_update(subject: &Subject, description: &str, prompt_text: &str) -> String {
    let Some((current, _, after)) = before_and_after(subject, description, prompt_text) else {
        return "The prompt has no design to update.".to_owned();
    };
    let updated = design(&after, &graph_of(&current));
    format!(
        "The design with the change.\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&updated.to_value()).expect("a design serialises")
    )
}
