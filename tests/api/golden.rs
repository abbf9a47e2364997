//! Golden rankings: the exact hits (question ids and scores, bit for bit), totals, facets,
//! highlights and explanations of a fixed list of searches (and suggestions) over the seed
//! knowledge base and the GNOME help pages, compared with `tests/golden/`. The relevance floors tolerate small
//! changes; these do not, so a refactoring of the search code that claims to change nothing
//! can show that it changed nothing.
//!
//! A deliberate ranking change rewrites the files: `KB_GOLDEN_WRITE=1 cargo test golden`, then
//! read the diff before committing it.

use crate::helpers::{TestApp, urlencode};
use crate::relevance::help_app;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

/// Searches over the seed: (what is typed, the rest of the query string).
const SEED_SEARCHES: &[(&str, &str)] = &[
    ("sync.Map", ""),
    ("SYNC.MAP", ""),
    ("GMP", ""),
    ("gmp 调度", ""),
    ("new 和make", ""),
    ("new和make的区别", ""),
    ("垃圾回收", ""),
    ("回收垃圾", ""),
    ("协程", ""),
    ("goroutine 调度器", ""),
    ("Go语言的垃圾回收机制是怎样的？", ""),
    ("写屏障 三色标记", ""),
    ("一致性hash", ""),
    ("分布式锁", ""),
    ("mutex RWMutex 读写锁", ""),
    ("hmap bmap", ""),
    ("什么是 channel select 死锁", ""),
    ("并发 goroutine channel mutex sync 内存 GC 调度", ""),
    // Typos.
    ("waitgrop", ""),
    ("chanel", ""),
    ("zookeper", ""),
    ("GOMAXPROC", ""),
    // Single characters, and text nothing matches as typed.
    ("锁", ""),
    ("哈", ""),
    ("的", ""),
    ("qzxvbnw", ""),
    ("垃圾回 qzxvbnw", ""),
    // Filters and pages.
    ("一致性", "&category=distributed"),
    ("一致性", "&tag=consistency"),
    ("GC", "&difficulty=hard"),
    ("协程", "&category=distributed"),
    ("内存", "&offset=2&limit=3"),
    ("go", "&offset=5&limit=5"),
    ("GC", "&category=golang&difficulty=medium&offset=1&limit=4"),
];

/// Searches over the help pages besides the relevance queries (which are all run too).
const HELP_SEARCHES: &[(&str, &str)] = &[
    ("wifi", "&offset=3&limit=5"),
    ("蓝牙", "&category=bluetooth"),
    ("打印机", "&category=printing&offset=1&limit=3"),
    ("电", ""),
    ("bluetoth", ""),
    ("屏幕 亮度", "&limit=20"),
];

const SUGGEST: &[&str] = &["sync", "go", "分布", "GM", "垃圾回", "new 和"];

/// Bit-exact and readable: the shortest text that reads back as the same `f32`.
fn score(v: &Value) -> String {
    format!("{:?}", v.as_f64().expect("a score") as f32)
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// One search's pinned outcome. `page_of` names help pages; `detail` adds facets,
/// highlights and explanations (of the first three hits).
async fn record(
    app: &TestApp,
    q: &str,
    extra: &str,
    page_of: Option<&HashMap<i64, String>>,
    detail: bool,
) -> Value {
    let explain = if detail { "&explain=true" } else { "" };
    let r = app
        .get(&format!(
            "/api/v1/search?q={}{extra}{explain}",
            urlencode(q)
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let hits = body["hits"].as_array().unwrap();
    let mut out = Map::new();
    out.insert("search".into(), json!(format!("{q}{extra}")));
    out.insert("total".into(), body["total"].clone());
    out.insert("total_exact".into(), body["total_exact"].clone());
    out.insert("relaxed".into(), body["relaxed"].clone());
    let ranked: Vec<Value> = hits
        .iter()
        .map(|h| {
            let id = h["question"]["id"].as_i64().unwrap();
            let page = page_of.map_or(String::new(), |p| format!(" {}", p[&id]));
            json!(format!("{id}{page} {}", score(&h["score"])))
        })
        .collect();
    out.insert("hits".into(), json!(ranked));
    if detail {
        out.insert("facets".into(), body["facets"].clone());
        let top: Vec<Value> = hits
            .iter()
            .take(3)
            .map(|h| {
                let parts: Vec<Value> = h["explain"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        json!({
                            "part": p["part"],
                            "score": score(&p["score"]),
                            "details": p["details"],
                        })
                    })
                    .collect();
                json!({
                    "id": h["question"]["id"],
                    "highlights": h["highlights"],
                    "explain": parts,
                })
            })
            .collect();
        out.insert("top".into(), json!(top));
    }
    Value::Object(out)
}

/// Compares `actual` with the golden file `name`, or rewrites it under `KB_GOLDEN_WRITE=1`.
fn check(name: &str, actual: &[Value]) {
    let path = golden_path(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("KB_GOLDEN_WRITE").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (KB_GOLDEN_WRITE=1 writes it)", path.display())),
    )
    .unwrap();
    let mut diffs = Vec::new();
    for (i, (want, got)) in expected.iter().zip(actual).enumerate() {
        if want != got {
            diffs.push(format!(
                "#{i} expected:\n{}\ngot:\n{}",
                serde_json::to_string_pretty(want).unwrap(),
                serde_json::to_string_pretty(got).unwrap()
            ));
        }
    }
    assert!(diffs.is_empty(), "{name}:\n{}", diffs.join("\n\n"));
    assert_eq!(expected.len(), actual.len(), "{name}: number of cases");
}

#[tokio::test]
async fn seed_searches_rank_exactly_as_recorded() {
    let app = TestApp::seeded().await;
    let mut actual = Vec::new();
    for (q, extra) in SEED_SEARCHES {
        actual.push(record(&app, q, extra, None, true).await);
    }
    for q in SUGGEST {
        let r = app
            .get(&format!("/api/v1/search/suggest?q={}", urlencode(q)))
            .await;
        assert_eq!(r.status, 200);
        let ids: Vec<Value> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect();
        actual.push(json!({"suggest": q, "ids": ids}));
    }
    // `similar` is not pinned: which terms tantivy's MoreLikeThis keeps once past its term
    // limit depends on `HashMap` iteration order, so its scores (and order) vary from run to run.
    check("search-seed.json", &actual);
}

#[tokio::test]
async fn help_page_searches_rank_exactly_as_recorded() {
    let (app, page_of) = help_app().await;
    let mut actual = Vec::new();
    let relevance = crate::relevance::queries();
    let searches = relevance
        .iter()
        .map(|(q, _)| (*q, "&limit=10"))
        .chain(HELP_SEARCHES.iter().copied());
    for (q, extra) in searches {
        actual.push(record(&app, q, extra, Some(&page_of), false).await);
    }
    check("search-gnome-help.json", &actual);
}
