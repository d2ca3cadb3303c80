//! Workflow and calendar benchmarks.
//!
//! - `workflow-engine`: the pure engine in-process, instances of the three-branch parallel process
//!   (fork → three user tasks → join → decision → end) started and driven to completion per second,
//!   beside SpiffWorkflow running the same BPMN file in the same run (ratio);
//! - `workflow-service`: the same process through `WorkflowService` (claims, completions, each one
//!   transaction with state, task projection, audit record and outbox events) on SQLite and
//!   PostgreSQL: instances completed per second;
//! - `calendar`: deadline computations (N working days after a date) per second.

use std::{process::Command, time::Instant};

use serde_json::{Map, Value, json};
use tongban_audit::Actor as AuditActor;
use tongban_workflow::{Actor, Completion, Instance, InstanceStatus, TaskAction, TaskList, parse_bpmn};

/// The process both engines run.
pub const FIXTURE: &str = "crates/workflow/tests/fixtures/parallel_approval.bpmn";

fn drive(def: &tongban_workflow::ProcessDefinition, units: &[Vec<String>]) -> anyhow::Result<usize> {
    let (mut inst, _) = Instance::start(def, Map::new(), 1, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let no_roles: [String; 0] = [];
    let mut done = 0;
    while inst.status == InstanceStatus::Running {
        let open: Vec<(u32, Vec<String>)> = inst.open_tasks().map(|t| (t.id, t.candidate_units.clone())).collect();
        for (id, cands) in open {
            let unit = units.iter().find(|u| cands.iter().any(|c| u.contains(c))).ok_or_else(|| anyhow::anyhow!("no unit"))?;
            let actor = Actor { user_id: 10 + id as i64, units: unit, roles: &no_roles };
            inst.claim(def, id, actor, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut vars = Map::new();
            vars.insert("approved".into(), Value::Bool(true));
            inst.complete(def, id, actor, Completion { opinion: None, variables: vars }, 2).map_err(|e| anyhow::anyhow!("{e}"))?;
            done += 1;
        }
    }
    Ok(done)
}

fn spiff(python: &str, count: usize) -> anyhow::Result<Value> {
    let out = Command::new(python).args(["bench/python/spiff_bench.py", FIXTURE, "parallel_approval", &count.to_string()]).output()?;
    anyhow::ensure!(out.status.success(), "SpiffWorkflow run failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// In-process engine throughput, with SpiffWorkflow beside it.
pub fn engine(count: usize, python: &str, spiff_count: usize) -> anyhow::Result<Value> {
    let xml = std::fs::read_to_string(FIXTURE)?;
    let def = parse_bpmn(&xml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let units: Vec<Vec<String>> =
        ["自然资源局", "住房和城乡建设局", "市场监督管理局", "行政审批服务局"].iter().map(|u| vec![u.to_string()]).collect();
    let tasks = drive(&def, &units)?;
    let t = Instant::now();
    for _ in 0..count {
        drive(&def, &units)?;
    }
    let ours = count as f64 / t.elapsed().as_secs_f64();
    let parse_t = Instant::now();
    for _ in 0..200 {
        parse_bpmn(&xml).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let parses = 200.0 / parse_t.elapsed().as_secs_f64();
    let peer = spiff(python, spiff_count)?;
    let theirs = peer["instances_per_second"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "benchmark": "workflow_engine_in_process",
        "process": "fork → 3 user tasks → join → decision → end (crates/workflow/tests/fixtures/parallel_approval.bpmn)",
        "per_instance": format!("start + {tasks} claims + {tasks} completions, one thread"),
        "tongban": {"instances": count, "instances_per_second": ours.round(), "bpmn_parses_per_second": parses.round()},
        "spiffworkflow": peer,
        "ratio": (ours / theirs).round(),
    }))
}

async fn service_run(url: String, count: usize) -> anyhow::Result<Value> {
    let (_dir, opened) = crate::audit::open_demo(url).await?;
    let ids = &opened.identity;
    let principal = |name: &'static str| {
        let ids = ids.clone();
        async move {
            let u = ids.user_by_username(name).await.map_err(|e| anyhow::anyhow!("{e}"))?.ok_or_else(|| anyhow::anyhow!("no {name}"))?;
            let p =
                ids.authz().principal(u.id).await.map_err(|e| anyhow::anyhow!("{e}"))?.ok_or_else(|| anyhow::anyhow!("no principal"))?;
            let actor = AuditActor {
                user_id: Some(u.id),
                name: name.into(),
                unit: p.unit_name.clone(),
                ip: "127.0.0.1".into(),
                user_agent: "bench".into(),
                purpose: String::new(),
            };
            anyhow::Ok((p, actor))
        }
    };
    let sys = principal("sysadmin").await?;
    let clerk = principal("liuyang").await?;
    let workers = [principal("zhoujun").await?, principal("xuhui").await?, principal("huangli").await?, principal("zhaomin").await?];
    let xml =
        std::fs::read_to_string(FIXTURE)?.replace("candidateUnit=\"行政审批服务局\"", "candidateUnit=\"行政审批服务局（政务服务中心）\"");
    let wf = &opened.workflow;
    wf.upload(&sys.0, &sys.1, &xml).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    for i in 0..count {
        let id = wf
            .start(&clerk.0, &clerk.1, "parallel_approval", &format!("基准测试 {i}"), "", Map::new())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (p, a) in &workers {
            let mine = wf.tasks(p, TaskList::Todo).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let task = mine.iter().find(|t| t.instance_id == id).ok_or_else(|| anyhow::anyhow!("{} has no task", a.name))?;
            wf.act(p, a, task.id, TaskAction::Claim).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut vars = Map::new();
            vars.insert("approved".into(), Value::Bool(true));
            wf.act(p, a, task.id, TaskAction::Complete { opinion: Some("同意".into()), variables: vars })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let rate = count as f64 / t.elapsed().as_secs_f64();
    let completed: i64 =
        sqlx::Row::get(&sqlx::query("SELECT COUNT(*) FROM wf_instances WHERE status = 'completed'").fetch_one(opened.db.pool()).await?, 0);
    anyhow::ensure!(completed == count as i64, "only {completed} of {count} completed");
    let engine = match opened.db.kind() {
        tongban_platform::DbKind::Sqlite => "sqlite",
        tongban_platform::DbKind::Postgres => "postgres",
    };
    opened.db.close().await;
    Ok(json!({"database": engine, "instances": count, "instances_completed_per_second": (rate * 10.0).round() / 10.0,
        "transactions_per_instance": 9, "to_do_queries_per_instance": 4}))
}

/// Instances completed per second through the service, on SQLite and PostgreSQL.
pub async fn service(count: usize, postgres: Option<&str>) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let mut results = vec![service_run(url, count).await?];
    if let Some(admin) = postgres {
        results.push(service_run(crate::audit::fresh_postgres(admin).await?, count).await?);
    }
    Ok(json!({
        "benchmark": "workflow_service_persisted",
        "per_instance": "start, then for each of 4 steps: to-do query, claim, complete (each action one transaction: state + tasks + audit + outbox)",
        "results": results,
    }))
}

/// Deadline computations per second on the official 2025–2026 calendar.
pub fn calendar(count: usize) -> anyhow::Result<Value> {
    let cal = tongban_calendar::Calendar::new(tongban_calendar::official_schedules());
    let start = time::Date::from_calendar_date(2025, time::Month::January, 1)?;
    let mut checksum = 0i64;
    let t = Instant::now();
    for i in 0..count {
        let day = start + time::Duration::days((i % 700) as i64);
        let n = 1 + (i % 60) as u32;
        if let Some(due) = cal.add_working_days(day, n) {
            checksum += i64::from(due.ordinal());
        }
    }
    let add_rate = count as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..count {
        let from = start + time::Duration::days((i % 700) as i64);
        let to = from + time::Duration::days((i % 90) as i64);
        checksum += cal.working_days_between(from, to);
    }
    let between_rate = count as f64 / t.elapsed().as_secs_f64();
    Ok(json!({
        "benchmark": "calendar_deadlines",
        "computations": count,
        "deadline_computations_per_second": add_rate.round(),
        "working_days_between_per_second": between_rate.round(),
        "checksum": checksum,
    }))
}
