//! Workflow templates: the task graph planned for each project type.
//!
//! `fullstack` is the reference design's graph, grown into one that builds a project: the
//! analysis, then a design every later task is held to (`system_design`), a `scaffold`
//! (manifests, configs, entry points), the reference tasks, test tasks for each side, and
//! a `readme`. The other templates are sub-graphs of it: a task keeps the dependencies
//! that are in its template, and a task left with none depends on `scaffold`, which every
//! graph has after its analysis and design.

use crate::text_enum::text_enum;
use crate::{AgentKind, Plan, TaskSpec};

/// The key (and type) of the first task of every template.
pub const REQUIREMENTS_ANALYSIS: &str = "requirements_analysis";

/// The key (and type) of the design step, right after the analysis.
pub const SYSTEM_DESIGN: &str = "system_design";

/// The key (and type) of the task that lays out the project, right after the design.
pub const SCAFFOLD: &str = "scaffold";

/// The key (and type) of the verification: the project installed, built, tested, started
/// and called through its contract in a sandbox, after the code and tests, before the
/// reviews. A process with verification off plans without it ([`crate::Plan::without`]).
pub const VERIFY: &str = "verify";

/// The key (and type) of the code review, the last word on a project or a change.
pub const CODE_REVIEW: &str = "code_review";

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

/// The fullstack graph: the reference design's tasks (their dependencies kept, those on
/// nothing now on `scaffold`), with the design, scaffold, test and readme tasks added.
#[rustfmt::skip]
const REFERENCE_GRAPH: &[Entry] = &[
    entry(REQUIREMENTS_ANALYSIS, Analyst, "Analyse the requirements into a structured technical breakdown", 0, 15, &[]),
    entry(SYSTEM_DESIGN, Analyst, "Design the application: its API contract, data model, components and file plan", 1, 20, &[REQUIREMENTS_ANALYSIS]),
    entry(SCAFFOLD, Devops, "Scaffold the project: manifests, compiler and bundler configs, entry points, Dockerfiles", 2, 20, &[SYSTEM_DESIGN]),
    entry("database_schema", Backend, "Design and implement database schema", 3, 30, &[SCAFFOLD]),
    entry("api_structure", Backend, "Create API structure and routing", 4, 45, &["database_schema"]),
    entry("authentication", Backend, "Implement authentication system", 4, 40, &["database_schema"]),
    entry("business_logic", Backend, "Implement core business logic", 5, 60, &["api_structure", "authentication"]),
    entry("backend_tests", Backend, "Write the backend's unit and API tests", 6, 40, &["business_logic"]),
    entry("ui_components", Frontend, "Create reusable UI components", 4, 35, &[SCAFFOLD]),
    entry("page_layouts", Frontend, "Implement main page layouts", 5, 50, &["ui_components"]),
    entry("state_management", Frontend, "Set up state management system", 5, 30, &["ui_components"]),
    entry("api_integration", Frontend, "Integrate with backend APIs", 6, 40, &["page_layouts", "state_management", "business_logic"]),
    entry("frontend_tests", Frontend, "Write the frontend's component tests", 7, 35, &["api_integration"]),
    entry("environment_config", Devops, "Set up development and production environments", 3, 25, &[SCAFFOLD]),
    entry("ci_cd_pipeline", Devops, "Configure CI/CD pipeline", 6, 35, &["environment_config"]),
    entry("monitoring_setup", Devops, "Set up monitoring and logging", 7, 30, &["ci_cd_pipeline"]),
    entry(VERIFY, Reviewer, "Verify the project: install, type-check, build and test each component, start the server and call every operation of its contract", 8, 10, &["backend_tests", "frontend_tests", "monitoring_setup"]),
    entry("code_review", Reviewer, "Comprehensive code review and optimization", 8, 45, &[VERIFY]),
    entry("security_audit", Reviewer, "Security vulnerability assessment", 8, 35, &["authentication", "business_logic"]),
    entry("performance_testing", Reviewer, "Performance testing and optimization", 9, 40, &["code_review"]),
    entry("readme", Devops, "Write the README: what it is, how to install, build, test and run it", 9, 20, &["backend_tests", "frontend_tests", "monitoring_setup"]),
];

