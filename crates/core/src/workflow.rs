//! Workflow templates: the task graph planned for each project type.
//!
//! `fullstack` is the reference design's graph. The other templates are sub-graphs of it:
//! a task keeps the dependencies that are in its template, and a task left with none
//! depends on `requirements_analysis`, which every graph starts with.

use crate::text_enum::text_enum;
use crate::{AgentKind, Plan, TaskSpec};

/// The key (and type) of the first task of every template.
pub const REQUIREMENTS_ANALYSIS: &str = "requirements_analysis";

text_enum! {
    /// What kind of application a project builds; picks the workflow template.
    #[derive(Default)]
    ProjectType ("project type") {
        /// Backend, frontend, devops and review: the whole reference graph.
        #[default]
        Fullstack => "fullstack",
        /// A single-page client: components, pages, state, API calls, reviewed.
        Frontend => "frontend",
        /// The server side: schema, API, auth, business logic, reviewed and audited.
        Backend => "backend",
        /// A deployable API service: the backend plus environments and CI/CD, audited.
        Api => "api",
    }
}

/// One entry of the reference graph.
struct Entry {
    key: &'static str,
    agent: AgentKind,
    description: &'static str,
    priority: i16,
    minutes: u32,
    depends_on: &'static [&'static str],
}

const fn entry(
    key: &'static str,
    agent: AgentKind,
    description: &'static str,
    priority: i16,
    minutes: u32,
    depends_on: &'static [&'static str],
) -> Entry {
    Entry {
        key,
        agent,
        description,
        priority,
        minutes,
        depends_on,
    }
}

use AgentKind::{Analyst, Backend, Devops, Frontend, Reviewer};

/// The fullstack graph of the reference design; `requirements_analysis` is added to
/// every entry without a dependency when a template is built.
#[rustfmt::skip]
const REFERENCE_GRAPH: &[Entry] = &[
    entry(REQUIREMENTS_ANALYSIS, Analyst, "Analyse the requirements into a structured technical breakdown", 0, 15, &[]),
    entry("database_schema", Backend, "Design and implement database schema", 1, 30, &[]),
    entry("api_structure", Backend, "Create API structure and routing", 2, 45, &["database_schema"]),
    entry("authentication", Backend, "Implement authentication system", 2, 40, &["database_schema"]),
    entry("business_logic", Backend, "Implement core business logic", 3, 60, &["api_structure", "authentication"]),
    entry("ui_components", Frontend, "Create reusable UI components", 2, 35, &[]),
    entry("page_layouts", Frontend, "Implement main page layouts", 3, 50, &["ui_components"]),
    entry("state_management", Frontend, "Set up state management system", 3, 30, &["ui_components"]),
    entry("api_integration", Frontend, "Integrate with backend APIs", 4, 40, &["page_layouts", "state_management", "business_logic"]),
    entry("environment_config", Devops, "Set up development and production environments", 1, 25, &[]),
    entry("ci_cd_pipeline", Devops, "Configure CI/CD pipeline", 4, 35, &["environment_config"]),
    entry("monitoring_setup", Devops, "Set up monitoring and logging", 5, 30, &["ci_cd_pipeline"]),
    entry("code_review", Reviewer, "Comprehensive code review and optimization", 5, 45, &["business_logic", "api_integration"]),
    entry("security_audit", Reviewer, "Security vulnerability assessment", 5, 35, &["authentication", "business_logic"]),
    entry("performance_testing", Reviewer, "Performance testing and optimization", 6, 40, &["code_review"]),
];

