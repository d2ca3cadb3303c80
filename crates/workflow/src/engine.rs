//! The process engine (流程引擎): pure, deterministic state transitions of one instance. No I/O:
//! the caller loads the instance, calls one action, and stores the result with the effects it
//! returns. A refused action leaves the instance untouched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    definition::{BlockIx, BranchRef, Candidate, MultiInstance, NodeIx, NodeKind, ProcessDefinition},
    error::EngineError,
};

/// Task number, unique within an instance.
pub type TaskId = u32;
/// Token number, unique within an instance.
pub type TokenId = u32;
/// Timer number, unique within an instance.
pub type TimerId = u32;

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Running (办理中).
    Running,
    /// Reached its end (办结).
    Completed,
    /// Stopped by an administrator or the owning slice (终止).
    Cancelled,
}

impl InstanceStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Running => "running",
            InstanceStatus::Completed => "completed",
            InstanceStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting to be done (待办).
    Open,
    /// Done (已办).
    Completed,
    /// Done, then taken back by its doer (已撤回).
    Withdrawn,
    /// Sent back to an earlier step (已退回).
    SentBack,
    /// Closed because its step was cancelled (by a send-back, withdraw or the instance ending).
    Cancelled,
    /// Closed by an interrupting boundary timer (超时).
    TimedOut,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Completed => "completed",
            TaskStatus::Withdrawn => "withdrawn",
            TaskStatus::SentBack => "sent_back",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::TimedOut => "timed_out",
        }
    }
}

/// A position of control in the process (a token at a user task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The node it rests at.
    pub node: NodeIx,
    /// The parallel branches it is in.
    pub path: Vec<BranchRef>,
}

/// Arrivals at the join of a parallel block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinState {
    /// Branches the fork started (all, for a parallel gateway).
    pub expected: BTreeSet<usize>,
    /// Branches that have arrived.
    pub arrived: BTreeSet<usize>,
}

/// One piece of work for one person (任务).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Number within the instance.
    pub id: TaskId,
    /// The user task node.
    pub node: NodeIx,
    /// The token it belongs to.
    pub token: TokenId,
    /// Status.
    pub status: TaskStatus,
    /// Who holds it; None while it waits in a queue to be claimed.
    pub assignee: Option<i64>,
    /// Units whose members may claim it.
    pub candidate_units: Vec<String>,
    /// Roles whose holders may claim it.
    pub candidate_roles: Vec<String>,
    /// For a co-signer's task (加签): the task it was added to.
    pub cosign_of: Option<TaskId>,
    /// Time limit in working days from creation.
    pub due_working_days: Option<u32>,
    /// Created (ms since epoch).
    pub created_at: i64,
    /// Someone claimed, transferred or added a co-signer: the step has started.
    pub touched: bool,
    /// Who finished it.
    pub completed_by: Option<i64>,
    /// When it was finished or closed.
    pub closed_at: Option<i64>,
    /// The doer's opinion (意见).
    pub opinion: Option<String>,
    /// Users it was transferred from (转办), oldest first.
    pub transferred_from: Vec<i64>,
}

/// A boundary timer waiting to fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The boundary event.
    pub node: NodeIx,
    /// The token at the task it is attached to.
    pub token: TokenId,
    /// Working days after `started_at`.
    pub working_days: u32,
    /// When the task started (ms).
    pub started_at: i64,
}

/// What completing a task did, kept so that its doer can take it back (撤回).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawRecord {
    /// Tokens the completion created.
    pub produced: Vec<TokenId>,
    /// A join arrival it made: (block, branch).
    pub arrival: Option<(BlockIx, usize)>,
    /// A join it fired, with the arrivals as they were before.
    pub fired: Vec<(BlockIx, usize, BTreeSet<usize>)>,
    /// The token of the completed task, with its path, to put back.
    pub token: Option<(NodeIx, Vec<BranchRef>)>,
}

