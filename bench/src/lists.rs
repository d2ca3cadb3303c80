//! Benchmark (approval b): the to-do list and the supervision dashboard with 100,000 open tasks.
//! The tasks are written straight into the database of a demo install (seeding through the
//! service would take an hour); then the real server answers `/tasks` for a department member
//! and `/supervision` for the supervisor, and we record latency at a few connections.

use serde_json::json;
use tongban::boot::{load_demo, open};
use tongban_platform::{Config, clock::now_millis};

use crate::http::{load, log_in_as};

const UNITS: [&str; 6] = ["自然资源局", "住房和城乡建设局", "消防救援大队", "市场监督管理局", "卫生健康局", "人力资源和社会保障局"];

async fn seed(dir: &std::path::Path, tasks: usize, database_url: Option<&str>) -> anyhow::Result<()> {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    if let Some(url) = database_url {
        config.database.url = url.to_string();
    }
    let opened = open(config).await?;
    load_demo(&opened).await?;
    tongban::boot::load_demo_applications(&opened).await?;
    let db = &opened.db;
    let def: i64 = sqlx::Row::get(&sqlx::query("SELECT MIN(id) FROM wf_definitions").fetch_one(db.pool()).await?, 0);
    let now = now_millis();
    let today = time::OffsetDateTime::now_utc().date();
    let per_instance = 100;
    let mut tx = db.begin_write().await?;
    for i in 0..tasks.div_ceil(per_instance) {
        let inst: i64 = sqlx::Row::get(
            &sqlx::query(
                "INSERT INTO wf_instances (definition_id, business_key, title, status, state, revision, started_by, started_at) \
                 VALUES ($1, $2, $3, 'running', '{}', 1, 1, $4) RETURNING id",
            )
            .bind(def)
            .bind(format!("BENCH{i:06}"))
            .bind(format!("基准办件 {i}"))
            .bind(now)
            .fetch_one(tx.conn())
            .await?,
            0,
        );
        for j in 0..per_instance {
            let n = i * per_instance + j;
            let due = today + time::Duration::days((n % 60) as i64 - 20);
            let due = format!("{:04}-{:02}-{:02}", due.year(), u8::from(due.month()), due.day());
            let id: i64 = sqlx::Row::get(
                &sqlx::query(
                    "INSERT INTO wf_tasks (instance_id, task_no, node_id, name, status, created_at, due_on, alert, queue_unit) \
                     VALUES ($1, $2, 'review', '材料审查', 'open', $3, $4, 0, $5) RETURNING id",
                )
                .bind(inst)
                .bind(j as i64 + 1)
                .bind(now)
                .bind(due)
                .bind(UNITS[n % UNITS.len()])
                .fetch_one(tx.conn())
                .await?,
                0,
            );
            sqlx::query("INSERT INTO wf_task_candidates (task_id, kind, value) VALUES ($1, 'unit', $2)")
                .bind(id)
                .bind(UNITS[n % UNITS.len()])
                .execute(tx.conn())
                .await?;
        }
        if i % 50 == 49 {
            tx.commit().await?;
            tx = db.begin_write().await?;
        }
    }
    tx.commit().await?;
    if database_url.is_some() {
        // A live PostgreSQL has planner statistics (autovacuum analyses as rows arrive); a bulk
        // load measured at once would not, and would be timed on plans made blind. (On SQLite
        // the server refreshes them itself at start.)
        sqlx::query("ANALYZE").execute(db.pool()).await?;
    }
    opened.db.close().await;
    Ok(())
}

/// Seeds `tasks` open tasks, starts the server on that data, measures both pages; on SQLite,
/// then on a fresh PostgreSQL database when `postgres` (an admin URL) is given.
pub async fn run(bin: &str, tasks: usize, connections: usize, seconds: u64, postgres: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let mut results = vec![measure(bin, tasks, connections, seconds, None).await?];
    if let Some(admin) = postgres {
        let url = crate::audit::fresh_postgres(admin).await?;
        results.push(measure(bin, tasks, connections, seconds, Some(&url)).await?);
    }
    Ok(json!({"benchmark": "todo_and_supervision_lists", "results": results}))
}

async fn measure(
    bin: &str,
    tasks: usize,
    connections: usize,
    seconds: u64,
    database_url: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let t = std::time::Instant::now();
    seed(dir.path(), tasks, database_url).await?;
    let seeded_in = t.elapsed().as_secs_f64();
    let server = crate::server::start_in(bin, dir, database_url).await?;
    let staff = log_in_as(&server.addr, "zhoujun").await?;
    let todo = load(&server.addr, "/tasks", &staff, connections, seconds).await?;
    let todo_api = load(&server.addr, "/api/v1/workflow/tasks", &staff, connections, seconds).await?;
    let supervisor = log_in_as(&server.addr, "jiangwei").await?;
    let dashboard = load(&server.addr, "/supervision", &supervisor, connections, seconds).await?;
    Ok(json!({
        "open_tasks": tasks,
        "seeded_in_seconds": (seeded_in * 10.0).round() / 10.0,
        "connections": connections,
        "seconds_each": seconds,
        "database": if database_url.is_some() { "postgres" } else { "sqlite" },
        "todo_page": todo,
        "todo_api": todo_api,
        "supervision_dashboard": dashboard,
        "note": "the to-do list of a department member (1/6 of the tasks are claimable by the unit; the first page of 200, most urgent first, is listed); the dashboard aggregates every open task",
    }))
}
