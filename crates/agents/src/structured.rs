//! Answers that are one JSON value: finding it in whatever the model wrote around it, and
//! asking again with the exact error until it is usable or the attempts run out.

use guild_llm::Message;
use serde_json::Value;

use crate::prompts::RenderedPrompt;
use crate::{AgentError, Agents, ModelCall, TaskInput};

/// The first JSON object of an answer: from a fenced `json` block when one parses, else
/// from the first `{` that starts a balanced object that parses.
pub(crate) fn first_json_object(answer: &str) -> Result<Value, String> {
    let parse = |text: &str| -> Option<Value> {
        serde_json::from_str::<Value>(text)
            .or_else(|_| serde_json::from_str(&remove_trailing_commas(text)))
            .ok()
            .filter(Value::is_object)
    };
    let fenced = crate::blocks::parse_answer(answer)
        .blocks
        .into_iter()
        .filter(|b| {
            b.language
                .as_deref()
                .is_none_or(|l| l.eq_ignore_ascii_case("json"))
        });
    for block in fenced {
        if let Some(value) = parse(block.content.trim()) {
            return Ok(value);
        }
    }
    let mut first_error = None;
    for (start, _) in answer.match_indices('{') {
        let Some(end) = balanced_end(&answer[start..]) else {
            continue;
        };
        let candidate = &answer[start..start + end];
        if let Some(value) = parse(candidate) {
            return Ok(value);
        }
        if first_error.is_none() {
            first_error = serde_json::from_str::<Value>(candidate).err();
        }
    }
    Err(match first_error {
        Some(error) => format!("not valid JSON: {error}"),
        None => "not valid JSON: the answer holds no complete JSON object".to_owned(),
    })
}

/// The length of the balanced `{ … }` that `text` starts with, braces inside strings
/// not counted; `None` when it never closes.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes commas directly before `}` or `]`, outside strings.
fn remove_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|n| !n.is_whitespace());
            if matches!(next, Some('}' | ']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Asks for a JSON answer until `parse` accepts one: each unusable answer is answered with
/// its exact problem (a cut answer: asked to be more concise), at most
/// `analysis_attempts` calls. Returns what `parse` made of the answer, and the calls.
pub(crate) async fn ask<T>(
    agents: &Agents,
    input: &TaskInput,
    prompt: &RenderedPrompt,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, Vec<ModelCall>), AgentError> {
    let mut calls = Vec::new();
    let mut messages = vec![Message::user(prompt.message())];
    let attempts = agents.settings.analysis_attempts.max(1);
    let mut last_error = String::new();
    let mut last_answer = String::new();
    for _ in 0..attempts {
        let request = agents.request(input, prompt, messages.clone(), true);
        let response = match agents
            .call(input, &request, &prompt.version, &mut calls)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(AgentError::call(error, calls)),
        };
        let cut = response.stop_reason.is_cut();
        // A cut answer that parses is a shortened one: asked again all the same.
        let error = match parse(&response.content) {
            Ok(value) if !cut => return Ok((value, calls)),
            _ if cut => format!(
                "the answer was cut off at the length limit ({} tokens) before the object ended",
                request.max_tokens
            ),
            Err(error) => error,
            Ok(_) => unreachable!("a complete valid answer returned above"),
        };
        let ask = if cut {
            "Answer again with the whole JSON object, more concisely: shorter descriptions and fewer items."
        } else {
            "Answer again with only the corrected JSON object."
        };
        messages.push(Message::assistant(response.content.clone()));
        messages.push(Message::user(format!(
            "That answer cannot be used: {error}. {ask}"
        )));
        last_error = error;
        last_answer = response.content;
    }
    Err(AgentError::unusable(
        format!("the {what} was not valid after {attempts} attempts: {last_error}"),
        calls,
        last_answer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_inside_strings_are_kept() {
        assert_eq!(
            remove_trailing_commas(r#"{"a": "x,}", "b": [1,],}"#),
            r#"{"a": "x,}", "b": [1]}"#
        );
    }
}
