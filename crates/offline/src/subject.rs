//! What the offline provider writes about: the main entity, the features and the stack,
//! read from the project's description.

/// The backend language the offline provider writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Node.js with Express, in TypeScript (the default).
    TypeScript,
    /// Python with FastAPI, when the description or the stack asks for Python.
    Python,
}

/// The subject of a project, derived deterministically from its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The main entity, singular, lowercase ASCII (`todo`).
    pub entity: String,
    /// Short feature phrases.
    pub features: Vec<String>,
    pub backend: Backend,
}

/// Words that never name the main entity.
const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "simple",
    "small",
    "basic",
    "modern",
    "new",
    "my",
    "our",
    "web",
    "mobile",
    "online",
    "app",
    "application",
    "platform",
    "site",
    "website",
    "service",
    "system",
    "tool",
    "list",
    "build",
    "create",
    "make",
    "with",
    "for",
    "and",
    "of",
    "to",
    "that",
    "which",
    "where",
    "users",
    "user",
    "multi",
    "full",
    "stack",
    "fullstack",
];

impl Subject {
    pub fn new(description: &str, technology_stack: Option<&str>) -> Self {
        let lower = description.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let entity = words
            .iter()
            .find(|w| {
                w.len() > 2 && !FILLER.contains(w) && w.chars().all(|c| c.is_ascii_lowercase())
            })
            .map(|w| singular(w))
            .filter(|entity| !super::manifest::MANIFEST.reserved.entities.contains(entity))
            .unwrap_or_else(|| "item".to_owned());

        let features: Vec<String> = lower
            .split([',', ';', '.'])
            .flat_map(|part| part.split(" with "))
            .flat_map(|part| part.split(" and "))
            .map(|part| {
                part.trim()
                    .trim_start_matches("a ")
                    .trim_start_matches("an ")
                    .trim()
            })
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .take(8)
            .collect();

        let wants_python = |text: &str| {
            let text = text.to_lowercase();
            ["python", "fastapi", "django", "flask"]
                .iter()
                .any(|w| text.contains(w))
        };
        let backend = if wants_python(description) || technology_stack.is_some_and(wants_python) {
            Backend::Python
        } else {
            Backend::TypeScript
        };
        Self {
            entity,
            features,
            backend,
        }
    }

    /// The entity as a type name (`Todo`).
    pub fn type_name(&self) -> String {
        let mut chars = self.entity.chars();
        match chars.next() {
            Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
            None => String::new(),
        }
    }

    /// The entity's table and route name (`todos`).
    pub fn plural(&self) -> String {
        if self.entity.ends_with('s') || self.entity.ends_with('x') || self.entity.ends_with("sh") {
            format!("{}es", self.entity)
        } else if let Some(stem) = self.entity.strip_suffix('y')
            && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
        {
            format!("{stem}ies")
        } else {
            format!("{}s", self.entity)
        }
    }
}

fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if word.ends_with("ss") {
        word.to_owned()
    } else if let Some(stem) = word.strip_suffix('s') {
        stem.to_owned()
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_features_and_stack_come_from_the_description() {
        let s = Subject::new("A todo list app with user accounts and sharing", None);
        assert_eq!(s.entity, "todo");
        assert_eq!(s.plural(), "todos");
        assert_eq!(s.type_name(), "Todo");
        assert_eq!(s.features, ["todo list app", "user accounts", "sharing"]);
        assert_eq!(s.backend, Backend::TypeScript);

        let s = Subject::new("Inventory tracking for small shops", Some("Python FastAPI"));
        assert_eq!(s.entity, "inventory");
        assert_eq!(s.plural(), "inventories");
        assert_eq!(s.backend, Backend::Python);

        assert_eq!(Subject::new("!!!", None).entity, "item");
        // A name the application's own modules use is not taken for the entity.
        assert_eq!(Subject::new("A session planner", None).entity, "item");
    }
}
