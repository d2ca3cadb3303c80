//! Engine behaviour: sequences, forks and joins, conditions, timers, send back, withdraw, transfer,
//! co-signers, and property tests over random action sequences.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::{
    Actor, Completion, Effect, EngineError, Instance, InstanceStatus, ProcessDefinition, TaskStatus, error::DefinitionErrorKind as K,
    parse::parse_bpmn,
};

pub(crate) const PARALLEL: &str = include_str!("../tests/fixtures/parallel_approval.bpmn");
pub(crate) const CAMUNDA: &str = include_str!("../tests/fixtures/camunda_modeler.bpmn");

/// Wraps flow elements in a BPMN document with the tongban namespace.
pub(crate) fn bpmn(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:tongban="http://tongban.org/schema/bpmn/1.0" id="d">
<bpmn:process id="p" isExecutable="true">
{body}
</bpmn:process>
</bpmn:definitions>"#
    )
}

fn def(xml: &str) -> ProcessDefinition {
    match parse_bpmn(xml) {
        Ok(d) => d,
        Err(e) => panic!("should parse: {e}"),
    }
}

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

const NOBODY: [String; 0] = [];

fn user(id: i64) -> Actor<'static> {
    Actor { user_id: id, units: &NOBODY, roles: &NOBODY }
}

fn open_at(inst: &Instance, d: &ProcessDefinition, node: &str) -> Vec<u32> {
    inst.open_tasks().filter(|t| d.nodes[t.node].id == node).map(|t| t.id).collect()
}

fn one_open(inst: &Instance, d: &ProcessDefinition, node: &str) -> u32 {
    let open = open_at(inst, d, node);
    assert_eq!(open.len(), 1, "one open task at {node}, found {open:?}");
    open[0]
}

/// Claims (when needed) and completes the open task at `node` as `uid`.
fn do_task(inst: &mut Instance, d: &ProcessDefinition, node: &str, uid: i64, units: &[String], data: Value) -> Vec<Effect> {
    let t = one_open(inst, d, node);
    let actor = Actor { user_id: uid, units, roles: &NOBODY };
    if inst.tasks[&t].assignee.is_none() {
        inst.claim(d, t, actor, 1).unwrap();
    }
    inst.complete(d, t, actor, Completion { opinion: Some("同意".into()), variables: vars(data) }, 2).unwrap()
}

