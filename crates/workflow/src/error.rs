//! Why a definition was refused at upload, and why an action on an instance was refused.

use thiserror::Error;

/// A refused BPMN file: what was wrong, at which element and line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} (element {element}, line {line})")]
pub struct DefinitionError {
    /// The element id (or tag name when it has none).
    pub element: String,
    /// Line in the file.
    pub line: u32,
    /// What was wrong.
    pub kind: DefinitionErrorKind,
}

impl DefinitionError {
    /// The i18n key of the message.
    pub fn message_key(&self) -> &'static str {
        self.kind.message_key()
    }

    /// Particulars for the message: element, line and any extra text.
    pub fn detail(&self) -> String {
        match self.kind.extra() {
            Some(x) => format!("{}, line {}: {x}", self.element, self.line),
            None => format!("{}, line {}", self.element, self.line),
        }
    }
}

/// The kinds of refusal.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DefinitionErrorKind {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    /// The root is not bpmn:definitions.
    #[error("not a BPMN 2.0 file")]
    NotBpmn,
    /// No process element.
    #[error("the file holds no process")]
    NoProcess,
    /// More than one process.
    #[error("only one process per file is supported")]
    SeveralProcesses,
    /// A BPMN element outside the supported subset.
    #[error("unsupported BPMN element {0}")]
    Unsupported(String),
    /// An element without an id.
    #[error("element has no id")]
    MissingId,
    /// Two elements share an id.
    #[error("duplicate id")]
    DuplicateId,
    /// A reference to an id that does not exist.
    #[error("reference to unknown element {0}")]
    UnknownReference(String),
    /// An attribute with a bad or missing value.
    #[error("bad attribute {0}")]
    BadAttribute(String),
    /// No start event.
    #[error("the process has no start event")]
    NoStartEvent,
    /// More than one start event.
    #[error("the process has more than one start event")]
    SeveralStartEvents,
    /// A timer that is not a duration in days.
    #[error("timer must be a duration in working days (P5D): {0}")]
    BadTimer(String),
    /// A condition that does not parse.
    #[error("bad condition: {0}")]
    BadCondition(String),
    /// A condition reading a field that no form declares.
    #[error("condition reads unknown field {0}")]
    UnknownField(String),
    /// A flow out of a gateway that needs a condition.
    #[error("flow out of a conditional gateway has no condition and is not the default")]
    MissingCondition,
    /// A node that cannot be reached from the start.
    #[error("element cannot be reached from the start event")]
    Unreachable,
    /// A node from which no end event can be reached (a cycle without a way out, or a dead end).
    #[error("no way out: no end event can be reached from here")]
    NoWayOut,
    /// A joining parallel gateway that is not the join of a fork.
    #[error("parallel join has no matching fork")]
    JoinWithoutFork,
    /// A fork whose branches do not meet at one join.
    #[error("fork has no matching join: {0}")]
    ForkWithoutJoin(String),
    /// A gateway both joining and forking.
    #[error("a parallel or inclusive gateway may either fork or join, not both")]
    MixedGateway,
    /// An element reached both inside and outside a parallel block (a flow leaves a branch).
    #[error("flow leaves its parallel branch")]
    LeavesBranch,
    /// Start with incoming flows, end with outgoing, or a task without exactly one way on.
    #[error("wrong number of flows: {0}")]
    FlowCount(String),
    /// A user task nobody may do.
    #[error("user task has no assignee, candidate unit, role or lane")]
    NoCandidate,
    /// The file or process is too large.
    #[error("file too large")]
    TooLarge,
    /// A unit (by name, region code or id) that no unit has.
    #[error("no unit is named {0}")]
    UnknownUnit(String),
    /// A unit name that several units share: the file must name the unit by its id or code.
    #[error("several units are named {0}")]
    AmbiguousUnit(String),
    /// Elements nested deeper than [`crate::parse::MAX_DEPTH`] levels.
    #[error("elements nested too deep")]
    TooDeep,
}