/// One running or finished process instance (流程实例): everything the engine needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Status.
    pub status: InstanceStatus,
    /// Form data and decisions (流程变量).
    pub variables: Map<String, Value>,
    /// Live tokens.
    pub tokens: BTreeMap<TokenId, Token>,
    /// Every task ever created, open and closed.
    pub tasks: BTreeMap<TaskId, Task>,
    /// Join arrivals per block.
    pub joins: BTreeMap<BlockIx, JoinState>,
    /// Pending boundary timers.
    pub timers: BTreeMap<TimerId, Timer>,
    /// Withdraw records by completed task.
    pub withdrawable: BTreeMap<TaskId, WithdrawRecord>,
    /// Who started it.
    pub started_by: i64,
    /// When it started (ms).
    pub started_at: i64,
    /// When it ended (ms).
    pub ended_at: Option<i64>,
    next_id: u32,
}

/// A change the caller must persist or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A new task.
    TaskCreated(TaskId),
    /// A task changed (claimed, transferred, closed…).
    TaskChanged(TaskId),
    /// A boundary timer to schedule.
    TimerStarted(TimerId),
    /// A boundary timer no longer needed.
    TimerCancelled(TimerId),
    /// The instance reached its end.
    InstanceCompleted,
    /// The instance was cancelled.
    InstanceCancelled,
}

/// Who is acting: a user with their unit key (the unit id as text) and role names.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The user.
    pub user_id: i64,
    /// Keys of the user's units: unit ids as text, never names (names are not unique).
    pub units: &'a [String],
    /// Names or codes of the user's roles.
    pub roles: &'a [String],
}

/// Completing a task: opinion and data to merge into the instance.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The opinion (办理意见).
    pub opinion: Option<String>,
    /// Values for the instance's variables (e.g. `approved: true`).
    pub variables: Map<String, Value>,
}

const MAX_STEPS: usize = 10_000;
/// The most tasks one multi-instance step may make.
const MAX_INSTANCES: usize = 200;

/// Who a multi-instance task was for: candidate units, roles, and the doer when it had none.
type Party = (Vec<String>, Vec<String>, Option<i64>);

/// Outcome of a successful action: the changes to persist.
pub type Effects = Vec<Effect>;

struct Run<'d> {
    def: &'d ProcessDefinition,
    inst: Instance,
    effects: Effects,
    now: i64,
    steps: usize,
}

impl Instance {
    /// Starts an instance: the token leaves the start event and runs to the first tasks.
    pub fn start(
        def: &ProcessDefinition,
        variables: Map<String, Value>,
        started_by: i64,
        now: i64,
    ) -> Result<(Instance, Effects), EngineError> {
        let inst = Instance {
            status: InstanceStatus::Running,
            variables,
            tokens: BTreeMap::new(),
            tasks: BTreeMap::new(),
            joins: BTreeMap::new(),
            timers: BTreeMap::new(),
            withdrawable: BTreeMap::new(),
            started_by,
            started_at: now,
            ended_at: None,
            next_id: 1,
        };
        let mut run = Run { def, inst, effects: Vec::new(), now, steps: 0 };
        let mut rec = WithdrawRecord::default();
        run.leave(def.start, Vec::new(), &mut rec)?;
        run.finish();
        Ok((run.inst, run.effects))
    }

