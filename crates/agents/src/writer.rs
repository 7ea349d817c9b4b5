//! The code-writing agents: render the task's prompt within the context budget, call the
//! model, and turn the answer's code blocks into files.

use guild_llm::Message;

use crate::blocks::parse_answer;
use crate::files::{files_from_blocks, language_of};
use crate::prompts::{PromptContext, PromptFile, PromptTask, PromptUpstream};
use crate::{AgentError, AgentOutcome, Agents, TaskInput};

pub(crate) async fn run(agents: &Agents, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
    let requirements = input
        .requirements
        .as_ref()
        .map(|r| serde_json::to_string_pretty(r).unwrap_or_default());
    let mut budget = agents.settings.context_budget_chars;
    let mut files = Vec::new();
    let mut omitted_files = Vec::new();
    for file in &input.files {
        if file.content.len() <= budget {
            budget -= file.content.len();
            files.push(PromptFile {
                path: &file.path,
                language: language_of(&file.path).unwrap_or("text"),
                content: file.content.trim_end(),
            });
        } else {
            omitted_files.push(file.path.as_str());
        }
    }
    let context = PromptContext {
        description: &input.description,
        project_type: input.project_type.as_str(),
        technology_stack: input.technology_stack.as_deref(),
        requirements,
        task: PromptTask {
            key: &input.key,
            kind: &input.kind,
            description: &input.task_description,
        },
        feedback: input.feedback.as_deref(),
        upstream: input
            .upstream
            .iter()
            .map(|u| PromptUpstream {
                key: &u.key,
                agent: &u.agent,
                summary: u.summary.as_deref(),
            })
            .collect(),
        files,
        omitted_files,
    };
    let prompt = agents.render(input, &context)?;

    let mut calls = Vec::new();
    let request = agents.request(
        input,
        prompt.system,
        vec![Message::user(prompt.user)],
        false,
    );
    let response = match agents.call(input, &request, &mut calls).await {
        Ok(response) => response,
        Err(error) => return Err(AgentError::call(error, calls)),
    };
    let answer = parse_answer(&response.content);
    let (files, rejected) = files_from_blocks(answer.blocks);
    if files.is_empty() {
        return Err(AgentError {
            message: format!(
                "the answer contained no usable file ({} block(s) refused)",
                rejected.len()
            ),
            retryable: true,
            calls,
            raw_answer: Some(response.content),
            stops_project: false,
        });
    }
    Ok(AgentOutcome {
        summary: answer.summary,
        files,
        rejected,
        requirements: None,
        calls,
        prompt_version: prompt.version,
    })
}
