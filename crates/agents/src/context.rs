//! What a task's prompt is rendered from: its project (description, analysis, design),
//! its part of the design's file plan, and the work done upstream.

use std::borrow::Cow;
use std::collections::BTreeSet;

use guild_core::change::{DESIGN_UPDATE, base_key};
use guild_core::{FIX_FINDINGS, Finding, SYSTEM_DESIGN};
use guild_design::Design;

use crate::TaskInput;
use crate::prompts::{
    PlanFile, PromptChange, PromptContext, PromptPlan, PromptTask, PromptUpstream,
};

impl<'a> PromptContext<'a> {
    /// The context of `input`'s task with no upstream file yet (the writer adds those that
    /// fit the context budget).
    pub fn of_task(input: &'a TaskInput) -> Self {
        let context = &input.context;
        let design = design_of(input);
        Self {
            agent: input.agent.as_str(),
            description: Cow::Borrowed(&context.description),
            project_type: context.project_type.as_str(),
            technology_stack: context.technology_stack.as_deref(),
            requirements: context
                .requirements
                .as_ref()
                .map(|r| serde_json::to_string_pretty(r).unwrap_or_default()),
            design: context
                .design
                .as_ref()
                .map(|d| serde_json::to_string(d).unwrap_or_default()),
            graph: [SYSTEM_DESIGN, DESIGN_UPDATE]
                .contains(&input.kind.as_str())
                .then(|| serde_json::to_string(&context.graph).unwrap_or_default()),
            change: context.change.as_ref().map(|c| PromptChange {
                revision: c.revision,
                description: c.description.clone(),
                quoted: c
                    .description
                    .lines()
                    .map(|l| format!("> {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                analysis: c
                    .analysis
                    .as_ref()
                    .map(|a| serde_json::to_string_pretty(a).unwrap_or_default()),
            }),
            task: PromptTask {
                key: &input.key,
                kind: &input.kind,
                description: &input.task_description,
            },
            plan: design
                .as_ref()
                .map(|d| plan_for(d, input))
                .filter(|p| !p.files.is_empty()),
            feedback: context.feedback.as_deref(),
            upstream: context
                .upstream
                .iter()
                .map(|u| PromptUpstream {
                    key: &u.key,
                    agent: u.agent.as_str(),
                    summary: u.summary.as_deref(),
                })
                .collect(),
            files: Vec::new(),
            omitted_files: Vec::new(),
            findings: context.findings.iter().map(Finding::describe).collect(),
            conflicts: context
                .files
                .iter()
                .filter_map(|f| {
                    let other = f.conflict.as_ref()?;
                    Some(format!(
                        "`{}`: v{} by `{}` replaced v{} by `{}` ({}) without seeing it",
                        f.path,
                        f.version,
                        f.task_key,
                        other["version"],
                        other["task_key"].as_str().unwrap_or("?"),
                        other["agent"].as_str().unwrap_or("?"),
                    ))
                })
                .collect(),
        }
    }
}

/// The project's design, when it has one that reads as a design.
pub(crate) fn design_of(input: &TaskInput) -> Option<Design> {
    input
        .context
        .design
        .clone()
        .and_then(|d| Design::from_value(d).ok())
}

/// The files the task owns in the design: its own, or for a fix task those its findings
/// name.
pub(crate) fn owned_files<'d>(
    design: &'d Design,
    input: &TaskInput,
) -> Vec<&'d guild_design::PlannedFile> {
    if input.kind == FIX_FINDINGS {
        let named: BTreeSet<&str> = input
            .context
            .findings
            .iter()
            .map(|f| f.file.as_str())
            .collect();
        design
            .files
            .iter()
            .filter(|f| named.contains(f.path.as_str()))
            .collect()
    } else {
        // A change's task owns what the first generation's task it stands for owns.
        design.files_of(base_key(&input.key)).collect()
    }
}

/// The task's part of the file plan: its files, the planned files they import, the
/// packages of their components.
fn plan_for(design: &Design, input: &TaskInput) -> PromptPlan {
    let own = owned_files(design, input);
    let own_paths: BTreeSet<&str> = own.iter().map(|f| f.path.as_str()).collect();
    let shown = |f: &guild_design::PlannedFile| PlanFile {
        path: f.path.clone(),
        task: f.task.clone(),
        purpose: f.purpose.clone(),
        exports: f.exports.clone(),
        operations: f.operations.clone(),
    };
    let mut imports: Vec<PlanFile> = Vec::new();
    for file in &own {
        for imported in design.imported_files(file) {
            if !own_paths.contains(imported.path.as_str())
                && !imports.iter().any(|i| i.path == imported.path)
            {
                imports.push(shown(imported));
            }
        }
    }
    let components: BTreeSet<&str> = own.iter().map(|f| f.component.as_str()).collect();
    let packages = design
        .components
        .iter()
        .filter(|c| components.contains(c.name.as_str()))
        .flat_map(|c| c.packages.iter().chain(&c.dev_packages))
        .map(|(name, range)| format!("{name}@{range}"))
        .collect();
    PromptPlan {
        files: own.into_iter().map(shown).collect(),
        imports,
        packages,
    }
}

/// The upstream files the task's prompt shows in full when it has a plan: its own (an
/// earlier version), those they import, those its findings name. Reviews and tasks
/// without a plan see every file.
pub(crate) fn relevant_paths(
    input: &TaskInput,
    plan: Option<&PromptPlan>,
) -> Option<BTreeSet<String>> {
    let plan = plan?;
    if guild_core::is_review_kind(&input.kind) {
        return None;
    }
    Some(
        plan.files
            .iter()
            .chain(&plan.imports)
            .map(|f| f.path.clone())
            .chain(input.context.findings.iter().map(|f| f.file.clone()))
            .collect(),
    )
}
