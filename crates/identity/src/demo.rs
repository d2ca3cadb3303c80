//! The demo county (演示数据): 嘉禾县, Hunan (GB/T 2260 431024, under 郴州市 4310 and 湖南省 43),
//! its ten towns with their statistical division codes, 30 units and a dozen staff with
//! realistic roles. Loaded once by `tongban serve --demo` on an empty database.

use serde_json::json;
use sqlx::Row;
use tongban_audit::{Actor, Entry};
use tongban_platform::{WriteTx, clock::now_millis, error::DomainResult};

use crate::{
    model::{NewUser, Region, Unit, UnitInput, UnitKind, UserProfile},
    regions::upsert_region,
    service::IdentityService,
    setup::grant_builtin,
    users::insert_user_hashed,
};

/// The password of every demo account. Demo data only: never use `--demo` in production.
pub const DEMO_PASSWORD: &str = "Jiahe@2026";

/// The ten towns of 嘉禾县 with their codes.
pub const TOWNS: [(&str, &str); 10] = [
    ("431024100", "珠泉镇"),
    ("431024102", "塘村镇"),
    ("431024103", "袁家镇"),
    ("431024104", "行廊镇"),
    ("431024106", "龙潭镇"),
    ("431024107", "石桥镇"),
    ("431024108", "坦坪镇"),
    ("431024110", "广发镇"),
    ("431024111", "晋屏镇"),
    ("431024201", "普满乡"),
];

const DEPARTMENTS: [&str; 17] = [
    "县政府办公室",
    "发展和改革局",
    "教育局",
    "公安局",
    "财政局",
    "人力资源和社会保障局",
    "自然资源局",
    "住房和城乡建设局",
    "消防救援大队",
    "交通运输局",
    "农业农村局",
    "卫生健康局",
    "市场监督管理局",
    "行政审批服务局（政务服务中心）",
    "12345政务服务便民热线中心",
    "信息中心",
    "县纪委监委",
];

const SUB_UNITS: [(&str, &str); 3] =
    [("行政审批服务局（政务服务中心）", "综合受理窗口"), ("公安局", "珠泉派出所"), ("市场监督管理局", "塘村市场监督管理所")];

/// (user name, real name, unit, position, role, scope)
const STAFF: [(&str, &str, &str, &str, &str, &str); 14] = [
    ("sysadmin", "王建国", "信息中心", "系统管理员", "sys_admin", "all"),
    ("secadmin", "李红梅", "信息中心", "安全管理员", "sec_admin", "all"),
    ("auditor", "陈志强", "县纪委监委", "安全审计员", "auditor", "all"),
    ("jiangwei", "蒋巍", "县纪委监委", "电子监察员", "supervisor", "all"),
    ("zhangwei", "张伟", "县政府办公室", "主任", "staff", "unit"),
    ("zhaomin", "赵敏", "行政审批服务局（政务服务中心）", "办公室主任（单位管理员）", "unit_admin", "subtree"),
    ("liuyang", "刘洋", "综合受理窗口", "窗口受理员", "window_clerk", "self"),
    ("huangli", "黄丽", "市场监督管理局", "登记注册科科员", "staff", "self"),
    ("zhoujun", "周军", "自然资源局", "副局长", "staff", "unit"),
    ("xuhui", "徐辉", "住房和城乡建设局", "审批科科长", "staff", "unit"),
    ("fangyuan", "方圆", "消防救援大队", "防火监督员", "staff", "unit"),
    ("wufang", "吴芳", "12345政务服务便民热线中心", "话务员", "staff", "self"),
    ("sunqiang", "孙强", "珠泉镇", "镇长", "staff", "unit"),
    ("heping", "何平", "卫生健康局", "医政科科员", "staff", "self"),
];

/// One demo log-in to print.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// Log-in name.
    pub username: String,
    /// Real name.
    pub display_name: String,
    /// Unit.
    pub unit: String,
    /// Role code.
    pub role: String,
}