fn units(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn parallel_join_waits_for_every_branch_then_decides() {
    let d = def(PARALLEL);
    let (mut inst, effects) = Instance::start(&d, Map::new(), 7, 0).unwrap();
    assert_eq!(effects.iter().filter(|e| matches!(e, Effect::TaskCreated(_))).count(), 3);
    let land = units(&["自然资源局"]);
    let housing = units(&["住房和城乡建设局"]);
    let market = units(&["市场监督管理局"]);
    do_task(&mut inst, &d, "Task_land", 1, &land, json!({}));
    do_task(&mut inst, &d, "Task_housing", 2, &housing, json!({}));
    assert!(open_at(&inst, &d, "Task_decide").is_empty(), "join must wait for the third branch");
    do_task(&mut inst, &d, "Task_market", 3, &market, json!({}));
    assert_eq!(open_at(&inst, &d, "Task_decide").len(), 1);
    let effects = do_task(&mut inst, &d, "Task_decide", 4, &units(&["行政审批服务局"]), json!({"approved": true}));
    assert!(effects.contains(&Effect::InstanceCompleted));
    assert_eq!(inst.status, InstanceStatus::Completed);
    assert_eq!(inst.open_tasks().count(), 0);
}

#[test]
fn queue_tasks_need_a_claim_by_a_candidate() {
    let d = def(PARALLEL);
    let (mut inst, _) = Instance::start(&d, Map::new(), 7, 0).unwrap();
    let t = one_open(&inst, &d, "Task_land");
    let land = units(&["自然资源局"]);
    let other = units(&["公安局"]);
    let member = Actor { user_id: 1, units: &land, roles: &NOBODY };
    let outsider = Actor { user_id: 2, units: &other, roles: &NOBODY };
    assert_eq!(inst.complete(&d, t, member, Completion::default(), 1), Err(EngineError::NotClaimed));
    assert_eq!(inst.claim(&d, t, outsider, 1), Err(EngineError::NotAllowed));
    inst.claim(&d, t, member, 1).unwrap();
    assert_eq!(inst.claim(&d, t, Actor { user_id: 3, units: &land, roles: &NOBODY }, 1), Err(EngineError::AlreadyClaimed));
    assert_eq!(
        inst.complete(&d, t, Actor { user_id: 3, units: &land, roles: &NOBODY }, Completion::default(), 1),
        Err(EngineError::NotAllowed)
    );
    inst.complete(&d, t, member, Completion::default(), 1).unwrap();
    assert_eq!(inst.complete(&d, t, member, Completion::default(), 1), Err(EngineError::TaskClosed));
}

#[test]
fn exclusive_gateway_follows_form_data_and_default() {
    let d = def(CAMUNDA);
    let window = units(&["窗口人员"]);
    let land = units(&["自然资源局"]);
    for (amount, expert) in [(5000, true), (200, false)] {
        let (mut inst, _) = Instance::start(&d, vars(json!({"amount": amount})), 9, 0).unwrap();
        let t = one_open(&inst, &d, "Task_accept");
        let clerk = Actor { user_id: 1, units: &NOBODY, roles: &window };
        inst.claim(&d, t, clerk, 1).unwrap();
        inst.complete(&d, t, clerk, Completion::default(), 1).unwrap();
        assert_eq!(open_at(&inst, &d, "Task_expert").len(), usize::from(expert));
        assert_eq!(open_at(&inst, &d, "Task_review").len(), usize::from(!expert));
        if expert {
            do_task(&mut inst, &d, "Task_expert", 2, &land, json!({}));
        }
        do_task(&mut inst, &d, "Task_review", 2, &land, json!({}));
        assert_eq!(inst.status, InstanceStatus::Completed);
    }
}

#[test]
fn non_interrupting_timer_adds_a_reminder_task_and_is_cancelled_with_its_task() {
    let d = def(CAMUNDA);
    let (mut inst, _) = Instance::start(&d, vars(json!({"amount": 1})), 9, 0).unwrap();
    let window = units(&["窗口人员"]);
    let t = one_open(&inst, &d, "Task_accept");
    let clerk = Actor { user_id: 1, units: &NOBODY, roles: &window };
    inst.claim(&d, t, clerk, 1).unwrap();
    let effects = inst.complete(&d, t, clerk, Completion::default(), 1).unwrap();
    let timer = effects.iter().find_map(|e| if let Effect::TimerStarted(id) = e { Some(*id) } else { None }).unwrap();
    assert_eq!(inst.timers[&timer].working_days, 3);
    inst.fire_timer(&d, timer, 5).unwrap();
    let reminder = one_open(&inst, &d, "Task_escalate");
    assert_eq!(inst.tasks[&reminder].assignee, Some(9), "${{starter}} resolves to the starter");
    assert_eq!(open_at(&inst, &d, "Task_review").len(), 1, "non-interrupting: the task stays");
    assert_eq!(inst.fire_timer(&d, timer, 6), Err(EngineError::NoSuchTimer));
    do_task(&mut inst, &d, "Task_review", 2, &units(&["自然资源局"]), json!({}));
    assert_eq!(inst.status, InstanceStatus::Running, "the reminder is still open");
    do_task(&mut inst, &d, "Task_escalate", 9, &NOBODY, json!({}));
    assert_eq!(inst.status, InstanceStatus::Completed);
}

const TIMEOUT: &str = r#"
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="e"/>
<bpmn:boundaryEvent id="t" attachedToRef="a"><bpmn:timerEventDefinition><bpmn:timeDuration>P2D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:sequenceFlow id="f3" sourceRef="t" targetRef="b"/>
<bpmn:userTask id="b" tongban:assignee="2"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="e"/>
<bpmn:endEvent id="e"/>"#;

#[test]
fn interrupting_timer_closes_the_task_and_moves_on() {
    let d = def(&bpmn(TIMEOUT));
    let (mut inst, effects) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    let timer = effects.iter().find_map(|e| if let Effect::TimerStarted(id) = e { Some(*id) } else { None }).unwrap();
    let a = one_open(&inst, &d, "a");
    inst.fire_timer(&d, timer, 3).unwrap();
    assert_eq!(inst.tasks[&a].status, TaskStatus::TimedOut);
    one_open(&inst, &d, "b");
}

/// start → a → fork(b1 → b2 | c) → join → d → end
const SEND_BACK: &str = r#"
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="f1" sourceRef="a" targetRef="fork"/>
<bpmn:parallelGateway id="fork"/>
<bpmn:sequenceFlow id="f2" sourceRef="fork" targetRef="b1"/><bpmn:sequenceFlow id="f3" sourceRef="fork" targetRef="c"/>
<bpmn:userTask id="b1" tongban:assignee="2"/><bpmn:sequenceFlow id="f4" sourceRef="b1" targetRef="b2"/>
<bpmn:userTask id="b2" tongban:assignee="3"/><bpmn:sequenceFlow id="f5" sourceRef="b2" targetRef="join"/>
<bpmn:userTask id="c" tongban:assignee="4"/><bpmn:sequenceFlow id="f6" sourceRef="c" targetRef="join"/>
<bpmn:parallelGateway id="join"/><bpmn:sequenceFlow id="f7" sourceRef="join" targetRef="d"/>
<bpmn:userTask id="d" tongban:assignee="5"/><bpmn:sequenceFlow id="f8" sourceRef="d" targetRef="e"/>
<bpmn:endEvent id="e"/>"#;

fn complete_as(inst: &mut Instance, d: &ProcessDefinition, node: &str, uid: i64) -> Result<Vec<Effect>, EngineError> {
    let t = one_open(inst, d, node);
    inst.complete(d, t, user(uid), Completion::default(), 1)
}

#[test]
fn send_back_within_a_branch_keeps_the_other_branch() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    complete_as(&mut inst, &d, "a", 1).unwrap();
    complete_as(&mut inst, &d, "b1", 2).unwrap();
    let b2 = one_open(&inst, &d, "b2");
    inst.send_back(&d, b2, user(3), "b1", Some("材料不全".into()), 2).unwrap();
    assert_eq!(inst.tasks[&b2].status, TaskStatus::SentBack);
    let again = one_open(&inst, &d, "b1");
    assert_eq!(inst.tasks[&again].assignee, Some(2), "goes back to who did it");
    one_open(&inst, &d, "c");
}

