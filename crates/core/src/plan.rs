//! Task graphs: the checks that make a graph runnable, its phases and its critical path.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::AgentKind;

/// One task of a graph, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique within its project, e.g. `database_schema`.
    pub key: String,
    /// The task type, which picks the prompt template (the key, for template tasks).
    pub kind: String,
    /// The agent that runs it.
    pub agent: AgentKind,
    /// What the task must produce, in a sentence.
    pub description: String,
    /// Keys of the tasks that must complete first.
    pub depends_on: Vec<String>,
    /// Lower runs first among ready tasks.
    pub priority: i16,
    /// A failed critical task fails the whole project.
    pub critical: bool,
    /// The planner's estimate, used for the plan's durations.
    pub estimated_minutes: u32,
    /// Attempts this task gets before it fails for good; `None`: the project's.
    pub max_attempts: Option<u16>,
}

/// Why a graph cannot be run. Each variant names the offending keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the graph has no tasks")]
    Empty,
    #[error("invalid task keys (use 1 to 64 of a-z, 0-9, _): {}", .0.join(", "))]
    InvalidKeys(Vec<String>),
    #[error("duplicate task keys: {}", .0.join(", "))]
    DuplicateKeys(Vec<String>),
    #[error("tasks depend on themselves: {}", .0.join(", "))]
    SelfDependencies(Vec<String>),
    #[error("unknown dependencies: {}", format_edges(.0))]
    UnknownDependencies(Vec<(String, String)>),
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

fn format_edges(edges: &[(String, String)]) -> String {
    edges
        .iter()
        .map(|(task, dependency)| format!("{task} -> {dependency}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PlanError {
    /// The keys this error is about, each once, for clients that highlight them.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = match self {
            Self::Empty => Vec::new(),
            Self::InvalidKeys(keys)
            | Self::DuplicateKeys(keys)
            | Self::SelfDependencies(keys)
            | Self::Cycle(keys) => keys.clone(),
            Self::UnknownDependencies(edges) => edges
                .iter()
                .flat_map(|(t, d)| [t.clone(), d.clone()])
                .collect(),
        };
        let mut seen = HashSet::new();
        keys.retain(|key| seen.insert(key.clone()));
        keys
    }
}

/// Everything that keeps a graph from running, found in one pass: a client fixes them
/// all at once rather than one per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl PlanErrors {
    /// Each problem, in the order the checks found them.
    pub fn problems(&self) -> &[PlanError] {
        &self.0
    }
}

impl std::fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let texts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&texts.join("; "))
    }
}

impl std::error::Error for PlanErrors {}

/// A checked task graph: every dependency exists, no key repeats, no cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    tasks: Vec<TaskSpec>,
    /// The workflow template it was planned from; `None` for a custom workflow.
    #[serde(skip)]
    template: Option<crate::ProjectType>,
    phases: Vec<Vec<String>>,
    total_minutes: u32,
    critical_path: Vec<String>,
    critical_path_minutes: u32,
}

