//! The code-writing agents: render the task's prompt within the context budget, call the
//! model, turn the answer's code blocks into validated files, and ask again with the exact
//! errors while files fail validation (at most `repair_rounds` times).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use guild_core::{FIX_FINDINGS, Finding, is_review_kind, parse_findings};
use guild_design::{Design, Nonconformity, NonconformityKind, WrittenFile};
use guild_llm::Message;

use crate::blocks::{CodeBlock, parse_answer};
use crate::context::{design_of, relevant_paths};
use crate::files::{GeneratedFile, files_from_blocks, language_of};
use crate::prompts::{PromptContext, PromptFile, RenderedPrompt, fence_for};
use crate::{AgentError, AgentOutcome, Agents, RejectedFile, TaskInput, UpstreamFile};
use guild_core::paths::safe_path;

/// What a task's files are held to: its project's design, as the task's owner (a fix task
/// may rewrite any planned file), beside the files already written.
struct PlanCheck {
    design: Design,
    owner: Option<String>,
    existing: BTreeSet<String>,
}

impl PlanCheck {
    /// The check of `input`'s files, when its project has a design that plans something
    /// for it (or it fixes findings).
    fn of(input: &TaskInput) -> Option<Self> {
        let design = design_of(input)?;
        let fixing = input.kind == FIX_FINDINGS;
        let owner = guild_core::change::base_key(&input.key);
        if !fixing && design.files_of(owner).next().is_none() {
            return None;
        }
        Some(Self {
            owner: (!fixing).then(|| owner.to_owned()),
            existing: input.context.files.iter().map(|f| f.path.clone()).collect(),
            design,
        })
    }

    fn check(&self, files: &[&GeneratedFile]) -> Vec<Nonconformity> {
        let interfaces: Vec<Option<guild_validate::Interface>> = files
            .iter()
            .map(|f| guild_validate::interface(language_of(&f.path), &f.content))
            .collect();
        let written: Vec<WrittenFile<'_>> = files
            .iter()
            .zip(&interfaces)
            .map(|(f, interface)| WrittenFile {
                path: &f.path,
                content: &f.content,
                exports: interface.as_ref().map(|i| i.exports.clone()),
                imports: interface.as_ref().map(|i| i.imports.clone()),
            })
            .collect();
        let existing: BTreeSet<&str> = self.existing.iter().map(String::as_str).collect();
        self.design
            .conformance(self.owner.as_deref(), &written, &existing)
    }
}

/// Times a cut answer (the model hit its length limit) is continued in the same
/// conversation before what it left unfinished is kept, marked as cut off.
const MAX_CONTINUATIONS: u32 = 2;

pub(crate) async fn run(agents: &Agents, input: &TaskInput) -> Result<AgentOutcome, AgentError> {
    let prompt = render_within_budget(agents, input)?;
    let review = is_review_kind(&input.kind);
    let plan = PlanCheck::of(input);
    let mut calls = Vec::new();
    let mut messages = vec![Message::user(prompt.message())];
    let mut collected = Collected::default();
    let mut rounds = 0;
    let mut continuations = 0;
    loop {
        let request = agents.request(input, &prompt, messages.clone(), false);
        let response = match agents
            .call(input, &request, &prompt.version, &mut calls)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(AgentError::call(error, calls)),
        };
        let answer = parse_answer(&response.content);
        let cut = response.stop_reason.is_cut();
        let continuing = cut && continuations < MAX_CONTINUATIONS;
        let unfinished = collected.take(answer, &response.model, rounds, cut, continuing);
        if continuing {
            continuations += 1;
            messages.push(Message::assistant(response.content));
            messages.push(Message::user(continue_request(unfinished.as_deref())));
            continue;
        }
        let mut problems = plan
            .as_ref()
            .map(|p| collected.drop_unplanned(p))
            .unwrap_or_default();
        problems.extend(collected.problems(review, plan.as_ref()));
        if problems.is_empty() || rounds >= agents.settings.repair_rounds {
            if collected.latest.is_empty() && collected.findings.is_none() {
                return Err(AgentError::unusable(
                    format!(
                        "the answer contained no usable file ({} block(s) refused)",
                        collected.rejected.len()
                    ),
                    calls,
                    response.content,
                ));
            }
            if let Some(plan) = &plan {
                collected.hold_to(plan);
            }
            collected.drop_unchanged(&input.context.files);
            return Ok(collected.outcome(calls, prompt.version, rounds, problems));
        }
        rounds += 1;
        messages.push(Message::assistant(response.content));
        messages.push(Message::user(repair_request(&problems)));
    }
}

