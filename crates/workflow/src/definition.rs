//! A parsed, validated process definition (流程定义): nodes, sequence flows and the parallel blocks
//! found between matching forks and joins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

/// Index of a node in [`ProcessDefinition::nodes`].
pub type NodeIx = usize;
/// Index of a flow in [`ProcessDefinition::flows`].
pub type FlowIx = usize;
/// Index of a block in [`ProcessDefinition::blocks`].
pub type BlockIx = usize;

/// The type of a declared form field, for checking conditions at upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text.
    String,
    /// Integer or decimal number.
    Number,
    /// true / false.
    Boolean,
    /// A date (`YYYY-MM-DD`).
    Date,
}

impl FieldType {
    /// Maps a Camunda or tongban type name (`long`, `string`, `boolean`, `date`, `enum`…).
    pub fn parse(name: &str) -> Option<FieldType> {
        match name {
            "string" | "enum" | "text" => Some(FieldType::String),
            "long" | "integer" | "number" | "double" | "decimal" => Some(FieldType::Number),
            "boolean" | "bool" => Some(FieldType::Boolean),
            "date" => Some(FieldType::Date),
            _ => None,
        }
    }
}

/// Who may do a task: a literal value or a `${variable}` read from the instance's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Candidate {
    /// A fixed unit name/id, role name or user id.
    Literal(String),
    /// The value of this instance variable when the task is created.
    Variable(String),
}

/// A user task's assignment and time limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserTaskSpec {
    /// Units whose members may claim the task (候选单位).
    pub candidate_units: Vec<Candidate>,
    /// Roles whose holders may claim the task (候选角色).
    pub candidate_roles: Vec<Candidate>,
    /// A user who gets the task directly (办理人).
    pub assignee: Option<Candidate>,
    /// Time limit for the task in working days (办理时限), if any.
    pub due_working_days: Option<u32>,
    /// Boundary timer nodes attached to this task.
    pub boundary_timers: Vec<NodeIx>,
    /// Parallel multi-instance (会签): one task per element of a list, all to be done.
    pub multi_instance: Option<MultiInstance>,
}

/// A parallel multi-instance user task (多实例会签): the step makes one task per element of the
/// instance variable `collection` (a JSON list or a comma-separated text), with `element_variable`
/// bound to that element while its assignee and candidates are worked out, and moves on when every
/// one of them is done. An empty list skips the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiInstance {
    /// The instance variable holding the list.
    pub collection: String,
    /// The name each element is bound to (e.g. `unit`).
    pub element_variable: String,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// The none start event (开始).
    Start,
    /// An end event (结束).
    End,
    /// A task done by a person (人工任务).
    UserTask(UserTaskSpec),
    /// Parallel gateway: fork when it has several outgoing flows, join when it has several incoming.
    Parallel,
    /// Exclusive gateway: the first flow whose condition holds, else the default.
    Exclusive {
        /// The default flow.
        default: Option<FlowIx>,
    },
    /// Inclusive gateway: every flow whose condition holds; its join waits for those taken.
    Inclusive {
        /// The default flow, taken when no condition holds.
        default: Option<FlowIx>,
    },
    /// A timer on the boundary of a user task, in working days.
    BoundaryTimer {
        /// The task it is attached to.
        attached_to: NodeIx,
        /// Working days after the task started.
        working_days: u32,
        /// Whether firing cancels the task (interrupting) or runs beside it.
        cancel_activity: bool,
    },
}

/// One element of the process graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The BPMN element id.
    pub id: String,
    /// The element's name as drawn (may be empty).
    pub name: String,
    /// Line in the uploaded file, for messages.
    pub line: u32,
    /// What it is.
    pub kind: NodeKind,
    /// Incoming flows.
    pub incoming: Vec<FlowIx>,
    /// Outgoing flows.
    pub outgoing: Vec<FlowIx>,
}

impl Node {
    /// The name, or the id when unnamed.
    pub fn label(&self) -> &str {
        if self.name.is_empty() { &self.id } else { &self.name }
    }