impl DefinitionErrorKind {
    /// The i18n key of the message.
    pub fn message_key(&self) -> &'static str {
        use DefinitionErrorKind::*;
        match self {
            MalformedXml(_) => "workflow.error.malformed_xml",
            NotBpmn => "workflow.error.not_bpmn",
            NoProcess => "workflow.error.no_process",
            SeveralProcesses => "workflow.error.several_processes",
            Unsupported(_) => "workflow.error.unsupported",
            MissingId => "workflow.error.missing_id",
            DuplicateId => "workflow.error.duplicate_id",
            UnknownReference(_) => "workflow.error.unknown_reference",
            BadAttribute(_) => "workflow.error.bad_attribute",
            NoStartEvent => "workflow.error.no_start",
            SeveralStartEvents => "workflow.error.several_starts",
            BadTimer(_) => "workflow.error.bad_timer",
            BadCondition(_) => "workflow.error.bad_condition",
            UnknownField(_) => "workflow.error.unknown_field",
            MissingCondition => "workflow.error.missing_condition",
            Unreachable => "workflow.error.unreachable",
            NoWayOut => "workflow.error.no_way_out",
            JoinWithoutFork => "workflow.error.join_without_fork",
            ForkWithoutJoin(_) => "workflow.error.fork_without_join",
            MixedGateway => "workflow.error.mixed_gateway",
            LeavesBranch => "workflow.error.leaves_branch",
            FlowCount(_) => "workflow.error.flow_count",
            NoCandidate => "workflow.error.no_candidate",
            TooLarge => "workflow.error.too_large",
            TooDeep => "workflow.error.too_deep",
            UnknownUnit(_) => "workflow.error.unknown_unit",
            AmbiguousUnit(_) => "workflow.error.ambiguous_unit",
        }
    }

    fn extra(&self) -> Option<&str> {
        use DefinitionErrorKind::*;
        match self {
            MalformedXml(s) | Unsupported(s) | UnknownReference(s) | BadAttribute(s) | BadTimer(s) | BadCondition(s) | UnknownField(s)
            | ForkWithoutJoin(s) | FlowCount(s) | UnknownUnit(s) | AmbiguousUnit(s) => Some(s),
            _ => None,
        }
    }
}

/// A refused action on a running instance. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// No such task in this instance.
    #[error("no such task")]
    NoSuchTask,
    /// The task was already completed, cancelled or withdrawn.
    #[error("task is no longer open")]
    TaskClosed,
    /// The actor may not act on this task.
    #[error("not allowed to act on this task")]
    NotAllowed,
    /// A queue task must be claimed first.
    #[error("task must be claimed first")]
    NotClaimed,
    /// The task is already claimed by someone.
    #[error("task already claimed")]
    AlreadyClaimed,
    /// The instance has ended.
    #[error("instance has ended")]
    InstanceEnded,
    /// Send back to a step that was not done earlier in this instance.
    #[error("not an earlier step of this instance")]
    NotAnEarlierStep,
    /// Send back between parallel branches.
    #[error("cannot send back across parallel branches")]
    AcrossBranches,
    /// Withdraw is no longer possible: the next step has started, or the actor did not do the step.
    #[error("cannot withdraw: the next step has started")]
    CannotWithdraw,
    /// No outgoing flow's condition held and there is no default flow.
    #[error("no outgoing flow of {0} matches the data")]
    NoPathMatched(String),
    /// A co-signer or transfer target that is not valid (self, or already on the task).
    #[error("bad target user")]
    BadTarget,
    /// No such timer.
    #[error("no such timer")]
    NoSuchTimer,
}

impl EngineError {
    /// The i18n key of the message.
    pub fn message_key(&self) -> &'static str {
        match self {
            EngineError::NoSuchTask => "workflow.error.no_such_task",
            EngineError::TaskClosed => "workflow.error.task_closed",
            EngineError::NotAllowed => "workflow.error.not_allowed",
            EngineError::NotClaimed => "workflow.error.not_claimed",
            EngineError::AlreadyClaimed => "workflow.error.already_claimed",
            EngineError::InstanceEnded => "workflow.error.instance_ended",
            EngineError::NotAnEarlierStep => "workflow.error.not_earlier_step",
            EngineError::AcrossBranches => "workflow.error.across_branches",
            EngineError::CannotWithdraw => "workflow.error.cannot_withdraw",
            EngineError::NoPathMatched(_) => "workflow.error.no_path",
            EngineError::BadTarget => "workflow.error.bad_target",
            EngineError::NoSuchTimer => "workflow.error.no_such_timer",
        }
    }
}