/// What the answers of a task held so far.
#[derive(Default)]
struct Collected {
    /// Every version the answers held, in order; `latest` indexes the last one per path.
    files: Vec<GeneratedFile>,
    latest: BTreeMap<String, usize>,
    rejected: Vec<RejectedFile>,
    summary: Option<String>,
    findings: Option<Vec<Finding>>,
    findings_error: Option<String>,
    /// Files left unfinished by an answer cut at the length limit, as kept.
    cut_off: Vec<String>,
}

impl Collected {
    /// Takes an answer's files and findings. When the answer was `cut`, its last block may
    /// be unfinished: it is left out when the model is asked to `continue`, and otherwise
    /// kept marked as cut off. Returns the unfinished file's path.
    fn take(
        &mut self,
        answer: crate::blocks::Answer,
        model: &str,
        round: u32,
        cut: bool,
        continuing: bool,
    ) -> Option<String> {
        self.summary.get_or_insert(answer.summary);
        let (findings_blocks, mut blocks): (Vec<CodeBlock>, Vec<CodeBlock>) =
            answer.blocks.into_iter().partition(|b| b.findings);
        let unfinished = blocks
            .last()
            .filter(|b| cut && !b.closed)
            .and_then(|b| b.path.clone());
        if unfinished.is_some() && continuing {
            blocks.pop();
        }
        let (written, refused) = files_from_blocks(blocks);
        self.rejected.extend(refused);
        for mut file in written {
            if unfinished
                .as_deref()
                .is_some_and(|p| safe_path(p).ok().as_deref() == Some(&file.path))
            {
                file.validation
                    .mark_cut_off(file.content.lines().count().max(1));
                self.cut_off.push(file.path.clone());
            }
            // A file repeated unchanged is the same version.
            if self
                .latest
                .get(&file.path)
                .is_some_and(|&i| self.files[i].sha256 == file.sha256)
            {
                continue;
            }
            file.repair_round = round;
            file.model = model.to_owned();
            self.latest.insert(file.path.clone(), self.files.len());
            self.files.push(file);
        }
        match read_findings(&findings_blocks) {
            Ok(Some(found)) => {
                self.findings = Some(found);
                self.findings_error = None;
            }
            Ok(None) => {}
            Err(error) => self.findings_error = Some(error),
        }
        unfinished
    }

    /// The latest version of each file.
    fn current(&self) -> Vec<&GeneratedFile> {
        self.latest.values().map(|&i| &self.files[i]).collect()
    }

    /// Drops the files the design does not plan for the task (they are reported as
    /// refused, and never stored: a model cannot take a file back) and says why, for the
    /// model to put that code where the plan says.
    fn drop_unplanned(&mut self, plan: &PlanCheck) -> Vec<String> {
        let unplanned: Vec<Nonconformity> = plan
            .check(&self.current())
            .into_iter()
            .filter(|p| p.kind == NonconformityKind::Unplanned)
            .collect();
        for problem in &unplanned {
            self.files.retain(|f| f.path != problem.path);
            self.rejected.push(RejectedFile {
                path: Some(problem.path.clone()),
                reason: problem.message.clone(),
            });
        }
        self.latest = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        unplanned.into_iter().map(|p| p.message).collect()
    }

    /// Leaves out files written again exactly as their latest version already is: a
    /// change's task rewrites its files whole, and those the change does not touch must
    /// not become new versions.
    fn drop_unchanged(&mut self, upstream: &[UpstreamFile]) {
        let unchanged: Vec<String> = self
            .current()
            .iter()
            .filter(|f| {
                upstream
                    .iter()
                    .any(|u| u.path == f.path && u.content == f.content)
            })
            .map(|f| f.path.clone())
            .collect();
        if unchanged.is_empty() {
            return;
        }
        self.files.retain(|f| !unchanged.contains(&f.path));
        self.latest = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
    }