    /// Open tasks, in creation order.
    pub fn open_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(|t| t.status == TaskStatus::Open)
    }

    fn action(
        &mut self,
        def: &ProcessDefinition,
        now: i64,
        f: impl FnOnce(&mut Run) -> Result<(), EngineError>,
    ) -> Result<Effects, EngineError> {
        if self.status != InstanceStatus::Running {
            return Err(EngineError::InstanceEnded);
        }
        let mut run = Run { def, inst: self.clone(), effects: Vec::new(), now, steps: 0 };
        f(&mut run)?;
        run.finish();
        *self = run.inst;
        Ok(run.effects)
    }

    /// Claims a queue task (签收) for the actor, who must be in a candidate unit or role.
    pub fn claim(&mut self, def: &ProcessDefinition, task: TaskId, actor: Actor, now: i64) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            let t = run.open_task(task)?;
            if t.assignee.is_some() {
                return Err(EngineError::AlreadyClaimed);
            }
            if !may_claim(t, actor) {
                return Err(EngineError::NotAllowed);
            }
            let t = run.task_mut(task)?;
            t.assignee = Some(actor.user_id);
            t.touched = true;
            run.effects.push(Effect::TaskChanged(task));
            Ok(())
        })
    }

    /// Completes a task with an opinion and data (办理); the process moves on when every task at
    /// the step (the holder's and any co-signers') is done.
    pub fn complete(
        &mut self,
        def: &ProcessDefinition,
        task: TaskId,
        actor: Actor,
        done: Completion,
        now: i64,
    ) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            run.check_holder(task, actor)?;
            for (k, v) in done.variables {
                run.inst.variables.insert(k, v);
            }
            let t = run.task_mut(task)?;
            t.status = TaskStatus::Completed;
            t.completed_by = Some(actor.user_id);
            t.closed_at = Some(now);
            t.opinion = done.opinion;
            let token_id = t.token;
            run.effects.push(Effect::TaskChanged(task));
            let waiting = run.inst.tasks.values().any(|o| o.token == token_id && o.status == TaskStatus::Open);
            let mut rec = WithdrawRecord::default();
            if !waiting {
                let token = run.inst.tokens.remove(&token_id).ok_or(EngineError::TaskClosed)?;
                run.cancel_timers_of(token_id);
                rec.token = Some((token.node, token.path.clone()));
                run.leave(token.node, token.path, &mut rec)?;
            }
            run.inst.withdrawable.insert(task, rec);
            Ok(())
        })
    }

    /// Takes back one's own just-completed step (撤回) while the next step has not started.
    pub fn withdraw(&mut self, def: &ProcessDefinition, task: TaskId, actor: Actor, now: i64) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            let t = run.inst.tasks.get(&task).ok_or(EngineError::NoSuchTask)?.clone();
            if t.status != TaskStatus::Completed || t.completed_by != Some(actor.user_id) {
                return Err(EngineError::CannotWithdraw);
            }
            let rec = run.inst.withdrawable.remove(&task).ok_or(EngineError::CannotWithdraw)?;
            let Some((node, path)) = rec.token.clone() else {
                // The step still waits for co-signers: simply reopen the task.
                if !run.inst.tokens.contains_key(&t.token) {
                    return Err(EngineError::CannotWithdraw);
                }
                let t = run.task_mut(task)?;
                t.status = TaskStatus::Open;
                t.completed_by = None;
                t.closed_at = None;
                run.effects.push(Effect::TaskChanged(task));
                return Ok(());
            };
            run.undo_completion(&rec)?;
            let token = run.new_token(node, path);
            let created = run.create_task(token, node, Some(actor.user_id), None)?;
            run.start_timers(token, node);
            if let Some(tt) = run.inst.tasks.get_mut(&created) {
                tt.candidate_units = t.candidate_units.clone();
                tt.candidate_roles = t.candidate_roles.clone();
            }
            let t = run.task_mut(task)?;
            t.status = TaskStatus::Withdrawn;
            run.effects.push(Effect::TaskChanged(task));
            Ok(())
        })
    }

    /// Sends the step back to an earlier step of this instance (退回), to the person who did it.
    pub fn send_back(
        &mut self,
        def: &ProcessDefinition,
        task: TaskId,
        actor: Actor,
        target_node_id: &str,
        reason: Option<String>,
        now: i64,
    ) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            run.check_holder(task, actor)?;
            let target = def.node_by_id(target_node_id).ok_or(EngineError::NotAnEarlierStep)?;
            let t = run.inst.tasks[&task].clone();
            let earlier = run
                .inst
                .tasks
                .values()
                .filter(|x| x.node == target && x.cosign_of.is_none() && x.status == TaskStatus::Completed)
                .max_by_key(|x| x.id)
                .cloned();
            let Some(earlier) = earlier.filter(|_| target != t.node) else { return Err(EngineError::NotAnEarlierStep) };
            let redo = run.last_round(target, &earlier);
            let here = run.inst.tokens.get(&t.token).ok_or(EngineError::TaskClosed)?.path.clone();
            let there = def.paths[target].clone();
            let common = here.iter().zip(there.iter()).take_while(|(a, b)| a == b).count();
            if here.len() > common && there.len() > common {
                return Err(EngineError::AcrossBranches);
            }
            if here.len() > common {
                let block = here[common].block;
                run.cancel_block(&here[..common], block, task);
            } else {
                run.close_token(t.token, task, TaskStatus::SentBack);
            }
            if let Some(tt) = run.inst.tasks.get_mut(&task) {
                tt.opinion = reason;
                tt.completed_by = Some(actor.user_id);
            }
            for level in &there[common..] {
                let b = &def.blocks[level.block];
                let expected = run
                    .inst
                    .joins
                    .get(&level.block)
                    .map(|j| j.expected.clone())
                    .unwrap_or_else(|| (0..b.branches).collect::<BTreeSet<_>>());
                let mut arrived = expected.clone();
                arrived.remove(&level.branch);
                run.inst.joins.insert(level.block, JoinState { expected, arrived });
            }
            let token = run.new_token(target, there);
            for done in redo {
                let created = run.create_task(token, target, done.completed_by, None)?;
                if let Some(tt) = run.inst.tasks.get_mut(&created) {
                    tt.candidate_units = done.candidate_units;
                    tt.candidate_roles = done.candidate_roles;
                }
            }
            run.start_timers(token, target);
            Ok(())
        })
    }

    /// Hands the task to another user (转办).
    pub fn transfer(
        &mut self,
        def: &ProcessDefinition,
        task: TaskId,
        actor: Actor,
        to_user: i64,
        now: i64,
    ) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            run.check_holder(task, actor)?;
            if to_user == actor.user_id {
                return Err(EngineError::BadTarget);
            }
            let t = run.task_mut(task)?;
            t.assignee = Some(to_user);
            t.transferred_from.push(actor.user_id);
            t.touched = true;
            run.effects.push(Effect::TaskChanged(task));
            Ok(())
        })
    }

    /// Adds a co-signer (加签): another user must also complete this step before it moves on.
    pub fn add_cosigner(
        &mut self,
        def: &ProcessDefinition,
        task: TaskId,
        actor: Actor,
        user: i64,
        now: i64,
    ) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            run.check_holder(task, actor)?;
            let t = run.inst.tasks[&task].clone();
            if t.cosign_of.is_some() {
                return Err(EngineError::NotAllowed);
            }
            let already = run.inst.tasks.values().any(|o| o.token == t.token && o.status == TaskStatus::Open && o.assignee == Some(user));
            if already || user == actor.user_id {
                return Err(EngineError::BadTarget);
            }
            run.create_task(t.token, t.node, Some(user), Some(task))?;
            let holder = run.task_mut(task)?;
            holder.touched = true;
            run.effects.push(Effect::TaskChanged(task));
            Ok(())
        })
    }

    /// Fires a boundary timer whose time has come.
    pub fn fire_timer(&mut self, def: &ProcessDefinition, timer: TimerId, now: i64) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            let tm = run.inst.timers.remove(&timer).ok_or(EngineError::NoSuchTimer)?;
            run.effects.push(Effect::TimerCancelled(timer));
            let token = run.inst.tokens.get(&tm.token).cloned().ok_or(EngineError::NoSuchTimer)?;
            let NodeKind::BoundaryTimer { cancel_activity, .. } = def.nodes[tm.node].kind else { return Err(EngineError::NoSuchTimer) };
            if cancel_activity {
                run.close_token(tm.token, TaskId::MAX, TaskStatus::TimedOut);
            }
            let mut rec = WithdrawRecord::default();
            run.leave(tm.node, token.path, &mut rec)
        })
    }

    /// Stops the instance (终止): every open task is cancelled.
    pub fn cancel(&mut self, def: &ProcessDefinition, now: i64) -> Result<Effects, EngineError> {
        self.action(def, now, |run| {
            let tokens: Vec<TokenId> = run.inst.tokens.keys().copied().collect();
            for t in tokens {
                run.close_token(t, TaskId::MAX, TaskStatus::Cancelled);
            }
            run.inst.joins.clear();
            run.inst.status = InstanceStatus::Cancelled;
            run.inst.ended_at = Some(now);
            run.effects.push(Effect::InstanceCancelled);
            Ok(())
        })
    }

    /// Whether `actor` may claim or act on the task.
    pub fn may_act(&self, task: TaskId, actor: Actor) -> bool {
        self.tasks.get(&task).is_some_and(|t| {
            t.status == TaskStatus::Open && (t.assignee == Some(actor.user_id) || (t.assignee.is_none() && may_claim(t, actor)))
        })
    }
}