impl Plan {
    /// Checks the graph and computes its phases and critical path. Every problem found is
    /// reported; a cycle is looked for unless keys repeat (then edges are ambiguous).
    pub fn new(tasks: Vec<TaskSpec>) -> Result<Self, PlanErrors> {
        if tasks.is_empty() {
            return Err(PlanErrors(vec![PlanError::Empty]));
        }
        let mut problems: Vec<PlanError> = [
            invalid_keys(&tasks),
            duplicate_keys(&tasks),
            self_dependencies(&tasks),
            unknown_dependencies(&tasks),
        ]
        .into_iter()
        .flatten()
        .collect();
        let duplicated = problems
            .iter()
            .any(|p| matches!(p, PlanError::DuplicateKeys(_)));
        let order = if duplicated {
            None
        } else {
            match topological_order(&tasks) {
                Ok(order) => Some(order),
                Err(cycle) => {
                    problems.push(cycle);
                    None
                }
            }
        };
        let order = match order {
            Some(order) if problems.is_empty() => order,
            _ => return Err(PlanErrors(problems)),
        };

        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key.as_str(), i))
            .collect();
        // level = longest chain of dependencies; finish = longest weighted chain ending here.
        let mut level = vec![0usize; tasks.len()];
        let mut finish = vec![0u32; tasks.len()];
        let mut via: Vec<Option<usize>> = vec![None; tasks.len()];
        for &i in &order {
            let mut start = 0;
            for dep in &tasks[i].depends_on {
                let d = index[dep.as_str()];
                level[i] = level[i].max(level[d] + 1);
                if via[i].is_none() || finish[d] > start {
                    start = finish[d];
                    via[i] = Some(d);
                }
            }
            finish[i] = start + tasks[i].estimated_minutes;
        }

        let phase_count = level.iter().max().map_or(0, |m| m + 1);
        let mut phases = vec![Vec::new(); phase_count];
        for &i in &order {
            phases[level[i]].push(tasks[i].key.clone());
        }

        let mut end = (0..tasks.len()).max_by_key(|&i| (finish[i], std::cmp::Reverse(i)));
        let critical_path_minutes = end.map_or(0, |i| finish[i]);
        let mut critical_path = Vec::new();
        while let Some(i) = end {
            critical_path.push(tasks[i].key.clone());
            end = via[i];
        }
        critical_path.reverse();

        let total_minutes = tasks.iter().map(|t| t.estimated_minutes).sum();
        Ok(Self {
            tasks,
            template: None,
            phases,
            total_minutes,
            critical_path,
            critical_path_minutes,
        })
    }

    /// The same plan, as the template of `project_type`.
    pub(crate) fn planned_from(mut self, project_type: crate::ProjectType) -> Self {
        self.template = Some(project_type);
        self
    }

    /// The same graph without the task `key`: its dependents depend on its dependencies
    /// instead. The plan itself when it has no such task.
    pub fn without(&self, key: &str) -> Self {
        let Some(removed) = self.tasks.iter().find(|t| t.key == key) else {
            return self.clone();
        };
        let tasks = self
            .tasks
            .iter()
            .filter(|t| t.key != key)
            .map(|t| {
                let mut task = t.clone();
                if task.depends_on.iter().any(|d| d == key) {
                    task.depends_on.retain(|d| d != key);
                    for inherited in &removed.depends_on {
                        if !task.depends_on.contains(inherited) {
                            task.depends_on.push(inherited.clone());
                        }
                    }
                }
                task
            })
            .collect();
        let mut plan = Self::new(tasks).expect("removing a task keeps a graph valid");
        plan.template = self.template;
        plan
    }

    /// The workflow template it was planned from; `None` for a custom workflow.
    pub fn template(&self) -> Option<crate::ProjectType> {
        self.template
    }

    /// The tasks, in the order they were given.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// The topological levels: phase `n` holds the tasks whose longest chain of
    /// dependencies has `n` links. Every task of a phase can run in parallel.
    pub fn phases(&self) -> &[Vec<String>] {
        &self.phases
    }

    /// The sum of all estimates: the duration with one agent doing everything.
    pub fn total_minutes(&self) -> u32 {
        self.total_minutes
    }

    /// The longest chain of estimates: the duration with unlimited agents.
    pub fn critical_path_minutes(&self) -> u32 {
        self.critical_path_minutes
    }

    /// The keys along the critical path, first to last.
    pub fn critical_path(&self) -> &[String] {
        &self.critical_path
    }
}

/// Whether `key` may name a task (and a task type): 1 to 64 of `a-z`, `0-9`, `_`.
pub fn is_valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn invalid_keys(tasks: &[TaskSpec]) -> Option<PlanError> {
    let invalid: Vec<String> = tasks
        .iter()
        .filter(|t| !is_valid_key(&t.key))
        .map(|t| t.key.clone())
        .collect();
    (!invalid.is_empty()).then_some(PlanError::InvalidKeys(invalid))
}

fn duplicate_keys(tasks: &[TaskSpec]) -> Option<PlanError> {
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        if !seen.insert(task.key.as_str()) && !duplicates.contains(&task.key) {
            duplicates.push(task.key.clone());
        }
    }
    (!duplicates.is_empty()).then_some(PlanError::DuplicateKeys(duplicates))
}

fn self_dependencies(tasks: &[TaskSpec]) -> Option<PlanError> {
    let self_dependent: Vec<String> = tasks
        .iter()
        .filter(|t| t.depends_on.contains(&t.key))
        .map(|t| t.key.clone())
        .collect();
    (!self_dependent.is_empty()).then_some(PlanError::SelfDependencies(self_dependent))
}

fn unknown_dependencies(tasks: &[TaskSpec]) -> Option<PlanError> {
    let keys: HashSet<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
    let unknown: Vec<(String, String)> = tasks
        .iter()
        .flat_map(|t| {
            t.depends_on
                .iter()
                .filter(|d| !keys.contains(d.as_str()))
                .map(|d| (t.key.clone(), d.clone()))
        })
        .collect();
    (!unknown.is_empty()).then_some(PlanError::UnknownDependencies(unknown))
}