    /// Holds the final files to the design: one whose interface departs from it is kept,
    /// invalid, with the design's problems.
    fn hold_to(&mut self, plan: &PlanCheck) {
        for problem in plan.check(&self.current()) {
            if problem.kind == NonconformityKind::Interface
                && let Some(&index) = self.latest.get(&problem.path)
            {
                self.files[index]
                    .validation
                    .add_problems("design", [problem.message]);
            }
        }
    }

    /// What is wrong with the files as they stand: invalid files, files that depart from
    /// the design, no usable file at all, a review's missing or unreadable findings.
    fn problems(&self, review: bool, plan: Option<&PlanCheck>) -> Vec<String> {
        let mut problems: Vec<String> = self
            .latest
            .values()
            .map(|&i| &self.files[i])
            .filter(|f| f.validation.is_invalid())
            .map(|f| {
                format!(
                    "`{}` failed {}:\n{}",
                    f.path,
                    f.validation.checker.as_deref().unwrap_or("validation"),
                    f.validation.describe()
                )
            })
            .collect();
        if let Some(plan) = plan {
            problems.extend(
                plan.check(&self.current())
                    .into_iter()
                    .filter(|p| p.kind != NonconformityKind::Unplanned)
                    .map(|p| p.message),
            );
        }
        if self.latest.is_empty() && !review {
            problems.push(self.no_file_problem());
        }
        if review {
            match (&self.findings, &self.findings_error) {
                (_, Some(error)) => {
                    problems.push(format!("the findings block cannot be used: {error}"));
                }
                (None, None) => problems.push(
                    "the findings block is missing: end the answer with a ```json findings block (an empty list when nothing was found)".to_owned(),
                ),
                (Some(_), None) => {}
            }
        }
        problems
    }

    /// Why the answers gave no file, for the model to act on.
    fn no_file_problem(&self) -> String {
        if self.rejected.is_empty() {
            return "your answer has no file: give each file as a fenced code block whose info \
                    string is the language and `path=` with the file's path, e.g. \
                    ```typescript path=backend/src/app.ts"
                .to_owned();
        }
        let reasons: Vec<String> = self
            .rejected
            .iter()
            .map(|r| match &r.path {
                Some(path) => format!("`{path}`: {}", r.reason),
                None => format!("a block: {}", r.reason),
            })
            .collect();
        format!(
            "your answer has no usable file; every block was refused: {}",
            reasons.join("; ")
        )
    }

    fn outcome(
        self,
        calls: Vec<crate::ModelCall>,
        prompt_version: String,
        rounds: u32,
        mut unresolved: Vec<String>,
    ) -> AgentOutcome {
        let mut summary = self.summary.unwrap_or_default();
        let cut_off: Vec<String> = self
            .cut_off
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|path| {
                self.latest.get(path).is_some_and(|&i| {
                    self.files[i]
                        .validation
                        .errors
                        .iter()
                        .any(|e| e.message == guild_validate::CUT_OFF)
                })
            })
            .collect();
        if !cut_off.is_empty() {
            summary.push_str(&format!(
                " (The answer was cut off at the model's length limit: {} incomplete.)",
                cut_off.join(", ")
            ));
        }
        unresolved.retain(|p| !p.starts_with("your answer has no"));
        AgentOutcome {
            summary,
            files: self.files,
            rejected: self.rejected,
            requirements: None,
            design: None,
            verification: None,
            change: None,
            calls,
            prompt_version,
            findings: self.findings.unwrap_or_default(),
            repair_rounds: rounds,
            unresolved,
            cut_off,
        }
    }
}

/// The message that asks a cut answer to go on.
fn continue_request(unfinished: Option<&str>) -> String {
    match unfinished {
        Some(path) => format!(
            "Your answer was cut off at the length limit while writing `{path}`. Continue: give \
             `{path}` again whole, then the files you had not written yet, in the same format. \
             The complete files you already gave are kept."
        ),
        None => "Your answer was cut off at the length limit. Continue with the files you had \
                 not written yet, in the same format. The files you already gave are kept."
            .to_owned(),
    }
}