fn may_claim(t: &Task, actor: Actor) -> bool {
    t.candidate_units.iter().any(|u| actor.units.contains(u)) || t.candidate_roles.iter().any(|r| actor.roles.contains(r))
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Run<'_> {
    fn next_id(&mut self) -> u32 {
        let id = self.inst.next_id;
        self.inst.next_id += 1;
        id
    }

    fn open_task(&self, task: TaskId) -> Result<&Task, EngineError> {
        let t = self.inst.tasks.get(&task).ok_or(EngineError::NoSuchTask)?;
        if t.status != TaskStatus::Open {
            return Err(EngineError::TaskClosed);
        }
        Ok(t)
    }

    fn task_mut(&mut self, task: TaskId) -> Result<&mut Task, EngineError> {
        self.inst.tasks.get_mut(&task).ok_or(EngineError::NoSuchTask)
    }

    fn check_holder(&self, task: TaskId, actor: Actor) -> Result<(), EngineError> {
        let t = self.open_task(task)?;
        match t.assignee {
            Some(u) if u == actor.user_id => Ok(()),
            None if may_claim(t, actor) => Err(EngineError::NotClaimed),
            _ => Err(EngineError::NotAllowed),
        }
    }

    /// A candidate's value; `element` is a multi-instance task's own element, bound to its name.
    fn resolve(&self, c: &Candidate, element: Option<(&str, &Value)>) -> Option<String> {
        match c {
            Candidate::Literal(s) => Some(s.clone()),
            Candidate::Variable(v) if v == "starter" || v == "initiator" => Some(self.inst.started_by.to_string()),
            Candidate::Variable(v) => match element {
                Some((name, value)) if name == v => value_text(value),
                _ => self.inst.variables.get(v).and_then(value_text),
            },
        }
    }

    /// The elements of a multi-instance task's list: a JSON array or comma-separated text, each
    /// element once, in order.
    fn elements(&self, mi: &MultiInstance) -> Vec<Value> {
        let raw: Vec<Value> = match self.inst.variables.get(&mi.collection) {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::String(s)) => s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| Value::String(x.into())).collect(),
            Some(v @ Value::Number(_)) => vec![v.clone()],
            _ => Vec::new(),
        };
        let mut seen = BTreeSet::new();
        raw.into_iter().filter(|v| value_text(v).is_some_and(|t| seen.insert(t))).collect()
    }

    /// Creates the task(s) of a user task node for a token arriving there; false when a
    /// multi-instance step has nobody to do it and is skipped.
    fn create_step(&mut self, token: TokenId, node: NodeIx) -> Result<bool, EngineError> {
        let NodeKind::UserTask(spec) = &self.def.nodes[node].kind else { return Err(EngineError::NoSuchTask) };
        let Some(mi) = &spec.multi_instance else {
            self.create_task(token, node, None, None)?;
            return Ok(true);
        };
        let elements = self.elements(mi);
        if elements.len() > MAX_INSTANCES {
            return Err(EngineError::NoPathMatched(format!("{}: more than {MAX_INSTANCES} instances", self.def.nodes[node].id)));
        }
        for e in &elements {
            self.create_task_for(token, node, (None, None), Some((&mi.element_variable, e)))?;
        }
        Ok(!elements.is_empty())
    }

    /// The tasks to do again when the process is sent back to `node`: the latest completed one,
    /// or for a multi-instance step (会签) the latest of each of its instances (one per unit, role
    /// set, or doer when it was assigned to a person), so every party signs again.
    fn last_round(&self, node: NodeIx, latest: &Task) -> Vec<Task> {
        let NodeKind::UserTask(spec) = &self.def.nodes[node].kind else { return vec![latest.clone()] };
        if spec.multi_instance.is_none() {
            return vec![latest.clone()];
        }
        let mut by_party: BTreeMap<Party, Task> = BTreeMap::new();
        let done = self.inst.tasks.values().filter(|x| x.node == node && x.cosign_of.is_none() && x.status == TaskStatus::Completed);
        for x in done {
            let person = (x.candidate_units.is_empty() && x.candidate_roles.is_empty()).then_some(x.completed_by).flatten();
            by_party.insert((x.candidate_units.clone(), x.candidate_roles.clone(), person), x.clone());
        }
        let mut round: Vec<Task> = by_party.into_values().collect();
        round.sort_by_key(|x| x.id);
        round
    }

    fn new_token(&mut self, node: NodeIx, path: Vec<BranchRef>) -> TokenId {
        let id = self.next_id();
        self.inst.tokens.insert(id, Token { node, path });
        id
    }

    fn create_task(
        &mut self,
        token: TokenId,
        node: NodeIx,
        assignee: Option<i64>,
        cosign_of: Option<TaskId>,
    ) -> Result<TaskId, EngineError> {
        self.create_task_for(token, node, (assignee, cosign_of), None)
    }

    fn create_task_for(
        &mut self,
        token: TokenId,
        node: NodeIx,
        (assignee, cosign_of): (Option<i64>, Option<TaskId>),
        element: Option<(&str, &Value)>,
    ) -> Result<TaskId, EngineError> {
        let NodeKind::UserTask(spec) = &self.def.nodes[node].kind else { return Err(EngineError::NoSuchTask) };
        let assignee = match (assignee, &spec.assignee) {
            (Some(a), _) => Some(a),
            (None, Some(c)) => self.resolve(c, element).and_then(|s| s.parse::<i64>().ok()),
            (None, None) => None,
        };
        let units: Vec<String> = spec.candidate_units.iter().filter_map(|c| self.resolve(c, element)).collect();
        let roles: Vec<String> = spec.candidate_roles.iter().filter_map(|c| self.resolve(c, element)).collect();
        if assignee.is_none() && units.is_empty() && roles.is_empty() {
            return Err(EngineError::NoPathMatched(format!("{}: nobody may do this task", self.def.nodes[node].id)));
        }
        let id = self.next_id();
        self.inst.tasks.insert(
            id,
            Task {
                id,
                node,
                token,
                status: TaskStatus::Open,
                assignee,
                candidate_units: units,
                candidate_roles: roles,
                cosign_of,
                due_working_days: spec.due_working_days,
                created_at: self.now,
                touched: false,
                completed_by: None,
                closed_at: None,
                opinion: None,
                transferred_from: Vec::new(),
            },
        );
        self.effects.push(Effect::TaskCreated(id));
        Ok(id)
    }

    fn start_timers(&mut self, token: TokenId, node: NodeIx) {
        let NodeKind::UserTask(spec) = &self.def.nodes[node].kind else { return };
        for b in spec.boundary_timers.clone() {
            if let NodeKind::BoundaryTimer { working_days, .. } = self.def.nodes[b].kind {
                let id = self.next_id();
                self.inst.timers.insert(id, Timer { node: b, token, working_days, started_at: self.now });
                self.effects.push(Effect::TimerStarted(id));
            }
        }
    }

    fn cancel_timers_of(&mut self, token: TokenId) {
        let ids: Vec<TimerId> = self.inst.timers.iter().filter(|(_, t)| t.token == token).map(|(id, _)| *id).collect();
        for id in ids {
            self.inst.timers.remove(&id);
            self.effects.push(Effect::TimerCancelled(id));
        }
    }

    /// Removes a token and closes its open tasks: `main` gets `status`, others are cancelled.
    fn close_token(&mut self, token: TokenId, main: TaskId, status: TaskStatus) {
        self.inst.tokens.remove(&token);
        self.cancel_timers_of(token);
        let now = self.now;
        for t in self.inst.tasks.values_mut().filter(|t| t.token == token && t.status == TaskStatus::Open) {
            t.status = if t.id == main || status == TaskStatus::TimedOut { status } else { TaskStatus::Cancelled };
            t.closed_at = Some(now);
            self.effects.push(Effect::TaskChanged(t.id));
        }
    }

    /// Cancels every token inside `block` (entered under `prefix`) and resets its joins.
    fn cancel_block(&mut self, prefix: &[BranchRef], block: BlockIx, main: TaskId) {
        let inside = |p: &[BranchRef]| p.len() > prefix.len() && p[..prefix.len()] == *prefix && p[prefix.len()].block == block;
        let tokens: Vec<TokenId> = self.inst.tokens.iter().filter(|(_, t)| inside(&t.path)).map(|(id, _)| *id).collect();
        for t in tokens {
            self.close_token(t, main, TaskStatus::SentBack);
        }
        let def = self.def;
        let nested: Vec<BlockIx> = (0..def.blocks.len()).filter(|b| *b == block || inside(&def.paths[def.blocks[*b].fork])).collect();
        for b in nested {
            self.inst.joins.remove(&b);
        }
    }

    fn undo_completion(&mut self, rec: &WithdrawRecord) -> Result<(), EngineError> {
        for tok in &rec.produced {
            if !self.inst.tokens.contains_key(tok) {
                return Err(EngineError::CannotWithdraw);
            }
            let started = self.inst.tasks.values().any(|t| t.token == *tok && (t.status != TaskStatus::Open || t.touched));
            if started {
                return Err(EngineError::CannotWithdraw);
            }
        }
        if let Some((block, branch)) = rec.arrival {
            let present = self.inst.joins.get(&block).is_some_and(|j| j.arrived.contains(&branch));
            if !present {
                return Err(EngineError::CannotWithdraw);
            }
            if let Some(j) = self.inst.joins.get_mut(&block) {
                j.arrived.remove(&branch);
            }
        }
        for (block, branch, before) in &rec.fired {
            let j = self.inst.joins.entry(*block).or_default();
            if !j.arrived.is_empty() {
                return Err(EngineError::CannotWithdraw);
            }
            j.arrived = before.clone();
            j.arrived.remove(branch);
        }
        for tok in &rec.produced {
            self.close_token(*tok, TaskId::MAX, TaskStatus::Cancelled);
        }
        Ok(())
    }

    /// Moves control out of `node` along its outgoing flow(s).
    fn leave(&mut self, node: NodeIx, path: Vec<BranchRef>, rec: &mut WithdrawRecord) -> Result<(), EngineError> {
        let out = self.def.nodes[node].outgoing.clone();
        for f in out {
            self.arrive(self.def.flows[f].target, path.clone(), rec)?;
        }
        Ok(())
    }

    /// A token arrives at `node` with `path`.
    fn arrive(&mut self, node: NodeIx, path: Vec<BranchRef>, rec: &mut WithdrawRecord) -> Result<(), EngineError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(EngineError::NoPathMatched(format!("{}: endless loop", self.def.nodes[node].id)));
        }
        let def = self.def;
        let n = &def.nodes[node];
        match &n.kind {
            NodeKind::Start | NodeKind::BoundaryTimer { .. } => self.leave(node, path, rec),
            NodeKind::End => Ok(()),
            NodeKind::UserTask(_) => {
                let token = self.new_token(node, path.clone());
                if !self.create_step(token, node)? {
                    self.inst.tokens.remove(&token);
                    return self.leave(node, path, rec);
                }
                self.start_timers(token, node);
                rec.produced.push(token);
                Ok(())
            }
            NodeKind::Parallel | NodeKind::Inclusive { .. } => {
                if let Some(block) = def.block_of_join(node) {
                    return self.arrive_at_join(block, node, path, rec);
                }
                if let Some(block) = def.block_of_fork(node) {
                    return self.fork(block, node, path, rec);
                }
                self.leave(node, path, rec)
            }
            NodeKind::Exclusive { default } => {
                let chosen = n
                    .outgoing
                    .iter()
                    .find(|f| Some(**f) != *default && def.flows[**f].condition.as_ref().is_none_or(|c| c.eval(&self.inst.variables)))
                    .copied()
                    .or(*default)
                    .ok_or_else(|| EngineError::NoPathMatched(n.id.clone()))?;
                self.arrive(def.flows[chosen].target, path, rec)
            }
        }
    }

    fn fork(&mut self, block: BlockIx, node: NodeIx, path: Vec<BranchRef>, rec: &mut WithdrawRecord) -> Result<(), EngineError> {
        let def = self.def;
        let n = &def.nodes[node];
        let mut taken: BTreeSet<usize> = BTreeSet::new();
        match n.kind {
            NodeKind::Inclusive { default } => {
                for (i, f) in n.outgoing.iter().enumerate() {
                    if Some(*f) != default && def.flows[*f].condition.as_ref().is_some_and(|c| c.eval(&self.inst.variables)) {
                        taken.insert(i);
                    }
                }
                if taken.is_empty() {
                    let d = default.ok_or_else(|| EngineError::NoPathMatched(n.id.clone()))?;
                    taken.extend(n.outgoing.iter().position(|f| *f == d));
                }
            }
            _ => taken.extend(0..n.outgoing.len()),
        }
        self.inst.joins.insert(block, JoinState { expected: taken.clone(), arrived: BTreeSet::new() });
        for i in taken {
            let mut p = path.clone();
            p.push(BranchRef { block, branch: i });
            self.arrive(def.flows[n.outgoing[i]].target, p, rec)?;
        }
        Ok(())
    }

    fn arrive_at_join(
        &mut self,
        block: BlockIx,
        node: NodeIx,
        mut path: Vec<BranchRef>,
        rec: &mut WithdrawRecord,
    ) -> Result<(), EngineError> {
        let Some(last) = path.pop() else { return Err(EngineError::NoPathMatched(self.def.nodes[node].id.clone())) };
        let state = self.inst.joins.entry(block).or_default();
        let before = state.arrived.clone();
        state.arrived.insert(last.branch);
        if !state.expected.is_subset(&state.arrived) {
            rec.arrival = Some((block, last.branch));
            return Ok(());
        }
        state.arrived.clear();
        rec.fired.push((block, last.branch, before));
        self.leave(node, path, rec)
    }

    fn finish(&mut self) {
        if self.inst.status == InstanceStatus::Running && self.inst.tokens.is_empty() {
            self.inst.status = InstanceStatus::Completed;
            self.inst.ended_at = Some(self.now);
            self.inst.joins.clear();
            self.inst.withdrawable.clear();
            self.effects.push(Effect::InstanceCompleted);
        }
    }
}
