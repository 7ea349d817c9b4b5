//! The design step: ask for the application's design as one JSON object, read it, check it
//! against the task graph (the contract parsed as OpenAPI 3.1, every planned file owned by
//! a task that codes, imports resolving within the plan, every operation owned), and ask
//! again with every problem until it passes or the attempts run out.

use guild_design::{Design, GraphTask};

use crate::prompts::PromptContext;
use crate::structured::{ask, first_json_object};
use crate::{AgentError, AgentOutcome, Agents, TaskInput};

/// Reads and checks a design answer against `graph`.
///
/// # Errors
///
/// What is wrong with it, every problem found, ready to send back to the model.
pub fn parse_design(answer: &str, graph: &[GraphTask<'_>]) -> Result<Design, String> {
    let design = Design::from_value(first_json_object(answer)?)?;
    design.check(graph).map_err(|problems| {
        format!(
            "{} problem(s) with the design:\n{}\n",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("- {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    Ok(design)
}

/// One line about a design, for the task's summary.
fn summarize(design: &Design) -> String {
    format!(
        "Designed {} contract operation(s), {} table(s), {} component(s) ({}) and a plan of {} file(s).",
        design.operations().map(|o| o.len()).unwrap_or_default(),
        design.data_model.tables.len(),
        design.components.len(),
        design
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        design.files.len()
    )
}

pub(crate) async fn run(agents: &Agents, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
    let context = PromptContext::of_task(input);
    let prompt = agents.render(input, &context)?;
    let graph: Vec<GraphTask<'_>> = input
        .context
        .graph
        .iter()
        .map(|t| GraphTask {
            key: &t.key,
            agent: t.agent,
        })
        .collect();
    let (design, calls) = ask(agents, input, &prompt, "design", |answer| {
        parse_design(answer, &graph)
    })
    .await?;
    Ok(AgentOutcome {
        summary: summarize(&design),
        design: Some(design.to_value()),
        calls,
        prompt_version: prompt.version,
        ..AgentOutcome::default()
    })
}