impl ProjectType {
    /// The task keys of this type's template besides the analysis, the design and the
    /// scaffold, which every template has.
    #[rustfmt::skip]
    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Fullstack => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "backend_tests", "ui_components", "page_layouts", "state_management",
                "api_integration", "frontend_tests", "environment_config", "ci_cd_pipeline",
                "monitoring_setup", "verify", "code_review", "security_audit",
                "performance_testing", "readme",
            ],
            Self::Frontend => &[
                "ui_components", "page_layouts", "state_management", "api_integration",
                "frontend_tests", "verify", "code_review", "readme",
            ],
            // The server's metrics module is monitoring's: a backend without it would not
            // build.
            Self::Backend => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "backend_tests", "monitoring_setup", "verify", "code_review", "security_audit",
                "readme",
            ],
            Self::Api => &[
                "database_schema", "api_structure", "authentication", "business_logic",
                "backend_tests", "environment_config", "ci_cd_pipeline", "monitoring_setup",
                "verify", "security_audit", "readme",
            ],
        }
    }

    /// The tasks whose failure fails the whole project.
    pub fn critical_tasks(self) -> &'static [&'static str] {
        match self {
            Self::Fullstack | Self::Backend | Self::Api => &[
                SYSTEM_DESIGN,
                SCAFFOLD,
                "database_schema",
                "authentication",
                "api_structure",
            ],
            Self::Frontend => &[SYSTEM_DESIGN, SCAFFOLD, "ui_components"],
        }
    }

    /// This type's task graph, checked.
    pub fn template(self) -> Plan {
        let keys = self.keys();
        let included = |key: &str| {
            [REQUIREMENTS_ANALYSIS, SYSTEM_DESIGN, SCAFFOLD].contains(&key) || keys.contains(&key)
        };
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
                    depends_on.push(SCAFFOLD.to_owned());
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
    fn fullstack_is_the_reference_graph_grown_into_a_build() {
        let plan = ProjectType::Fullstack.template();
        assert_eq!(plan.tasks().len(), 21);
        #[rustfmt::skip]
        let expected: &[(&str, AgentKind, i16, u32, &[&str])] = &[
            ("requirements_analysis", Analyst, 0, 15, &[]),
            ("system_design", Analyst, 1, 20, &["requirements_analysis"]),
            ("scaffold", Devops, 2, 20, &["system_design"]),
            ("database_schema", Backend, 3, 30, &["scaffold"]),
            ("api_structure", Backend, 4, 45, &["database_schema"]),
            ("authentication", Backend, 4, 40, &["database_schema"]),
            ("business_logic", Backend, 5, 60, &["api_structure", "authentication"]),
            ("backend_tests", Backend, 6, 40, &["business_logic"]),
            ("ui_components", Frontend, 4, 35, &["scaffold"]),
            ("page_layouts", Frontend, 5, 50, &["ui_components"]),
            ("state_management", Frontend, 5, 30, &["ui_components"]),
            ("api_integration", Frontend, 6, 40, &["page_layouts", "state_management", "business_logic"]),
            ("frontend_tests", Frontend, 7, 35, &["api_integration"]),
            ("environment_config", Devops, 3, 25, &["scaffold"]),
            ("ci_cd_pipeline", Devops, 6, 35, &["environment_config"]),
            ("monitoring_setup", Devops, 7, 30, &["ci_cd_pipeline"]),
            ("verify", Reviewer, 8, 10, &["backend_tests", "frontend_tests", "monitoring_setup"]),
            ("code_review", Reviewer, 8, 45, &["verify"]),
            ("security_audit", Reviewer, 8, 35, &["authentication", "business_logic"]),
            ("performance_testing", Reviewer, 9, 40, &["code_review"]),
            ("readme", Devops, 9, 20, &["backend_tests", "frontend_tests", "monitoring_setup"]),
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
            [
                "system_design",
                "scaffold",
                "database_schema",
                "api_structure",
                "authentication"
            ]
        );
    }

    #[test]
    fn fullstack_plan_figures() {
        let plan = ProjectType::Fullstack.template();
        assert_eq!(plan.total_minutes(), 700);
        // analysis 15 + design 20 + scaffold 20 + schema 30 + api 45 + logic 60
        // + integration 40 + frontend tests 35 + verify 10 + review 45 + perf 40
        assert_eq!(plan.critical_path_minutes(), 360);
        assert_eq!(
            plan.critical_path(),
            [
                "requirements_analysis",
                "system_design",
                "scaffold",
                "database_schema",
                "api_structure",
                "business_logic",
                "api_integration",
                "frontend_tests",
                "verify",
                "code_review",
                "performance_testing"
            ]
        );
        assert_eq!(plan.phases().len(), 11);
        assert_eq!(plan.phases()[0], ["requirements_analysis"]);
        assert_eq!(plan.phases()[1], ["system_design"]);
        assert_eq!(plan.phases()[2], ["scaffold"]);
    }

    #[test]
    fn sub_templates_keep_only_their_own_dependencies() {
        let frontend = ProjectType::Frontend.template();
        assert_eq!(frontend.tasks().len(), 11);
        assert_eq!(
            deps(&frontend, "api_integration"),
            ["page_layouts", "state_management"]
        );
        assert_eq!(deps(&frontend, "verify"), ["frontend_tests"]);
        assert_eq!(deps(&frontend, "code_review"), ["verify"]);
        assert_eq!(deps(&frontend, "readme"), ["frontend_tests"]);

        let backend = ProjectType::Backend.template();
        assert_eq!(backend.tasks().len(), 13);
        assert_eq!(
            deps(&backend, "verify"),
            ["backend_tests", "monitoring_setup"]
        );
        assert_eq!(deps(&backend, "code_review"), ["verify"]);
        assert_eq!(deps(&backend, "monitoring_setup"), ["scaffold"]);
        assert!(
            backend
                .tasks()
                .iter()
                .all(|t| matches!(t.agent, Analyst | Backend | Devops | Reviewer))
        );

        let api = ProjectType::Api.template();
        assert_eq!(api.tasks().len(), 14);
        assert_eq!(deps(&api, "ci_cd_pipeline"), ["environment_config"]);
        assert_eq!(deps(&api, "environment_config"), ["scaffold"]);
    }

    #[test]
    fn a_plan_without_verification_rewires_its_dependents() {
        let full = ProjectType::Fullstack.template();
        let plan = full.without(VERIFY);
        assert_eq!(plan.tasks().len(), 20);
        assert_eq!(plan.template(), Some(ProjectType::Fullstack));
        assert_eq!(
            deps(&plan, "code_review"),
            ["backend_tests", "frontend_tests", "monitoring_setup"]
        );
        assert_eq!(
            plan.critical_path_minutes(),
            full.critical_path_minutes() - 10
        );
        assert_eq!(plan.without("nothing"), plan);
    }

    #[test]
    fn every_template_starts_with_the_analysis_and_names_real_critical_tasks() {
        for &project_type in ProjectType::ALL {
            let plan = project_type.template();
            assert_eq!(plan.phases()[0], [REQUIREMENTS_ANALYSIS], "{project_type}");
            assert_eq!(plan.phases()[1], [SYSTEM_DESIGN], "{project_type}");
            assert_eq!(plan.phases()[2], [SCAFFOLD], "{project_type}");
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