#[test]
fn send_back_out_of_a_parallel_section_cancels_every_branch() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    complete_as(&mut inst, &d, "a", 1).unwrap();
    complete_as(&mut inst, &d, "c", 4).unwrap();
    let b1 = one_open(&inst, &d, "b1");
    inst.send_back(&d, b1, user(2), "a", None, 2).unwrap();
    assert_eq!(inst.open_tasks().count(), 1);
    one_open(&inst, &d, "a");
    assert!(inst.joins.is_empty(), "the join forgets the branch that had arrived");
    complete_as(&mut inst, &d, "a", 1).unwrap();
    complete_as(&mut inst, &d, "b1", 2).unwrap();
    complete_as(&mut inst, &d, "b2", 3).unwrap();
    assert!(open_at(&inst, &d, "d").is_empty(), "c must be done again");
    complete_as(&mut inst, &d, "c", 4).unwrap();
    complete_as(&mut inst, &d, "d", 5).unwrap();
    assert_eq!(inst.status, InstanceStatus::Completed);
}

#[test]
fn send_back_into_a_parallel_section_reruns_only_that_branch() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    for (n, u) in [("a", 1), ("b1", 2), ("b2", 3), ("c", 4)] {
        complete_as(&mut inst, &d, n, u).unwrap();
    }
    let dt = one_open(&inst, &d, "d");
    inst.send_back(&d, dt, user(5), "c", None, 3).unwrap();
    assert_eq!(inst.open_tasks().count(), 1);
    complete_as(&mut inst, &d, "c", 4).unwrap();
    one_open(&inst, &d, "d");
    let dt = one_open(&inst, &d, "d");
    assert_eq!(inst.send_back(&d, dt, user(5), "e", None, 3), Err(EngineError::NotAnEarlierStep));
    assert_eq!(inst.send_back(&d, dt, user(6), "a", None, 3), Err(EngineError::NotAllowed));
}

#[test]
fn send_back_across_branches_is_refused() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    complete_as(&mut inst, &d, "a", 1).unwrap();
    complete_as(&mut inst, &d, "b1", 2).unwrap();
    let c = one_open(&inst, &d, "c");
    let before = inst.clone();
    assert_eq!(inst.send_back(&d, c, user(4), "b1", None, 2), Err(EngineError::AcrossBranches));
    assert_eq!(inst, before, "a refused action changes nothing");
}

#[test]
fn withdraw_until_the_next_step_starts() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    complete_as(&mut inst, &d, "a", 1).unwrap();
    let a_done = inst.tasks.values().find(|t| d.nodes[t.node].id == "a").unwrap().id;
    assert_eq!(inst.withdraw(&d, a_done, user(2), 2), Err(EngineError::CannotWithdraw), "only the doer");
    inst.withdraw(&d, a_done, user(1), 2).unwrap();
    assert_eq!(inst.tasks[&a_done].status, TaskStatus::Withdrawn);
    assert_eq!(inst.open_tasks().count(), 1);
    one_open(&inst, &d, "a");
    complete_as(&mut inst, &d, "a", 1).unwrap();
    let a2 = inst.tasks.values().filter(|t| d.nodes[t.node].id == "a").map(|t| t.id).max().unwrap();
    let b1 = one_open(&inst, &d, "b1");
    inst.transfer(&d, b1, user(2), 8, 3).unwrap();
    assert_eq!(inst.withdraw(&d, a2, user(1), 3), Err(EngineError::CannotWithdraw), "b1 started (transferred)");
}

#[test]
fn withdraw_a_join_arrival_and_a_join_firing() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    for (n, u) in [("a", 1), ("b1", 2), ("b2", 3)] {
        complete_as(&mut inst, &d, n, u).unwrap();
    }
    let b2 = inst.tasks.values().find(|t| d.nodes[t.node].id == "b2").unwrap().id;
    inst.withdraw(&d, b2, user(3), 3).unwrap();
    one_open(&inst, &d, "b2");
    complete_as(&mut inst, &d, "b2", 3).unwrap();
    complete_as(&mut inst, &d, "c", 4).unwrap();
    one_open(&inst, &d, "d");
    let c = inst.tasks.values().find(|t| d.nodes[t.node].id == "c").unwrap().id;
    inst.withdraw(&d, c, user(4), 4).unwrap();
    assert!(open_at(&inst, &d, "d").is_empty());
    complete_as(&mut inst, &d, "c", 4).unwrap();
    complete_as(&mut inst, &d, "d", 5).unwrap();
    assert_eq!(inst.status, InstanceStatus::Completed);
}

#[test]
fn cosigner_must_finish_before_the_step_moves_on() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    let a = one_open(&inst, &d, "a");
    inst.add_cosigner(&d, a, user(1), 20, 1).unwrap();
    assert_eq!(inst.add_cosigner(&d, a, user(1), 20, 1), Err(EngineError::BadTarget));
    inst.complete(&d, a, user(1), Completion::default(), 2).unwrap();
    assert!(open_at(&inst, &d, "b1").is_empty());
    let co = one_open(&inst, &d, "a");
    assert_eq!(inst.tasks[&co].cosign_of, Some(a));
    inst.complete(&d, co, user(20), Completion { opinion: Some("会签同意".into()), ..Completion::default() }, 3).unwrap();
    one_open(&inst, &d, "b1");
}