/// The message that asks for a repair, with the exact errors.
fn repair_request(problems: &[String]) -> String {
    format!(
        "Your answer cannot be used as it is:\n\n{}\n\nAnswer again, in the same format, with \
         every file named above corrected and given whole{}. Files you do not repeat keep the \
         version you already gave.",
        problems
            .iter()
            .map(|p| format!("- {p}"))
            .collect::<Vec<_>>()
            .join("\n"),
        if problems.iter().any(|p| p.contains("findings block")) {
            ", and end with the ```json findings block"
        } else {
            ""
        }
    )
}

/// The findings of an answer's `json findings` blocks (`None` when it has none), with
/// their paths made safe.
fn read_findings(blocks: &[CodeBlock]) -> Result<Option<Vec<Finding>>, String> {
    if blocks.is_empty() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for block in blocks {
        for mut finding in parse_findings(&block.content)? {
            finding.file = safe_path(&finding.file)
                .map_err(|e| format!("finding on `{}`: {e}", finding.file))?;
            all.push(finding);
        }
    }
    Ok(Some(all))
}

/// Characters a file's fence, path and note take beside its content.
const FILE_OVERHEAD: usize = 64;
/// Characters the files' section takes beside the files: its heading, its advice, and the
/// list of files left out.
const FILES_SECTION: usize = 400;
/// Characters of the note said before a trimmed file.
const TRIM_NOTE: usize = 160;
/// A file is trimmed only when at least this much of it fits; otherwise it is listed by
/// path alone.
const MIN_TRIMMED: usize = 800;

/// Renders the task's prompt so that system and user prompt together stay within the
/// context budget (in characters): the files the task must change come first, whole;
/// the others whole while they fit, then trimmed in the middle, then listed by path. The
/// requirements are compacted, then cut, when even the prompt without files is too long.
fn render_within_budget(agents: &Agents, input: &TaskInput) -> Result<RenderedPrompt, AgentError> {
    let budget = agents.settings.context_budget_chars;
    let mut context = PromptContext::of_task(input);
    let relevant = relevant_paths(input, context.plan.as_ref());
    let mut size = rendered_size(agents, input, &context)?;
    if size > budget {
        context.requirements = input
            .context
            .requirements
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default());
        size = rendered_size(agents, input, &context)?;
    }
    if size > budget
        && let Some(requirements) = context.requirements.take()
    {
        let keep = chars(&requirements).saturating_sub(size - budget + 40);
        let cut: String = requirements.chars().take(keep).collect();
        context.requirements = Some(format!("{cut}\n… (trimmed to fit the context budget)"));
        size = rendered_size(agents, input, &context)?;
    }
    if size > budget {
        // A description the API accepted always fits: its middle gives way last.
        let description: Vec<char> = context.description.chars().collect();
        let room = description.len().saturating_sub(size - budget + TRIM_NOTE);
        let head: String = description[..room * 2 / 3].iter().collect();
        let tail: String = description[description.len() - room / 3..].iter().collect();
        context.description = Cow::Owned(format!(
            "{head}\n… ({} characters of the description left out here to fit the context budget) …\n{tail}",
            description.len() - head.chars().count() - tail.chars().count()
        ));
        size = rendered_size(agents, input, &context)?;
    }
    if size > budget {
        return Err(AgentError::permanent(format!(
            "the task's prompt needs {size} characters before any file, over the context budget of {budget}"
        )));
    }

    let mut remaining = (budget - size).saturating_sub(FILES_SECTION);
    for file in files_by_need(&input.context.files, &input.context.findings) {
        // With a plan, a task sees in full only the files it owns, imports or fixes: the
        // design tells it the rest.
        if relevant.as_ref().is_some_and(|r| !r.contains(&file.path)) {
            context.omitted_files.push(&file.path);
            continue;
        }
        let note = file.validation.as_ref().map(|v| {
            let errors = v["errors"]
                .as_array()
                .map(std::vec::Vec::len)
                .unwrap_or_default();
            format!("this version failed validation with {errors} error(s)")
        });
        let cost = chars(&file.content) + chars(&file.path) + FILE_OVERHEAD;
        if cost <= remaining {
            remaining -= cost;
            context.files.push(PromptFile {
                fence: fence_for(&file.content),
                path: &file.path,
                language: language_of(&file.path).unwrap_or("text"),
                content: Cow::Borrowed(file.content.trim_end()),
                note,
            });
        } else if remaining >= MIN_TRIMMED + chars(&file.path) + FILE_OVERHEAD + TRIM_NOTE {
            let room = remaining - chars(&file.path) - FILE_OVERHEAD - TRIM_NOTE;
            let (content, left_out) = trim_middle(&file.content, room);
            remaining = remaining
                .saturating_sub(chars(&content) + chars(&file.path) + FILE_OVERHEAD + TRIM_NOTE);
            context.files.push(PromptFile {
                fence: fence_for(&content),
                path: &file.path,
                language: language_of(&file.path).unwrap_or("text"),
                content: Cow::Owned(content),
                note: Some(format!(
                    "trimmed to fit the context budget: {left_out} line(s) in the middle are left out; if you change this file, keep them"
                )),
            });
        } else {
            context.omitted_files.push(&file.path);
        }
    }
    // The estimate above is close; the rendered prompt decides.
    loop {
        let prompt = agents.render(input, &context)?;
        if prompt.chars() <= budget {
            return Ok(prompt);
        }
        match context.files.pop() {
            Some(file) => context.omitted_files.push(file.path),
            None => {
                return Err(AgentError::permanent(format!(
                    "the task's prompt does not fit the context budget of {budget} characters"
                )));
            }
        }
    }
}

