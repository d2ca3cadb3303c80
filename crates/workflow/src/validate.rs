//! Checks a parsed process before it may be stored: flow counts, conditions, reachability, a way
//! out from every node, and forks matched with joins (each parallel section is a block with one
//! fork and one join, which is what send-back and withdraw rely on).

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::{
    definition::{BranchRef, NodeIx, NodeKind, ParallelBlock, ProcessDefinition},
    error::{DefinitionError, DefinitionErrorKind as K},
};

fn fail(def: &ProcessDefinition, node: NodeIx, kind: K) -> DefinitionError {
    let n = &def.nodes[node];
    DefinitionError { element: n.id.clone(), line: n.line, kind }
}

/// Nodes reachable in one step: flow targets, plus the boundary timers of a user task.
pub(crate) fn successors(def: &ProcessDefinition, n: NodeIx) -> Vec<NodeIx> {
    let node = &def.nodes[n];
    let mut out: Vec<NodeIx> = node.outgoing.iter().map(|f| def.flows[*f].target).collect();
    if let NodeKind::UserTask(spec) = &node.kind {
        out.extend(spec.boundary_timers.iter().copied());
    }
    out
}

fn is_split(def: &ProcessDefinition, n: NodeIx) -> bool {
    let node = &def.nodes[n];
    matches!(node.kind, NodeKind::Parallel | NodeKind::Inclusive { .. }) && node.outgoing.len() > 1
}

fn is_join(def: &ProcessDefinition, n: NodeIx) -> bool {
    let node = &def.nodes[n];
    matches!(node.kind, NodeKind::Parallel | NodeKind::Inclusive { .. }) && node.incoming.len() > 1
}

/// Runs every check and fills in the blocks and paths.
pub fn validate(def: &mut ProcessDefinition) -> Result<(), DefinitionError> {
    check_flow_counts(def)?;
    check_conditions(def)?;
    check_reachable(def)?;
    check_way_out(def)?;
    find_blocks(def)?;
    assign_paths(def)?;
    Ok(())
}

fn check_flow_counts(def: &ProcessDefinition) -> Result<(), DefinitionError> {
    for (ix, n) in def.nodes.iter().enumerate() {
        let (i, o) = (n.incoming.len(), n.outgoing.len());
        let bad = match &n.kind {
            NodeKind::Start => (i != 0 || o != 1).then_some("a start event has no incoming and one outgoing flow"),
            NodeKind::End => (o != 0).then_some("an end event has no outgoing flow"),
            NodeKind::UserTask(spec) => {
                if spec.candidate_units.is_empty() && spec.candidate_roles.is_empty() && spec.assignee.is_none() {
                    return Err(fail(def, ix, K::NoCandidate));
                }
                (o != 1).then_some("a user task has exactly one outgoing flow (use a gateway to split)")
            }
            NodeKind::BoundaryTimer { .. } => (i != 0 || o != 1).then_some("a boundary timer has exactly one outgoing flow"),
            NodeKind::Parallel | NodeKind::Inclusive { .. } => {
                if i > 1 && o > 1 {
                    return Err(fail(def, ix, K::MixedGateway));
                }
                (o == 0).then_some("a gateway has outgoing flows")
            }
            NodeKind::Exclusive { .. } => (o == 0).then_some("a gateway has outgoing flows"),
        };
        if let Some(msg) = bad {
            return Err(fail(def, ix, K::FlowCount(msg.into())));
        }
    }
    Ok(())
}

fn check_conditions(def: &ProcessDefinition) -> Result<(), DefinitionError> {
    for (ix, n) in def.nodes.iter().enumerate() {
        let default = match n.kind {
            NodeKind::Exclusive { default } | NodeKind::Inclusive { default } => default,
            _ => continue,
        };
        if let Some(d) = default
            && def.flows[d].source != ix
        {
            return Err(fail(def, ix, K::BadAttribute("default".into())));
        }
        if n.outgoing.len() < 2 {
            continue;
        }
        for f in &n.outgoing {
            let flow = &def.flows[*f];
            if flow.condition.is_none() && default != Some(*f) {
                return Err(DefinitionError { element: flow.id.clone(), line: flow.line, kind: K::MissingCondition });
            }
        }
    }
    for flow in &def.flows {
        if let Some(c) = &flow.condition {
            if let Some(unknown) = c.fields().into_iter().find(|f| !def.fields.contains_key(*f)) {
                return Err(DefinitionError { element: flow.id.clone(), line: flow.line, kind: K::UnknownField(unknown.to_string()) });
            }
            let source = &def.nodes[flow.source];
            if !matches!(source.kind, NodeKind::Exclusive { .. } | NodeKind::Inclusive { .. }) {
                return Err(DefinitionError {
                    element: flow.id.clone(),
                    line: flow.line,
                    kind: K::BadCondition("only flows out of exclusive or inclusive gateways may have conditions".into()),
                });
            }
        }
    }
    Ok(())
}

fn check_reachable(def: &ProcessDefinition) -> Result<(), DefinitionError> {
    let mut seen = vec![false; def.nodes.len()];
    let mut queue = VecDeque::from([def.start]);
    seen[def.start] = true;
    while let Some(n) = queue.pop_front() {
        for s in successors(def, n) {
            if !seen[s] {
                seen[s] = true;
                queue.push_back(s);
            }
        }
    }
    match seen.iter().position(|s| !s) {
        Some(ix) => Err(fail(def, ix, K::Unreachable)),
        None => Ok(()),
    }
}