impl ProjectType {
    /// The task keys of this type's template (besides `requirements_analysis`).
    #[rustfmt::skip]
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Fullstack => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "ui_components", "page_layouts", "state_management", "api_integration",
                "environment_config", "ci_cd_pipeline", "monitoring_setup",
                "code_review", "security_audit", "performance_testing",
            ],
            Self::Frontend => &[
                "ui_components", "page_layouts", "state_management", "api_integration",
                "code_review",
            ],
            Self::Backend => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "code_review", "security_audit",
            ],
            Self::Api => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "environment_config", "ci_cd_pipeline", "security_audit",
            ],
        }
    }

    /// The tasks whose failure fails the whole project.
    pub fn critical_tasks(self) -> &'static [&'static str] {
        match self {
            Self::Fullstack | Self::Backend | Self::Api => {
                &["database_schema", "authentication", "api_structure"]
            }
            Self::Frontend => &["ui_components"],
        }
    }

    /// This type's task graph, checked.
    pub fn template(self) -> Plan {
        let keys = self.keys();
        let included = |key: &str| key == REQUIREMENTS_ANALYSIS || keys.contains(&key);
        let tasks = REFERENCE_GRAPH
            .iter()
            .filter(|e| included(e.key))
            .map(|e| {
                let mut depends_on: Vec<String> = e
                    .depends_on
                    .iter()
                    .filter(|d| included(d))
                    .map(std::string::ToString::to_string)
                    .collect();
                if depends_on.is_empty() && e.key != REQUIREMENTS_ANALYSIS {
                    depends_on.push(REQUIREMENTS_ANALYSIS.to_owned());
                }
                TaskSpec {
                    key: e.key.to_owned(),
                    kind: e.key.to_owned(),
                    agent: e.agent,
                    description: e.description.to_owned(),
                    depends_on,
                    priority: e.priority,
                    critical: self.critical_tasks().contains(&e.key),
                    estimated_minutes: e.minutes,
                    max_attempts: None,
                }
            })
            .collect();
        Plan::new(tasks)
            .expect("built-in templates are valid graphs")
            .planned_from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(plan: &Plan, key: &str) -> Vec<String> {
        let task = plan.tasks().iter().find(|t| t.key == key).expect(key);
        task.depends_on.clone()
    }

    #[test]
    fn fullstack_is_the_reference_graph() {
        let plan = ProjectType::Fullstack.template();
        assert_eq!(plan.tasks().len(), 15);
        #[rustfmt::skip]
        let expected: &[(&str, AgentKind, i16, u32, &[&str])] = &[
            ("requirements_analysis", Analyst, 0, 15, &[]),
            ("database_schema", Backend, 1, 30, &["requirements_analysis"]),
            ("api_structure", Backend, 2, 45, &["database_schema"]),
            ("authentication", Backend, 2, 40, &["database_schema"]),
            ("business_logic", Backend, 3, 60, &["api_structure", "authentication"]),
            ("ui_components", Frontend, 2, 35, &["requirements_analysis"]),
            ("page_layouts", Frontend, 3, 50, &["ui_components"]),
            ("state_management", Frontend, 3, 30, &["ui_components"]),
            ("api_integration", Frontend, 4, 40, &["page_layouts", "state_management", "business_logic"]),
            ("environment_config", Devops, 1, 25, &["requirements_analysis"]),
            ("ci_cd_pipeline", Devops, 4, 35, &["environment_config"]),
            ("monitoring_setup", Devops, 5, 30, &["ci_cd_pipeline"]),
            ("code_review", Reviewer, 5, 45, &["business_logic", "api_integration"]),
            ("security_audit", Reviewer, 5, 35, &["authentication", "business_logic"]),
            ("performance_testing", Reviewer, 6, 40, &["code_review"]),
        ];
        for (task, (key, agent, priority, minutes, depends_on)) in plan.tasks().iter().zip(expected)
        {
            assert_eq!(task.key, *key);
            assert_eq!(task.agent, *agent, "{key}");
            assert_eq!(task.priority, *priority, "{key}");
            assert_eq!(task.estimated_minutes, *minutes, "{key}");
            assert_eq!(task.depends_on, *depends_on, "{key}");
        }
        let critical: Vec<_> = plan
            .tasks()
            .iter()
            .filter(|t| t.critical)
            .map(|t| t.key.as_str())
            .collect();
        assert_eq!(
            critical,
            ["database_schema", "api_structure", "authentication"]
        );
    }

    #[test]
    fn fullstack_plan_figures() {
        let plan = ProjectType::Fullstack.template();
        assert_eq!(plan.total_minutes(), 555);
        // analysis 15 + schema 30 + api 45 + logic 60 + integration 40 + review 45 + perf 40
        assert_eq!(plan.critical_path_minutes(), 275);
        assert_eq!(
            plan.critical_path(),
            [
                "requirements_analysis",
                "database_schema",
                "api_structure",
                "business_logic",
                "api_integration",
                "code_review",
                "performance_testing"
            ]
        );
        assert_eq!(plan.phases().len(), 7);
        assert_eq!(plan.phases()[0], ["requirements_analysis"]);
    }

    #[test]
    fn sub_templates_keep_only_their_own_dependencies() {
        let frontend = ProjectType::Frontend.template();
        assert_eq!(frontend.tasks().len(), 6);
        assert_eq!(
            deps(&frontend, "api_integration"),
            ["page_layouts", "state_management"]
        );
        assert_eq!(deps(&frontend, "code_review"), ["api_integration"]);

        let backend = ProjectType::Backend.template();
        assert_eq!(backend.tasks().len(), 7);
        assert_eq!(deps(&backend, "code_review"), ["business_logic"]);
        assert!(
            backend
                .tasks()
                .iter()
                .all(|t| matches!(t.agent, Analyst | Backend | Reviewer))
        );

        let api = ProjectType::Api.template();
        assert_eq!(api.tasks().len(), 8);
        assert_eq!(deps(&api, "ci_cd_pipeline"), ["environment_config"]);
        assert_eq!(deps(&api, "environment_config"), ["requirements_analysis"]);
    }

    #[test]
    fn every_template_starts_with_the_analysis_and_names_real_critical_tasks() {
        for &project_type in ProjectType::ALL {
            let plan = project_type.template();
            assert_eq!(plan.phases()[0], [REQUIREMENTS_ANALYSIS], "{project_type}");
            for key in project_type.critical_tasks() {
                assert!(
                    plan.tasks().iter().any(|t| t.key == *key && t.critical),
                    "{project_type}: {key}"
                );
            }
            assert_eq!(
                project_type.as_str().parse::<ProjectType>(),
                Ok(project_type)
            );
        }
    }
}