/// Loads the demo county unless it (or any account) is already there. Returns the log-ins
/// created, or `None` when nothing was loaded.
pub async fn load(svc: &IdentityService) -> DomainResult<Option<Vec<DemoLogin>>> {
    if svc.has_users().await? {
        return Ok(None);
    }
    // Every demo account has the same password: hash it once, outside the transaction (argon2
    // is slow on purpose).
    let hash = tongban_crypto::password::hash_password(DEMO_PASSWORD).map_err(tongban_platform::DomainError::Internal)?;
    let mut tx = svc.db.begin_write().await?;
    for r in regions() {
        upsert_region(&mut tx, &r).await?;
    }
    let root = add_unit(svc, &mut tx, None, "嘉禾县人民政府", UnitKind::Government, Some("431024"), 0).await?;
    let mut units: Vec<Unit> = vec![root.clone()];
    for (i, name) in DEPARTMENTS.iter().enumerate() {
        units.push(add_unit(svc, &mut tx, Some(&root), name, UnitKind::Department, None, i as i64 + 1).await?);
    }
    for (i, (code, name)) in TOWNS.iter().enumerate() {
        units.push(add_unit(svc, &mut tx, Some(&root), name, UnitKind::Town, Some(code), 100 + i as i64).await?);
    }
    for (parent, name) in SUB_UNITS {
        let Some(p) = units.iter().find(|u| u.name == parent).cloned() else {
            continue;
        };
        units.push(add_unit(svc, &mut tx, Some(&p), name, UnitKind::SubUnit, None, 0).await?);
    }
    let mut logins = Vec::new();
    for (username, display_name, unit_name, position, role, scope) in STAFF {
        let Some(unit) = units.iter().find(|u| u.name == unit_name) else {
            continue;
        };
        let profile = UserProfile { email: format!("{username}@jiahe.gov.cn"), ..UserProfile::new(display_name, unit.id, position) };
        let input = NewUser { username: username.into(), profile };
        let id = insert_user_hashed(&mut tx, &input, &hash, false).await?;
        grant_builtin(&mut tx, id, role, scope).await?;
        if role == "unit_admin" {
            grant_builtin(&mut tx, id, "staff", "unit").await?;
        }
        logins.push(DemoLogin { username: username.into(), display_name: display_name.into(), unit: unit_name.into(), role: role.into() });
    }
    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ('demo_loaded', 'jiahe-431024', $1)")
        .bind(now_millis())
        .execute(tx.conn())
        .await?;
    let details = json!({"county": "431024", "units": units.len(), "users": logins.len()});
    svc.audit.append(&mut tx, &Actor::system("demo"), Entry::success("demo.load", "county", "431024", details)).await?;
    tx.commit().await?;
    Ok(Some(logins))
}

async fn add_unit(
    svc: &IdentityService,
    tx: &mut WriteTx,
    parent: Option<&Unit>,
    name: &str,
    kind: UnitKind,
    region: Option<&str>,
    sort: i64,
) -> DomainResult<Unit> {
    let input = UnitInput {
        parent_id: parent.map(|p| p.id),
        name: name.into(),
        kind: kind.as_str().into(),
        region_code: region.map(String::from),
        sort_order: sort,
    };
    let id = svc.insert_unit(tx, parent, &input, kind).await?;
    let path: String = sqlx::query("SELECT path FROM units WHERE id = $1").bind(id).fetch_one(tx.conn()).await?.get(0);
    Ok(Unit {
        id,
        parent_id: parent.map(|p| p.id),
        depth: 0,
        path,
        name: name.into(),
        kind,
        region_code: input.region_code,
        sort_order: sort,
        enabled: true,
    })
}

fn regions() -> Vec<Region> {
    let mut out = vec![
        Region { code: "43".into(), name: "湖南省".into(), parent_code: None, level: 1 },
        Region { code: "4310".into(), name: "郴州市".into(), parent_code: Some("43".into()), level: 2 },
        Region { code: "431024".into(), name: "嘉禾县".into(), parent_code: Some("4310".into()), level: 3 },
    ];
    out.extend(TOWNS.iter().map(|(code, name)| Region {
        code: (*code).into(),
        name: (*name).into(),
        parent_code: Some("431024".into()),
        level: 4,
    }));
    out
}