fn check_way_out(def: &ProcessDefinition) -> Result<(), DefinitionError> {
    let mut preds: Vec<Vec<NodeIx>> = vec![Vec::new(); def.nodes.len()];
    for n in 0..def.nodes.len() {
        for s in successors(def, n) {
            preds[s].push(n);
        }
    }
    let mut ok = vec![false; def.nodes.len()];
    let mut queue: VecDeque<NodeIx> = def.nodes.iter().enumerate().filter(|(_, n)| n.kind == NodeKind::End).map(|(i, _)| i).collect();
    for e in &queue {
        ok[*e] = true;
    }
    while let Some(n) = queue.pop_front() {
        for p in &preds[n] {
            if !ok[*p] {
                ok[*p] = true;
                queue.push_back(*p);
            }
        }
    }
    match ok.iter().position(|o| !o) {
        Some(ix) => Err(fail(def, ix, K::NoWayOut)),
        None => Ok(()),
    }
}

/// Finds, for every fork, the one join where all its branches meet.
fn find_blocks(def: &mut ProcessDefinition) -> Result<(), DefinitionError> {
    let mut cache: HashMap<NodeIx, NodeIx> = HashMap::new();
    let forks: Vec<NodeIx> = (0..def.nodes.len()).filter(|n| is_split(def, *n)).collect();
    for f in &forks {
        join_of(def, *f, &mut cache, 0)?;
    }
    let mut blocks = Vec::new();
    for f in forks {
        let join = cache[&f];
        let inclusive = matches!(def.nodes[f].kind, NodeKind::Inclusive { .. });
        if inclusive != matches!(def.nodes[join].kind, NodeKind::Inclusive { .. }) {
            let msg = format!("join {} is not the same kind of gateway", def.nodes[join].id);
            return Err(fail(def, f, K::ForkWithoutJoin(msg)));
        }
        if blocks.iter().any(|b: &ParallelBlock| b.join == join) {
            return Err(fail(def, join, K::LeavesBranch));
        }
        blocks.push(ParallelBlock { fork: f, join, inclusive, branches: def.nodes[f].outgoing.len() });
    }
    if let Some(j) = (0..def.nodes.len()).find(|n| is_join(def, *n) && !blocks.iter().any(|b| b.join == *n)) {
        return Err(fail(def, j, K::JoinWithoutFork));
    }
    def.blocks = blocks;
    Ok(())
}

fn join_of(def: &ProcessDefinition, fork: NodeIx, cache: &mut HashMap<NodeIx, NodeIx>, depth: usize) -> Result<NodeIx, DefinitionError> {
    if let Some(j) = cache.get(&fork) {
        return Ok(*j);
    }
    if depth > 64 {
        return Err(fail(def, fork, K::ForkWithoutJoin("forks nested too deeply".into())));
    }
    let mut found: BTreeSet<NodeIx> = BTreeSet::new();
    for (b, flow) in def.nodes[fork].outgoing.iter().enumerate() {
        let mut seen = BTreeSet::new();
        let mut stack = vec![def.flows[*flow].target];
        let mut reached = None;
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            if n == fork {
                return Err(fail(def, fork, K::LeavesBranch));
            }
            if is_join(def, n) {
                reached = Some(n);
                found.insert(n);
                continue;
            }
            if def.nodes[n].kind == NodeKind::End {
                let msg = format!("branch {} reaches end event {} before a join", b + 1, def.nodes[n].id);
                return Err(fail(def, fork, K::ForkWithoutJoin(msg)));
            }
            if is_split(def, n) {
                let inner = join_of(def, n, cache, depth + 1)?;
                stack.extend(successors(def, inner));
                seen.insert(inner);
                continue;
            }
            stack.extend(successors(def, n));
        }
        if reached.is_none() {
            return Err(fail(def, fork, K::ForkWithoutJoin(format!("branch {} never reaches a join", b + 1))));
        }
    }
    let mut it = found.into_iter();
    match (it.next(), it.next()) {
        (Some(j), None) => {
            cache.insert(fork, j);
            Ok(j)
        }
        (Some(a), Some(b)) => {
            let msg = format!("branches meet at different joins {} and {}", def.nodes[a].id, def.nodes[b].id);
            Err(fail(def, fork, K::ForkWithoutJoin(msg)))
        }
        _ => Err(fail(def, fork, K::ForkWithoutJoin("no join".into()))),
    }
}

/// Gives every node the stack of branches it sits in; a node reached with two different stacks
/// means a flow leaves its branch.
fn assign_paths(def: &mut ProcessDefinition) -> Result<(), DefinitionError> {
    let mut paths: Vec<Option<Vec<BranchRef>>> = vec![None; def.nodes.len()];
    let mut queue = VecDeque::from([(def.start, Vec::new())]);
    while let Some((n, path)) = queue.pop_front() {
        match &paths[n] {
            Some(p) if *p == path => continue,
            Some(_) => return Err(fail(def, n, K::LeavesBranch)),
            None => paths[n] = Some(path.clone()),
        }
        if let NodeKind::BoundaryTimer { cancel_activity: false, .. } = def.nodes[n].kind
            && !path.is_empty()
        {
            return Err(fail(def, n, K::BadTimer("a non-interrupting timer is not supported inside a parallel branch".into())));
        }
        if let Some(block) = def.block_of_fork(n) {
            for (branch, f) in def.nodes[n].outgoing.iter().enumerate() {
                let mut p = path.clone();
                p.push(BranchRef { block, branch });
                queue.push_back((def.flows[*f].target, p));
            }
            continue;
        }
        for s in successors(def, n) {
            let mut p = path.clone();
            if let Some(block) = def.block_of_join(s) {
                match p.last() {
                    Some(last) if last.block == block => {
                        p.pop();
                    }
                    _ => return Err(fail(def, s, K::LeavesBranch)),
                }
            }
            queue.push_back((s, p));
        }
    }
    def.paths = paths.into_iter().map(Option::unwrap_or_default).collect();
    Ok(())
}
