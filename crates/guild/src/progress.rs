//! Showing a run's progress: a bar per agent on a terminal, plain lines otherwise.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;

use guild_core::{AgentKind, Plan};
use guild_worker::WorkerEvent;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The view, and the tasks it counts: a task it has not seen (a fix task or re-review a
/// review added while the project ran) grows it.
pub struct Progress {
    view: View,
    known: HashSet<String>,
}

enum View {
    Bars {
        // Kept alive: dropping it would stop drawing.
        _multi: MultiProgress,
        bars: BTreeMap<AgentKind, ProgressBar>,
    },
    Lines {
        done: usize,
        total: usize,
    },
}

impl Progress {
    /// Bars when stdout is a terminal, lines when it is a pipe or a file.
    pub fn new(plan: &Plan) -> Self {
        Self {
            view: View::new(plan),
            known: plan.tasks().iter().map(|t| t.key.clone()).collect(),
        }
    }

    /// Lines only, counting tasks as they start: for a graph that grows as it runs (a
    /// change request's).
    pub fn growing() -> Self {
        Self {
            view: View::Lines { done: 0, total: 0 },
            known: HashSet::new(),
        }
    }

    pub fn update(&mut self, event: &WorkerEvent) {
        if let WorkerEvent::TaskStarted { agent, key, .. } = event
            && self.known.insert(key.clone())
        {
            match &mut self.view {
                View::Bars { bars, .. } => {
                    if let Some(bar) = bars.get(agent) {
                        bar.inc_length(1);
                    }
                }
                View::Lines { total, .. } => *total += 1,
            }
        }
        self.view.update(event);
    }

    pub fn finish(self) {
        self.view.finish();
    }
}

impl View {
    fn new(plan: &Plan) -> Self {
        let mut per_agent: BTreeMap<AgentKind, u64> = BTreeMap::new();
        for task in plan.tasks() {
            *per_agent.entry(task.agent).or_default() += 1;
        }
        if !std::io::stdout().is_terminal() {
            return Self::Lines {
                done: 0,
                total: plan.tasks().len(),
            };
        }
        let multi = MultiProgress::new();
        let style =
            ProgressStyle::with_template("{prefix:>9.bold} [{bar:24.cyan/blue}] {pos}/{len} {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
        let bars = per_agent
            .into_iter()
            .map(|(agent, count)| {
                let bar = multi.add(ProgressBar::new(count));
                bar.set_style(style.clone());
                bar.set_prefix(agent.as_str());
                (agent, bar)
            })
            .collect();
        Self::Bars {
            _multi: multi,
            bars,
        }
    }

    fn update(&mut self, event: &WorkerEvent) {
        match self {
            Self::Bars { bars, .. } => match event {
                WorkerEvent::TaskStarted { agent, key, .. } => {
                    if let Some(bar) = bars.get(agent) {
                        bar.set_message(format!("running {key}"));
                    }
                }
                WorkerEvent::TaskCompleted { agent, key, .. } => {
                    if let Some(bar) = bars.get(agent) {
                        bar.inc(1);
                        bar.set_message(format!("done {key}"));
                    }
                }
                WorkerEvent::TaskFailed {
                    agent,
                    key,
                    retrying,
                    ..
                } => {
                    if let Some(bar) = bars.get(agent) {
                        bar.set_message(if *retrying {
                            format!("retrying {key}")
                        } else {
                            format!("FAILED {key}")
                        });
                    }
                }
                WorkerEvent::TaskInterrupted { .. }
                | WorkerEvent::ResultDropped { .. }
                | WorkerEvent::ProjectFinished { .. } => {}
            },
            Self::Lines { done, total } => match event {
                WorkerEvent::TaskStarted {
                    agent,
                    key,
                    attempt,
                    ..
                } => {
                    let retry = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    say!("[{done:>3}/{total}] started   {agent}/{key}{retry}");
                }
                WorkerEvent::TaskCompleted {
                    agent,
                    key,
                    files_written,
                    duration,
                    ..
                } => {
                    *done += 1;
                    say!(
                        "[{done:>3}/{total}] completed {agent}/{key}: {files_written} file(s) in {} ms",
                        duration.as_millis()
                    );
                }
                WorkerEvent::TaskFailed {
                    agent,
                    key,
                    error,
                    retrying,
                    ..
                } => {
                    let what = if *retrying { "will retry" } else { "failed" };
                    say!("[{done:>3}/{total}] {what:<9} {agent}/{key}: {error}");
                }
                WorkerEvent::TaskInterrupted { key, .. }
                | WorkerEvent::ResultDropped { key, .. } => {
                    say!("[{done:>3}/{total}] dropped   {key}: it was cancelled while running");
                }
                WorkerEvent::ProjectFinished { .. } => {}
            },
        }
    }

    fn finish(self) {
        if let Self::Bars { bars, .. } = self {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}