    /// Whether this is a user task.
    pub fn is_user_task(&self) -> bool {
        matches!(self.kind, NodeKind::UserTask(_))
    }
}

/// A sequence flow (顺序流).
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The BPMN element id.
    pub id: String,
    /// Name as drawn.
    pub name: String,
    /// Line in the uploaded file.
    pub line: u32,
    /// Source node.
    pub source: NodeIx,
    /// Target node.
    pub target: NodeIx,
    /// The condition, for flows out of exclusive and inclusive gateways.
    pub condition: Option<Expr>,
}

/// One branch of a parallel block as seen from a node inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BranchRef {
    /// The block.
    pub block: BlockIx,
    /// Which outgoing flow of the fork started the branch.
    pub branch: usize,
}

/// A fork and its matching join (并行块).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParallelBlock {
    /// The forking gateway.
    pub fork: NodeIx,
    /// The joining gateway.
    pub join: NodeIx,
    /// Whether the gateways are inclusive (the join waits only for branches taken).
    pub inclusive: bool,
    /// Number of branches (outgoing flows of the fork).
    pub branches: usize,
}

/// The field a decision step sets (`true` grants, `false` refuses); see [`ProcessDefinition::decides`].
pub const DECISION_FIELD: &str = "approved";

/// A validated process, ready to run.
#[derive(Debug, Clone)]
pub struct ProcessDefinition {
    /// The process id (流程标识), the key versions are grouped by.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every flow.
    pub flows: Vec<Flow>,
    /// The start event.
    pub start: NodeIx,
    /// Declared form fields (from camunda:formField or tongban:field).
    pub fields: BTreeMap<String, FieldType>,
    /// Parallel blocks, fork to join.
    pub blocks: Vec<ParallelBlock>,
    /// For each node, the branches it sits in, outermost first.
    pub paths: Vec<Vec<BranchRef>>,
}

impl ProcessDefinition {
    /// The node with this BPMN id.
    pub fn node_by_id(&self, id: &str) -> Option<NodeIx> {
        self.nodes.iter().position(|n| n.id == id)
    }

    /// The node at `ix`.
    pub fn node(&self, ix: NodeIx) -> &Node {
        &self.nodes[ix]
    }

    /// The block whose fork is `node`, if any.
    pub fn block_of_fork(&self, node: NodeIx) -> Option<BlockIx> {
        self.blocks.iter().position(|b| b.fork == node)
    }

    /// The block whose join is `node`, if any.
    pub fn block_of_join(&self, node: NodeIx) -> Option<BlockIx> {
        self.blocks.iter().position(|b| b.join == node)
    }

    /// The user tasks, in file order: a readable list of the steps.
    pub fn user_tasks(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_user_task())
    }

    /// Whether the user task at `node` is a decision step (决定环节): a condition reading
    /// [`DECISION_FIELD`] follows it, through gateways only, so its doer's explicit choice decides
    /// the way on. Only a decision step may set that field, and it must.
    pub fn decides(&self, node: NodeIx) -> bool {
        if !self.nodes.get(node).is_some_and(Node::is_user_task) {
            return false;
        }
        let mut seen = vec![false; self.nodes.len()];
        let mut flows: Vec<FlowIx> = self.nodes[node].outgoing.clone();
        while let Some(f) = flows.pop() {
            let flow = &self.flows[f];
            if flow.condition.as_ref().is_some_and(|c| c.fields().contains(&DECISION_FIELD)) {
                return true;
            }
            let target = flow.target;
            let through = matches!(self.nodes[target].kind, NodeKind::Parallel | NodeKind::Exclusive { .. } | NodeKind::Inclusive { .. });
            if through && !seen[target] {
                seen[target] = true;
                flows.extend(self.nodes[target].outgoing.iter().copied());
            }
        }
        false
    }

    /// Whether `variable` holds the list of a multi-instance task (会签), so may be a list.
    pub fn is_collection(&self, variable: &str) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(&n.kind, NodeKind::UserTask(UserTaskSpec { multi_instance: Some(m), .. }) if m.collection == variable))
    }
}