#[test]
fn transfer_hands_over_the_task() {
    let d = def(&bpmn(SEND_BACK));
    let (mut inst, _) = Instance::start(&d, Map::new(), 9, 0).unwrap();
    let a = one_open(&inst, &d, "a");
    assert_eq!(inst.transfer(&d, a, user(1), 1, 1), Err(EngineError::BadTarget));
    inst.transfer(&d, a, user(1), 30, 1).unwrap();
    assert_eq!(inst.complete(&d, a, user(1), Completion::default(), 1), Err(EngineError::NotAllowed));
    inst.complete(&d, a, user(30), Completion::default(), 1).unwrap();
    assert_eq!(inst.tasks[&a].transferred_from, vec![1]);
}

#[test]
fn exclusive_gateway_without_a_matching_flow_refuses_the_action() {
    let d = def(PARALLEL);
    let (mut inst, _) = Instance::start(&d, Map::new(), 7, 0).unwrap();
    for (n, u) in [("Task_land", "自然资源局"), ("Task_housing", "住房和城乡建设局"), ("Task_market", "市场监督管理局")]
    {
        do_task(&mut inst, &d, n, 1, &units(&[u]), json!({}));
    }
    // approved missing: `not approved` holds, so this is denied rather than stuck.
    do_task(&mut inst, &d, "Task_decide", 4, &units(&["行政审批服务局"]), json!({}));
    assert_eq!(inst.status, InstanceStatus::Completed);
}

#[test]
fn cancelled_instance_closes_all_tasks_and_refuses_actions() {
    let d = def(PARALLEL);
    let (mut inst, _) = Instance::start(&d, Map::new(), 7, 0).unwrap();
    inst.cancel(&d, 5).unwrap();
    assert_eq!(inst.open_tasks().count(), 0);
    let t = *inst.tasks.keys().next().unwrap();
    assert_eq!(inst.claim(&d, t, user(1), 6), Err(EngineError::InstanceEnded));
}

fn parse_err(body: &str) -> crate::DefinitionError {
    match parse_bpmn(&bpmn(body)) {
        Ok(_) => panic!("should be refused: {body}"),
        Err(e) => e,
    }
}

#[test]
fn imports_modeler_files_with_diagram_interchange() {
    let d = def(PARALLEL);
    assert_eq!(d.key, "parallel_approval");
    assert_eq!(d.user_tasks().count(), 4);
    let c = def(CAMUNDA);
    assert_eq!(c.key, "building_permit");
    let review = &c.nodes[c.node_by_id("Task_review").unwrap()];
    match &review.kind {
        crate::definition::NodeKind::UserTask(spec) => {
            assert_eq!(spec.candidate_units, vec![crate::definition::Candidate::Literal("自然资源局".into())], "from the lane");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_bad_files_naming_element_and_line() {
    let e = parse_bpmn("<bpmn:definitions xmlns:bpmn='x'><oops").unwrap_err();
    assert!(matches!(e.kind, K::MalformedXml(_)));
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="x"/>
<bpmn:scriptTask id="x"/>"#,
    );
    assert_eq!((e.element.as_str(), e.line, &e.kind), ("x", 5, &K::Unsupported("scriptTask".into())));
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e"/><bpmn:endEvent id="e"/>
<bpmn:userTask id="lonely" tongban:assignee="1"/><bpmn:sequenceFlow id="g" sourceRef="lonely" targetRef="e"/>"#,
    );
    assert_eq!((e.element.as_str(), &e.kind), ("lonely", &K::Unreachable));
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="x"/>
<bpmn:exclusiveGateway id="x"/>
<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="a"><bpmn:conditionExpression>${ok}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="f2" sourceRef="x" targetRef="b"><bpmn:conditionExpression>${!ok}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:userTask id="b" tongban:assignee="1"/>
<bpmn:parallelGateway id="j"/><bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="j"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="j"/>
<bpmn:sequenceFlow id="f5" sourceRef="j" targetRef="e"/><bpmn:endEvent id="e"/>"#,
    );
    assert_eq!((e.element.as_str(), &e.kind), ("f1", &K::UnknownField("ok".into())), "conditions need declared fields");
    let e = parse_err(
        r#"<bpmn:extensionElements><tongban:field name="ok" type="boolean"/></bpmn:extensionElements>
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="x"/>
<bpmn:exclusiveGateway id="x"/>
<bpmn:sequenceFlow id="f1" sourceRef="x" targetRef="a"><bpmn:conditionExpression>${ok}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="f2" sourceRef="x" targetRef="b"><bpmn:conditionExpression>${!ok}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:userTask id="b" tongban:assignee="1"/>
<bpmn:parallelGateway id="j"/><bpmn:sequenceFlow id="f3" sourceRef="a" targetRef="j"/><bpmn:sequenceFlow id="f4" sourceRef="b" targetRef="j"/>
<bpmn:sequenceFlow id="f5" sourceRef="j" targetRef="e"/><bpmn:endEvent id="e"/>"#,
    );
    assert_eq!((e.element.as_str(), e.line, &e.kind), ("j", 10, &K::JoinWithoutFork));
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="g" sourceRef="a" targetRef="b"/>
<bpmn:userTask id="b" tongban:assignee="1"/><bpmn:sequenceFlow id="h" sourceRef="b" targetRef="a"/>"#,
    );
    assert_eq!(e.kind, K::NoWayOut, "a cycle without a way out");
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a"/><bpmn:sequenceFlow id="g" sourceRef="a" targetRef="e"/><bpmn:endEvent id="e"/>"#,
    );
    assert_eq!((e.element.as_str(), &e.kind), ("a", &K::NoCandidate));
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="k"/>
<bpmn:parallelGateway id="k"/><bpmn:sequenceFlow id="g1" sourceRef="k" targetRef="a"/><bpmn:sequenceFlow id="g2" sourceRef="k" targetRef="e"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="g3" sourceRef="a" targetRef="e"/><bpmn:endEvent id="e"/>"#,
    );
    assert!(matches!(e.kind, K::ForkWithoutJoin(_)), "{e}");
    let e = parse_err(
        r#"<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="g" sourceRef="a" targetRef="e"/><bpmn:endEvent id="e"/>
<bpmn:boundaryEvent id="t" attachedToRef="a"><bpmn:timerEventDefinition><bpmn:timeDuration>PT4H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
<bpmn:sequenceFlow id="h" sourceRef="t" targetRef="e"/>"#,
    );
    assert!(matches!(e.kind, K::BadTimer(_)), "hours are not working days: {e}");
    assert_eq!(e.element, "t");
}