fn rendered_size(
    agents: &Agents,
    input: &TaskInput,
    context: &PromptContext<'_>,
) -> Result<usize, AgentError> {
    Ok(agents.render(input, context)?.chars())
}

/// The files in the order they earn room: those the findings name (the task changes them),
/// then those that conflict or failed validation, then the rest, each group by path.
fn files_by_need<'a>(files: &'a [UpstreamFile], findings: &[Finding]) -> Vec<&'a UpstreamFile> {
    let mut ordered: Vec<&UpstreamFile> = files.iter().collect();
    ordered.sort_by_key(|f| {
        let named = findings.iter().any(|x| x.file == f.path);
        let flagged = f.conflict.is_some() || f.validation.is_some();
        (!named, !flagged, f.path.clone())
    });
    ordered
}

/// The length of `text` in characters: every limit the docs state in characters counts
/// characters, not UTF-8 bytes.
fn chars(text: &str) -> usize {
    text.chars().count()
}

/// The first and last lines of `content` within `room` characters, with a line saying how
/// many were left out between them; returns the text and that count.
fn trim_middle(content: &str, room: usize) -> (String, usize) {
    let lines: Vec<&str> = content.lines().collect();
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut used = 0;
    let (mut i, mut j) = (0, lines.len());
    // Two thirds of the room for the head, the rest for the tail.
    while i < j && used + chars(lines[i]) < room * 2 / 3 {
        used += chars(lines[i]) + 1;
        head.push(lines[i]);
        i += 1;
    }
    // The line saying what was left out takes its share.
    let room = room.saturating_sub(40);
    while j > i && used + chars(lines[j - 1]) < room {
        used += chars(lines[j - 1]) + 1;
        tail.push(lines[j - 1]);
        j -= 1;
    }
    tail.reverse();
    let left_out = j - i;
    let mut out = head.join("\n");
    out.push_str(&format!("\n… {left_out} line(s) left out …\n"));
    out.push_str(&tail.join("\n"));
    (out, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_the_ends_within_the_room() {
        let content: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        let (trimmed, left_out) = trim_middle(&content, 200);
        assert!(trimmed.len() <= 200 + 40, "{}", trimmed.len());
        assert!(trimmed.starts_with("line 1\nline 2\n"));
        assert!(trimmed.ends_with("line 99\nline 100"));
        assert!(left_out > 70);
        assert!(trimmed.contains(&format!("… {left_out} line(s) left out …")));
    }
}