/// Depth-first topological sort (dependencies before dependents); on a back edge it
/// returns the cycle as a path that starts and ends with the same key. Edges to unknown
/// keys and to the task itself are left out (they are reported on their own).
fn topological_order(tasks: &[TaskSpec]) -> Result<Vec<usize>, PlanError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let mut marks = vec![Mark::New; tasks.len()];
    let mut order = Vec::with_capacity(tasks.len());

    for root in 0..tasks.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Stack of (task, next dependency to visit); the stack is also the current path.
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::OnStack;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &tasks[node].depends_on;
            if *next < deps.len() {
                let dep = index.get(deps[*next].as_str()).copied();
                *next += 1;
                let Some(dep) = dep.filter(|&d| d != node) else {
                    continue;
                };
                match marks[dep] {
                    Mark::New => {
                        marks[dep] = Mark::OnStack;
                        stack.push((dep, 0));
                    }
                    Mark::OnStack => {
                        let start = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        // The path runs dependent -> dependency; print it that way round.
                        let mut cycle: Vec<String> = stack[start..]
                            .iter()
                            .map(|&(n, _)| tasks[n].key.clone())
                            .collect();
                        cycle.push(tasks[dep].key.clone());
                        return Err(PlanError::Cycle(cycle));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, deps: &[&str], minutes: u32) -> TaskSpec {
        TaskSpec {
            key: key.into(),
            kind: key.into(),
            agent: AgentKind::Backend,
            description: format!("do {key}"),
            depends_on: deps.iter().map(std::string::ToString::to_string).collect(),
            priority: 1,
            critical: false,
            estimated_minutes: minutes,
            max_attempts: None,
        }
    }

    #[test]
    fn empty_graph_is_rejected() {
        assert_eq!(Plan::new(vec![]), Err(PlanErrors(vec![PlanError::Empty])));
    }

    #[test]
    fn duplicate_keys_are_named_once_each() {
        let err = Plan::new(vec![
            task("a", &[], 1),
            task("a", &[], 1),
            task("a", &[], 1),
        ])
        .unwrap_err();
        assert_eq!(err.0, [PlanError::DuplicateKeys(vec!["a".into()])]);
    }

    #[test]
    fn invalid_keys_are_named() {
        let err = Plan::new(vec![task("Bad Key", &[], 1), task("", &[], 1)]).unwrap_err();
        assert_eq!(
            err.0,
            [PlanError::InvalidKeys(vec!["Bad Key".into(), "".into()])]
        );
    }

    #[test]
    fn self_dependency_is_named() {
        let err = Plan::new(vec![task("a", &["a"], 1)]).unwrap_err();
        assert_eq!(err.0, [PlanError::SelfDependencies(vec!["a".into()])]);
    }

    #[test]
    fn unknown_dependency_names_task_and_dependency() {
        let err = Plan::new(vec![task("a", &[], 1), task("b", &["a", "zzz"], 1)]).unwrap_err();
        assert_eq!(
            err.0,
            [PlanError::UnknownDependencies(vec![(
                "b".into(),
                "zzz".into()
            )])]
        );
        assert_eq!(err.to_string(), "unknown dependencies: b -> zzz");
    }

    #[test]
    fn cycle_reports_its_path() {
        let err = Plan::new(vec![
            task("start", &[], 1),
            task("a", &["start", "c"], 1),
            task("b", &["a"], 1),
            task("c", &["b"], 1),
        ])
        .unwrap_err();
        assert_eq!(
            err.0,
            [PlanError::Cycle(vec![
                "a".into(),
                "c".into(),
                "b".into(),
                "a".into()
            ])]
        );
        assert_eq!(err.to_string(), "dependency cycle: a -> c -> b -> a");
        // Each key once, for clients that highlight them.
        assert_eq!(err.0[0].keys(), ["a", "c", "b"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Plan::new(vec![
            task("a", &["a", "ghost"], 1),
            task("b", &["c"], 1),
            task("c", &["b"], 1),
            task("Bad", &[], 1),
        ])
        .unwrap_err();
        assert_eq!(
            err.0,
            [
                PlanError::InvalidKeys(vec!["Bad".into()]),
                PlanError::SelfDependencies(vec!["a".into()]),
                PlanError::UnknownDependencies(vec![("a".into(), "ghost".into())]),
                PlanError::Cycle(vec!["b".into(), "c".into(), "b".into()]),
            ]
        );
        assert_eq!(
            err.to_string(),
            "invalid task keys (use 1 to 64 of a-z, 0-9, _): Bad; tasks depend on themselves: a; \
             unknown dependencies: a -> ghost; dependency cycle: b -> c -> b"
        );
    }

    #[test]
    fn phases_are_topological_levels_not_priorities() {
        // `late` has the best priority number but depends on a chain of two.
        let mut late = task("late", &["mid"], 5);
        late.priority = 0;
        let plan = Plan::new(vec![
            late,
            task("root", &[], 10),
            task("mid", &["root"], 20),
            task("side", &["root"], 1),
        ])
        .expect("valid plan");
        assert_eq!(
            plan.phases(),
            &[
                vec!["root".to_string()],
                vec!["mid".to_string(), "side".to_string()],
                vec!["late".to_string()]
            ]
        );
    }

    #[test]
    fn critical_path_is_the_longest_weighted_chain() {
        let plan = Plan::new(vec![
            task("a", &[], 10),
            task("b", &["a"], 50),
            task("c", &["a"], 5),
            task("d", &["b", "c"], 1),
            task("e", &[], 30),
        ])
        .expect("valid plan");
        assert_eq!(plan.total_minutes(), 96);
        assert_eq!(plan.critical_path_minutes(), 61);
        assert_eq!(plan.critical_path(), ["a", "b", "d"]);
    }
}