/// A process with a nested parallel block inside a branch and a loop back through an exclusive gateway.
const NESTED: &str = r#"
<bpmn:extensionElements><tongban:field name="again" type="boolean"/></bpmn:extensionElements>
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="a"/>
<bpmn:userTask id="a" tongban:candidateUnit="u1"/><bpmn:sequenceFlow id="f1" sourceRef="a" targetRef="k1"/>
<bpmn:parallelGateway id="k1"/>
<bpmn:sequenceFlow id="f2" sourceRef="k1" targetRef="k2"/><bpmn:sequenceFlow id="f3" sourceRef="k1" targetRef="c"/>
<bpmn:parallelGateway id="k2"/>
<bpmn:sequenceFlow id="f4" sourceRef="k2" targetRef="b1"/><bpmn:sequenceFlow id="f5" sourceRef="k2" targetRef="b2"/>
<bpmn:userTask id="b1" tongban:candidateUnit="u2"/><bpmn:sequenceFlow id="f6" sourceRef="b1" targetRef="j2"/>
<bpmn:userTask id="b2" tongban:candidateUnit="u2"/><bpmn:sequenceFlow id="f7" sourceRef="b2" targetRef="j2"/>
<bpmn:parallelGateway id="j2"/><bpmn:sequenceFlow id="f8" sourceRef="j2" targetRef="j1"/>
<bpmn:userTask id="c" tongban:candidateUnit="u3"/><bpmn:sequenceFlow id="f9" sourceRef="c" targetRef="j1"/>
<bpmn:parallelGateway id="j1"/><bpmn:sequenceFlow id="f10" sourceRef="j1" targetRef="d"/>
<bpmn:userTask id="d" tongban:candidateUnit="u1"/><bpmn:sequenceFlow id="f11" sourceRef="d" targetRef="x"/>
<bpmn:exclusiveGateway id="x" default="f13"/>
<bpmn:sequenceFlow id="f12" sourceRef="x" targetRef="a"><bpmn:conditionExpression>${again}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="f13" sourceRef="x" targetRef="e"/>
<bpmn:endEvent id="e"/>"#;

#[derive(Debug, Clone)]
enum Act {
    Complete(usize, bool),
    SendBack(usize, usize),
    Withdraw(usize),
    Transfer(usize),
    Cosign(usize),
    Timer(usize),
}

fn act_strategy() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0usize..8, any::<bool>()).prop_map(|(i, b)| Act::Complete(i, b)),
        1 => (0usize..8, 0usize..8).prop_map(|(i, j)| Act::SendBack(i, j)),
        1 => (0usize..16).prop_map(Act::Withdraw),
        1 => (0usize..8).prop_map(Act::Transfer),
        1 => (0usize..8).prop_map(Act::Cosign),
        1 => (0usize..8).prop_map(Act::Timer),
    ]
}

/// Checks the invariants that must hold after any sequence of actions.
fn check_consistent(d: &ProcessDefinition, inst: &Instance, completions: usize) {
    for t in inst.open_tasks() {
        let tok = inst.tokens.get(&t.token);
        assert!(tok.is_some(), "open task {} has a live token", t.id);
        assert_eq!(tok.map(|k| k.node), Some(t.node));
    }
    for (id, tok) in &inst.tokens {
        assert!(d.nodes[tok.node].is_user_task());
        assert!(inst.open_tasks().any(|t| t.token == *id), "token {id} has an open task");
        assert_eq!(tok.path, d.paths[tok.node], "token path matches the node's block structure");
    }
    for tm in inst.timers.values() {
        assert!(inst.tokens.contains_key(&tm.token), "no timer outlives its task");
    }
    match inst.status {
        InstanceStatus::Running => assert!(!inst.tokens.is_empty()),
        _ => {
            assert!(inst.tokens.is_empty() && inst.timers.is_empty() && inst.open_tasks().count() == 0, "no task outlives its instance");
        }
    }
    assert!(completions <= 1, "completed exactly once");
}

