//! What the offline model reads from a prompt: the fenced JSON blocks Guild's prompts
//! carry (`json design`, `json tasks`), and the extra fields a description asks for.

use guild_design::Design;
use serde::de::DeserializeOwned;

use crate::project::{FIXED_COLUMNS, Project};
use crate::render::Field;
use crate::subject::Subject;

/// The JSON of the first ```` ```json <tag> ```` block, read as `T`.
pub(crate) fn json_block<T: DeserializeOwned>(prompt: &str, tag: &str) -> Option<T> {
    let opening = format!("```json {tag}\n");
    let start = prompt.find(&opening)? + opening.len();
    let end = start + prompt[start..].find("\n```")?;
    serde_json::from_str(&prompt[start..end]).ok()
}

/// The design a prompt carries.
pub(crate) fn design(prompt: &str) -> Option<Design> {
    json_block(prompt, "design").and_then(|value| Design::from_value(value).ok())
}

/// The change request a prompt carries (the `> ` lines after `# Change request`).
pub(crate) fn change_request(prompt: &str) -> Option<String> {
    let (_, rest) = prompt.split_once("# Change request (revision ")?;
    let lines: Vec<&str> = rest
        .lines()
        .skip_while(|l| !l.starts_with("> "))
        .take_while(|l| l.starts_with("> ") || *l == ">")
        .map(|l| l.trim_start_matches('>').trim_start())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Words a description may use for an extra field of the main entity, and the field.
const FIELD_PHRASES: &[(&[&str], &str, &str)] = &[
    (
        &["due date", "due dates", "deadline", "deadlines"],
        "due_date",
        "date",
    ),
    (&["priority", "priorities"], "priority", "integer"),
    (&["note", "notes"], "notes", "text"),
    (&["category", "categories"], "category", "text"),
    (&["quantity", "quantities"], "quantity", "integer"),
];

/// The extra fields of the main entity: those of the design the prompt carries, if any,
/// then those `request` asks for by name ("with due dates", "add a priority").
pub(crate) fn fields(subject: &Subject, prompt: &str, request: &str) -> Vec<Field> {
    // The project's subject finds its main table: a request ("Add a priority to todos")
    // does not name it first.
    let mut fields = design(prompt)
        .map(|d| Project::of_design(subject, request, &d).context.fields)
        .unwrap_or_default();
    let words: String = request
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let words = format!(
        " {} ",
        words.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for (phrases, name, kind) in FIELD_PHRASES {
        let asked = phrases.iter().any(|p| words.contains(&format!(" {p} ")));
        if asked && !fields.iter().any(|f| f.name == *name) && !FIXED_COLUMNS.contains(name) {
            fields.push(Field {
                name: (*name).to_owned(),
                label: crate::project::label(name),
                kind,
            });
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_by_tag() {
        let prompt = "x\n```json tasks\n[{\"key\": \"a\"}]\n```\n```json design\nnot json\n```\n";
        let tasks: Vec<serde_json::Value> = json_block(prompt, "tasks").expect("tasks");
        assert_eq!(tasks[0]["key"], "a");
        assert!(json_block::<serde_json::Value>(prompt, "design").is_none());
        assert!(json_block::<serde_json::Value>(prompt, "other").is_none());
    }

    #[test]
    fn change_requests_are_read_from_their_quote() {
        let prompt = "# Design\n\n# Change request (revision 2)\n\nThe project exists.\n\n> Add a due date\n> to todos\n\nIts analysis:";
        assert_eq!(
            change_request(prompt).as_deref(),
            Some("Add a due date\nto todos")
        );
        assert_eq!(change_request("no change"), None);
    }

    #[test]
    fn a_change_keeps_the_fields_the_design_has_and_adds_those_it_names() {
        let subject = Subject::new("A todo list app with user accounts", None);
        let with_due_date = crate::project::Project::new(
            &subject,
            "A todo list app with user accounts",
            crate::project::Flags::FULLSTACK,
            fields(&subject, "", "Add a due date to todos"),
        );
        let design = crate::design::design(&with_due_date, &[]);
        let prompt = format!(
            "```json design\n{}\n```\n",
            serde_json::to_string(&design.to_value()).expect("serialises")
        );
        let names: Vec<String> = fields(&subject, &prompt, "Add a priority to todos")
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["due_date", "priority"]);
    }

    #[test]
    fn descriptions_name_extra_fields() {
        let names = |request: &str| {
            fields(&Subject::new(request, None), "", request)
                .into_iter()
                .map(|f| (f.name, f.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("A todo app with due dates and priorities"),
            [("due_date".into(), "date"), ("priority".into(), "integer")]
        );
        assert_eq!(names("A todo list app with user accounts and sharing"), []);
        assert_eq!(names("A notebook app"), []);
        assert_eq!(
            names("Add a due date to todos"),
            [("due_date".into(), "date")]
        );
    }
}