fn run_actions(d: &ProcessDefinition, acts: &[Act]) {
    run_actions_from(d, acts, json!({"again": false}));
}

fn run_actions_from(d: &ProcessDefinition, acts: &[Act], start: Value) {
    let (mut inst, effects) = Instance::start(d, vars(start), 1, 0).unwrap();
    let mut completions = effects.iter().filter(|e| **e == Effect::InstanceCompleted).count();
    for (step, act) in acts.iter().enumerate() {
        let now = step as i64 + 1;
        let open: Vec<u32> = inst.open_tasks().map(|t| t.id).collect();
        let pick = |i: usize| open.get(i % open.len().max(1)).copied();
        let before = inst.clone();
        let result = match act {
            Act::Complete(i, again) => pick(*i).map(|t| {
                let holder = inst.tasks[&t].assignee.unwrap_or(100 + t as i64);
                let units = inst.tasks[&t].candidate_units.clone();
                let actor = Actor { user_id: holder, units: &units, roles: &NOBODY };
                if inst.tasks[&t].assignee.is_none() {
                    inst.claim(d, t, actor, now).unwrap();
                }
                inst.complete(d, t, actor, Completion { opinion: None, variables: vars(json!({"again": again})) }, now)
            }),
            Act::SendBack(i, j) => pick(*i).and_then(|t| {
                let holder = inst.tasks[&t].assignee?;
                let target = d.user_tasks().nth(j % 6).map(|n| n.id.clone())?;
                Some(inst.send_back(d, t, user(holder), &target, None, now))
            }),
            Act::Withdraw(i) => {
                let done: Vec<(u32, Option<i64>)> =
                    inst.tasks.values().filter(|t| t.status == TaskStatus::Completed).map(|t| (t.id, t.completed_by)).collect();
                done.get(i % done.len().max(1)).copied().map(|(t, by)| inst.withdraw(d, t, user(by.unwrap_or(0)), now))
            }
            Act::Transfer(i) => pick(*i).and_then(|t| {
                let holder = inst.tasks[&t].assignee?;
                Some(inst.transfer(d, t, user(holder), holder + 1000, now))
            }),
            Act::Cosign(i) => pick(*i).and_then(|t| {
                let holder = inst.tasks[&t].assignee?;
                Some(inst.add_cosigner(d, t, user(holder), 500 + t as i64, now))
            }),
            Act::Timer(i) => {
                let timers: Vec<u32> = inst.timers.keys().copied().collect();
                timers.get(i % timers.len().max(1)).map(|t| inst.fire_timer(d, *t, now))
            }
        };
        match result {
            Some(Ok(effects)) => completions += effects.iter().filter(|e| **e == Effect::InstanceCompleted).count(),
            Some(Err(_)) => assert_eq!(inst, before, "a refused action changes nothing"),
            None => {}
        }
        check_consistent(d, &inst, completions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_action_sequence_keeps_tokens_consistent(acts in proptest::collection::vec(act_strategy(), 1..60)) {
        let d = def(&bpmn(NESTED));
        run_actions(&d, &acts);
        let t = def(&bpmn(SEND_BACK));
        run_actions(&t, &acts);
        let p = def(PARALLEL);
        run_actions(&p, &acts);
        let i = def(&bpmn(INCLUSIVE));
        run_actions(&i, &acts);
        run_actions_from(&countersign_process(), &acts, json!({"reviewer": 1, "signer": 2, "units": [11, 12, 13]}));
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,400}") {
        let _ = parse_bpmn(&s);
        let _ = parse_bpmn(&bpmn(&s));
    }
}

/// An inclusive split on two fields with a default, and its join.
const INCLUSIVE: &str = r#"
<bpmn:extensionElements><tongban:field name="land" type="boolean"/><tongban:field name="fire" type="boolean"/></bpmn:extensionElements>
<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="k"/>
<bpmn:inclusiveGateway id="k" default="fd"/>
<bpmn:sequenceFlow id="fa" sourceRef="k" targetRef="a"><bpmn:conditionExpression>${land}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="fb" sourceRef="k" targetRef="b"><bpmn:conditionExpression>${fire}</bpmn:conditionExpression></bpmn:sequenceFlow>
<bpmn:sequenceFlow id="fd" sourceRef="k" targetRef="c"/>
<bpmn:userTask id="a" tongban:assignee="1"/><bpmn:sequenceFlow id="g1" sourceRef="a" targetRef="j"/>
<bpmn:userTask id="b" tongban:assignee="2"/><bpmn:sequenceFlow id="g2" sourceRef="b" targetRef="j"/>
<bpmn:userTask id="c" tongban:assignee="3"/><bpmn:sequenceFlow id="g3" sourceRef="c" targetRef="j"/>
<bpmn:inclusiveGateway id="j"/><bpmn:sequenceFlow id="g4" sourceRef="j" targetRef="d"/>
<bpmn:userTask id="d" tongban:assignee="4"/><bpmn:sequenceFlow id="g5" sourceRef="d" targetRef="e"/>
<bpmn:endEvent id="e"/>"#;

#[test]
fn inclusive_gateway_runs_the_branches_whose_conditions_hold_and_waits_only_for_them() {
    let d = def(&bpmn(INCLUSIVE));
    let (mut inst, _) = Instance::start(&d, vars(json!({"land": true, "fire": false})), 9, 0).unwrap();
    assert_eq!(inst.open_tasks().count(), 1);
    complete_as(&mut inst, &d, "a", 1).unwrap();
    one_open(&inst, &d, "d");

    let (mut inst, _) = Instance::start(&d, vars(json!({"land": true, "fire": true})), 9, 0).unwrap();
    assert_eq!(inst.open_tasks().count(), 2);
    complete_as(&mut inst, &d, "b", 2).unwrap();
    assert!(open_at(&inst, &d, "d").is_empty(), "waits for the other taken branch");
    complete_as(&mut inst, &d, "a", 1).unwrap();
    one_open(&inst, &d, "d");

    let (inst, _) = Instance::start(&d, vars(json!({"land": false, "fire": false})), 9, 0).unwrap();
    one_open(&inst, &d, "c");
}

/// 核稿 → 会签 (one task per unit in `units`) → 签发.
fn countersign_process() -> ProcessDefinition {
    def(&bpmn(
        r#"<bpmn:startEvent id="s"/>
<bpmn:userTask id="review" tongban:assignee="${reviewer}"/>
<bpmn:userTask id="countersign" name="会签" tongban:candidateUnit="${unit}">
  <bpmn:multiInstanceLoopCharacteristics isSequential="false" tongban:collection="${units}" tongban:elementVariable="unit"/>
</bpmn:userTask>
<bpmn:userTask id="sign" tongban:assignee="${signer}"/>
<bpmn:endEvent id="e"/>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="countersign"/>
<bpmn:sequenceFlow id="f3" sourceRef="countersign" targetRef="sign"/>
<bpmn:sequenceFlow id="f4" sourceRef="sign" targetRef="e"/>"#,
    ))
}

/// Claims and completes the open countersign task of unit `unit` as `uid`.
fn countersign_as(inst: &mut Instance, d: &ProcessDefinition, unit: &str, uid: i64) -> Result<Vec<Effect>, EngineError> {
    let mine = units(&[unit]);
    let actor = Actor { user_id: uid, units: &mine, roles: &NOBODY };
    let t = inst
        .open_tasks()
        .find(|t| d.nodes[t.node].id == "countersign" && t.candidate_units == mine)
        .map(|t| t.id)
        .ok_or(EngineError::NoSuchTask)?;
    inst.claim(d, t, actor, 3)?;
    inst.complete(d, t, actor, Completion { opinion: Some(format!("{unit}无意见")), variables: Map::new() }, 4)
}

#[test]
fn countersign_makes_one_task_per_unit_and_waits_for_all() {
    let d = countersign_process();
    let start = json!({"reviewer": 1, "signer": 2, "units": [11, 12, "13", 12]});
    let (mut inst, _) = Instance::start(&d, vars(start), 9, 0).unwrap();
    do_task(&mut inst, &d, "review", 1, &NOBODY, json!({}));
    let open: Vec<Vec<String>> = inst.open_tasks().map(|t| t.candidate_units.clone()).collect();
    assert_eq!(open, vec![units(&["11"]), units(&["12"]), units(&["13"])], "one task per unit, duplicates once");
    // A unit cannot act on another unit's task.
    let t12 = inst.open_tasks().find(|t| t.candidate_units == units(&["12"])).map(|t| t.id).unwrap();
    let eleven = units(&["11"]);
    assert_eq!(inst.claim(&d, t12, Actor { user_id: 5, units: &eleven, roles: &NOBODY }, 3), Err(EngineError::NotAllowed));
    countersign_as(&mut inst, &d, "11", 5).unwrap();
    countersign_as(&mut inst, &d, "13", 7).unwrap();
    assert!(open_at(&inst, &d, "sign").is_empty(), "sign-off waits for the last unit");
    countersign_as(&mut inst, &d, "12", 6).unwrap();
    assert_eq!(open_at(&inst, &d, "sign").len(), 1);
    do_task(&mut inst, &d, "sign", 2, &NOBODY, json!({}));
    assert_eq!(inst.status, InstanceStatus::Completed);
}

#[test]
fn countersign_with_no_units_is_skipped() {
    let d = countersign_process();
    for units_value in [json!([]), json!(""), Value::Null] {
        let (mut inst, _) = Instance::start(&d, vars(json!({"reviewer": 1, "signer": 2, "units": units_value})), 9, 0).unwrap();
        do_task(&mut inst, &d, "review", 1, &NOBODY, json!({}));
        assert_eq!(open_at(&inst, &d, "sign").len(), 1);
        assert!(open_at(&inst, &d, "countersign").is_empty());
    }
}

#[test]
fn a_countersigning_unit_sends_back_and_every_unit_signs_again() {
    let d = countersign_process();
    let (mut inst, _) = Instance::start(&d, vars(json!({"reviewer": 1, "signer": 2, "units": "11,12"})), 9, 0).unwrap();
    do_task(&mut inst, &d, "review", 1, &NOBODY, json!({}));
    countersign_as(&mut inst, &d, "11", 5).unwrap();
    // Unit 12 disagrees: back to the reviewer; nothing is left open at 会签.
    let twelve = units(&["12"]);
    let t12 = inst.open_tasks().find(|t| t.candidate_units == twelve).map(|t| t.id).unwrap();
    let actor = Actor { user_id: 6, units: &twelve, roles: &NOBODY };
    inst.claim(&d, t12, actor, 3).unwrap();
    inst.send_back(&d, t12, actor, "review", Some("数据有误".into()), 4).unwrap();
    assert!(open_at(&inst, &d, "countersign").is_empty());
    assert_eq!(inst.tasks[&t12].status, TaskStatus::SentBack);
    do_task(&mut inst, &d, "review", 1, &NOBODY, json!({}));
    assert_eq!(open_at(&inst, &d, "countersign").len(), 2, "both units countersign the corrected draft");
    countersign_as(&mut inst, &d, "11", 5).unwrap();
    countersign_as(&mut inst, &d, "12", 6).unwrap();
    // The signer sends it back to 会签: each unit gets its task again, held by who signed before.
    let sign = one_open(&inst, &d, "sign");
    inst.send_back(&d, sign, user(2), "countersign", None, 5).unwrap();
    let again: Vec<(Vec<String>, Option<i64>)> = inst.open_tasks().map(|t| (t.candidate_units.clone(), t.assignee)).collect();
    assert_eq!(again, vec![(units(&["11"]), Some(5)), (units(&["12"]), Some(6))]);
}

#[test]
fn a_countersigner_withdraws_until_the_next_step_starts() {
    let d = countersign_process();
    let (mut inst, _) = Instance::start(&d, vars(json!({"reviewer": 1, "signer": 2, "units": [11, 12]})), 9, 0).unwrap();
    do_task(&mut inst, &d, "review", 1, &NOBODY, json!({}));
    countersign_as(&mut inst, &d, "11", 5).unwrap();
    let eleven = units(&["11"]);
    let t11 = inst.tasks.values().find(|t| t.candidate_units == eleven).map(|t| t.id).unwrap();
    let actor = Actor { user_id: 5, units: &eleven, roles: &NOBODY };
    inst.withdraw(&d, t11, actor, 5).unwrap();
    assert_eq!(inst.tasks[&t11].status, TaskStatus::Open, "reopened while unit 12 has not signed");
    inst.complete(&d, t11, actor, Completion::default(), 6).unwrap();
    countersign_as(&mut inst, &d, "12", 6).unwrap();
    // The last countersigner takes it back before the signer starts: only unit 12 redoes it.
    let twelve = units(&["12"]);
    let t12 = inst.tasks.values().find(|t| t.candidate_units == twelve).map(|t| t.id).unwrap();
    inst.withdraw(&d, t12, Actor { user_id: 6, units: &twelve, roles: &NOBODY }, 7).unwrap();
    assert!(open_at(&inst, &d, "sign").is_empty());
    let open: Vec<(Vec<String>, Option<i64>)> = inst.open_tasks().map(|t| (t.candidate_units.clone(), t.assignee)).collect();
    assert_eq!(open, vec![(twelve, Some(6))]);
}

#[test]
fn refuses_sequential_or_incomplete_multi_instance() {
    let task = |mi: &str| {
        bpmn(&format!(
            r#"<bpmn:startEvent id="s"/><bpmn:userTask id="t" tongban:candidateUnit="${{unit}}">{mi}</bpmn:userTask><bpmn:endEvent id="e"/>
<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/><bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>"#
        ))
    };
    let sequential =
        r#"<bpmn:multiInstanceLoopCharacteristics isSequential="true" tongban:collection="units" tongban:elementVariable="unit"/>"#;
    assert!(matches!(parse_bpmn(&task(sequential)).unwrap_err().kind, K::Unsupported(_)));
    let no_collection = r#"<bpmn:multiInstanceLoopCharacteristics tongban:elementVariable="unit"/>"#;
    assert_eq!(parse_bpmn(&task(no_collection)).unwrap_err().kind, K::BadAttribute("collection".into()));
    let no_element = r#"<bpmn:multiInstanceLoopCharacteristics tongban:collection="${units}"/>"#;
    assert_eq!(parse_bpmn(&task(no_element)).unwrap_err().kind, K::BadAttribute("elementVariable".into()));
    let early_end = r#"<bpmn:multiInstanceLoopCharacteristics tongban:collection="units" tongban:elementVariable="unit"><bpmn:completionCondition>${x}</bpmn:completionCondition></bpmn:multiInstanceLoopCharacteristics>"#;
    assert!(matches!(parse_bpmn(&task(early_end)).unwrap_err().kind, K::Unsupported(_)));
}

#[test]
fn only_a_step_whose_way_on_reads_the_decision_decides() {
    let d = def(PARALLEL);
    let decides = |id: &str| d.node_by_id(id).is_some_and(|n| d.decides(n));
    assert!(decides("Task_decide"), "the lead's step before the 准予？ gateway");
    for reviewer in ["Task_land", "Task_housing", "Task_market"] {
        assert!(!decides(reviewer), "{reviewer} only gives an opinion");
    }
    let d = def(&bpmn(TIMEOUT));
    assert!(d.nodes.iter().enumerate().all(|(i, _)| !d.decides(i)), "no condition reads the decision");
}
