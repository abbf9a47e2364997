use crate::helpers::{TestApp, question, urlencode};
use serde_json::{Value, json};

/// Titles of the top three hits.
async fn top3(app: &TestApp, q: &str) -> Vec<String> {
    app.search_titles(q, "&limit=3").await
}

#[tokio::test]
async fn each_query_finds_its_question_in_the_top_three() {
    let app = TestApp::seeded().await;
    let cases = [
        // Identifiers and mixed Chinese/English, any case.
        ("sync.Map", "sync.Map 了解吗？"),
        ("SYNC.MAP", "sync.Map 了解吗？"),
        ("GMP", "GMP 指的是什么？"),
        ("gmp", "GMP 指的是什么？"),
        ("WaitGroup", "WaitGroup 的原理？"),
        ("waitgroup 原理", "WaitGroup 的原理？"),
        ("new 和make", "new 和make的区别？"),
        ("new和make的区别", "new 和make的区别？"),
        ("hmap bmap", "map 的底层原理是什么？"),
        ("GOMAXPROCS", "GMP 指的是什么？"),
        ("CAP", "CAP 是什么？"),
        ("一致性hash", "一致性hash是什么？"),
        ("zookeeper", "zookeeper 分布式锁"),
        // Chinese segmented into words.
        ("三色标记", "GC 机制 ？"),
        ("写屏障", "GO的GC是如何工作的？"),
        ("读写锁", "RWMutex 实现？"),
        ("切片扩容", "数组和切片的区别是什么？"),
        ("内存逃逸", "知道 golang 的内存逃逸吗？"),
        ("上下文切换", "go协程上下文切换什么？"),
        ("环形缓冲区", "channel 是什么？"),
        ("最终一致性", "最终一致性解决方案"),
        ("分布式锁", "zookeeper 分布式锁"),
        // Words in another order than in the text.
        ("make new", "new 和make的区别？"),
        ("bmap hmap", "map 的底层原理是什么？"),
        ("回收垃圾", "你能说说go语言中的垃圾回么？"),
        ("扩容 切片", "数组和切片的区别是什么？"),
        ("hash 一致性", "一致性hash是什么？"),
        // Typos in Latin words.
        ("waitgrop", "WaitGroup 的原理？"),
        ("zookeper", "zookeeper 分布式锁"),
        ("GOMAXPROC", "GMP 指的是什么？"),
        ("chanel", "channel 是什么？"),
    ];
    let mut misses = Vec::new();
    for (q, expected) in cases {
        let got = top3(&app, q).await;
        if !got.iter().any(|t| t == expected) {
            misses.push(format!("{q:?} → {got:?}, wanted {expected:?}"));
        }
    }
    assert!(misses.is_empty(), "missed:\n{}", misses.join("\n"));
}

#[tokio::test]
async fn exact_matches_rank_above_typo_matches_and_full_matches_above_partial_ones() {
    let app = TestApp::empty().await;
    let typo = app.create_question(question("about the mutexs")).await;
    let exact = app.create_question(question("about the mutex")).await;
    let ids = app.search_ids("mutex", "").await;
    assert_eq!(
        ids,
        vec![exact["id"].as_i64().unwrap(), typo["id"].as_i64().unwrap()]
    );

    let both = app.create_question(question("channel 和 select")).await;
    let one = app
        .create_question(question("select select select select"))
        .await;
    let ids = app.search_ids("select channel", "").await;
    assert_eq!(ids[0], both["id"].as_i64().unwrap());
    assert!(
        ids.contains(&one["id"].as_i64().unwrap()),
        "partial matches still come back"
    );
}

#[tokio::test]
async fn filters_narrow_hits_and_facets_count_every_match() {
    let app = TestApp::seeded().await;
    let all = app
        .get(&format!(
            "/api/v1/search?q={}&limit=100",
            urlencode("一致性")
        ))
        .await
        .json();
    let total = all["total"].as_u64().unwrap();
    assert!(total >= 3);
    assert_eq!(all["total_exact"], true, "few matches are counted exactly");
    assert_eq!(all["facets_exact"], true);
    let facet_sum: u64 = all["facets"]["category"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(facet_sum, total);
    let diff_sum: u64 = all["facets"]["difficulty"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(diff_sum, total);
    assert!(all["facets"]["tag"]["consistency"].as_u64().unwrap() >= 3);

    let page = app
        .get(&format!("/api/v1/search?q={}&limit=1", urlencode("一致性")))
        .await
        .json();
    assert_eq!(page["hits"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["total"], total,
        "total and facets cover the whole result set, not the page"
    );
    assert_eq!(page["facets"], all["facets"]);

    let filtered = app
        .get(&format!(
            "/api/v1/search?q={}&category=distributed&difficulty=medium&tag=cache",
            urlencode("一致性")
        ))
        .await
        .json();
    let hits = filtered["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        assert_eq!(h["question"]["category"]["slug"], "distributed");
        assert_eq!(h["question"]["difficulty"], "medium");
        assert!(
            h["question"]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("cache"))
        );
    }
    assert_eq!(
        filtered["facets"]["category"],
        json!({"distributed": hits.len()})
    );
    let none = app
        .get("/api/v1/search?q=GMP&category=distributed")
        .await
        .json();
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn highlights_mark_matches_and_escape_everything_else() {
    let app = TestApp::seeded().await;
    let r = app.get("/api/v1/search?q=sync.Map").await.json();
    let hit = &r["hits"][0];
    assert_eq!(r["query"], "sync.Map");
    assert_eq!(hit["highlights"]["title"], "<mark>sync.Map</mark> 了解吗？");
    assert!(
        hit["highlights"]["answer"]
            .as_str()
            .unwrap()
            .contains("<mark>")
    );
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    assert!(r["took_ms"].is_u64());

    app.create_question(json!({
        "title": "<script>alert('xss')</script> 注入 & \"quotes\"",
        "category": "golang",
        "answers": [{"body": "<img src=x onerror=alert(1)> 注入攻击"}]
    }))
    .await;
    let r = app
        .get(&format!("/api/v1/search?q={}", urlencode("注入")))
        .await
        .json();
    let title = r["hits"][0]["highlights"]["title"].as_str().unwrap();
    let answer = r["hits"][0]["highlights"]["answer"].as_str().unwrap();
    assert_eq!(
        title,
        "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; <mark>注入</mark> &amp; &quot;quotes&quot;"
    );
    assert!(
        answer.starts_with("&lt;img src=x onerror=alert(1)&gt; <mark>注入</mark>"),
        "{answer}"
    );
    let stripped = title.replace("<mark>", "").replace("</mark>", "")
        + &answer.replace("<mark>", "").replace("</mark>", "");
    assert!(!stripped.contains('<') && !stripped.contains('>'));
}

#[tokio::test]
async fn a_match_deep_in_a_long_answer_is_highlighted_where_it_is() {
    let app = TestApp::seeded().await;
    let filler = "这一段只是铺垫文字。".repeat(4000);
    app.create_question(json!({
        "title": "长答案里的关键点",
        "category": "golang",
        "answers": [{"body": format!("{filler}真正的要点是 hyperthreading 的调度。")}]
    }))
    .await;
    let r = app.get("/api/v1/search?q=hyperthreading").await.json();
    let answer = r["hits"][0]["highlights"]["answer"].as_str().unwrap();
    assert!(answer.starts_with('…'), "{answer}");
    assert!(answer.contains("<mark>hyperthreading</mark>"), "{answer}");
    assert!(answer.chars().count() < 400, "a fragment, not the answer");
}

#[tokio::test]
async fn a_write_is_searchable_when_it_returns_and_a_delete_never_shows_again() {
    let app = TestApp::seeded().await;
    let q = app
        .create_question(json!({"title": "量子纠缠 调度器是什么？", "category": "golang"}))
        .await;
    let id = q["id"].as_i64().unwrap();
    assert_eq!(app.search_ids("量子纠缠", "").await, vec![id]);

    let uri = format!("/api/v1/questions/{id}");
    app.patch(&uri, json!({"title": "薛定谔 调度器是什么？"}), None)
        .await;
    assert!(!app.search_ids("量子纠缠", "").await.contains(&id));
    assert_eq!(app.search_ids("薛定谔", "").await, vec![id]);

    app.post(
        &format!("{uri}/answers"),
        json!({"body": "它用 hyperthreading 工作"}),
    )
    .await;
    assert_eq!(app.search_ids("hyperthreading", "").await, vec![id]);
    app.patch(&uri, json!({"tags": ["quantum"]}), None).await;
    assert_eq!(app.search_ids("quantum", "&tag=quantum").await, vec![id]);

    app.delete(&uri, None).await;
    assert!(app.search_ids("薛定谔", "").await.is_empty());
    assert!(app.search_ids("hyperthreading", "").await.is_empty());
}

#[tokio::test]
async fn bad_search_input_is_a_clean_4xx_and_odd_text_is_just_text() {
    let app = TestApp::seeded().await;
    app.get("/api/v1/search")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/search?q=")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/search?q=%20%20")
        .await
        .assert_problem(422, "validation_failed");
    app.get(&format!("/api/v1/search?q={}", "a".repeat(501)))
        .await
        .assert_problem(422, "validation_failed");
    for bad in [
        "limit=0",
        "limit=101",
        "offset=-1",
        "offset=10001",
        "category=BAD%20SLUG",
        "difficulty=nope",
    ] {
        app.get(&format!("/api/v1/search?q=gc&{bad}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    assert_eq!(
        app.get("/api/v1/search?q=gc&offset=10000").await.json()["hits"],
        json!([])
    );

    let odd = [
        "\"unbalanced",
        "+-:()*~^[]{}",
        "title:GMP",
        "AND OR NOT",
        "gc AND",
        "*",
        "?",
        "\\",
        "/",
        "'; DROP TABLE questions; --",
        "😀🔥",
        "\u{200b}\u{200c}\u{feff}",
        "a\u{0}b",
        "<mark>",
        "%",
        "GMP~2",
        "\"GMP\"",
        "[1 TO 5]",
        "sync.Map(",
        "％＋－",
    ];
    for q in odd {
        let r = app.get(&format!("/api/v1/search?q={}", urlencode(q))).await;
        assert_eq!(r.status, 200, "{q:?}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["hits"].is_array());
    }
    let long_cjk = "垃圾回收机制并发安全".repeat(40);
    assert_eq!(long_cjk.chars().count(), 400);
    let r = app
        .get(&format!("/api/v1/search?q={}", urlencode(&long_cjk)))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["total"].as_u64().unwrap() > 0);
    let title = app
        .get(&format!("/api/v1/search?q={}", urlencode("title:GMP")))
        .await
        .json();
    assert_eq!(
        title["hits"][0]["question"]["title"], "GMP 指的是什么？",
        "field syntax is plain text"
    );
}

#[tokio::test]
async fn suggest_completes_a_partly_typed_title() {
    let app = TestApp::seeded().await;
    let titles = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap().to_string())
            .collect()
    };
    let s = titles(
        app.get(&format!(
            "/api/v1/search/suggest?q={}",
            urlencode("sync.Ma")
        ))
        .await
        .json(),
    );
    assert_eq!(s[0], "sync.Map 了解吗？");
    let s = titles(app.get("/api/v1/search/suggest?q=GM").await.json());
    assert!(s.contains(&"GMP 指的是什么？".to_string()), "{s:?}");
    let s = titles(app.get("/api/v1/search/suggest?q=Wait").await.json());
    assert_eq!(s, ["WaitGroup 的原理？"]);
    let s = titles(
        app.get(&format!("/api/v1/search/suggest?q={}", urlencode("垃圾回")))
            .await
            .json(),
    );
    assert!(
        s.contains(&"你能说说go语言中的垃圾回么？".to_string()),
        "{s:?}"
    );
    let gc = app.get("/api/v1/search/suggest?q=GC").await.json();
    let n = gc.as_array().unwrap().len();
    assert!((5..=10).contains(&n), "{n}");
    assert!(gc[0]["id"].as_i64().is_some());
    assert_eq!(
        app.get("/api/v1/search/suggest?q=GC&limit=2")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.get("/api/v1/search/suggest")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/search/suggest?q=gc&limit=11")
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        app.get("/api/v1/search/suggest?q=%2B%2B").await.json(),
        json!([])
    );
}

#[tokio::test]
async fn similar_questions_are_related_and_never_the_question_itself() {
    let app = TestApp::seeded().await;
    let all = app.list_all("limit=100").await;
    let id_of = |title: &str| {
        all.iter().find(|q| q["title"] == title).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let gc = id_of("GC 是怎么实现的？");
    let r = app
        .get(&format!("/api/v1/questions/{gc}/similar?limit=5"))
        .await;
    assert_eq!(r.status, 200);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty() && items.len() <= 5);
    let ids: Vec<i64> = items
        .iter()
        .map(|i| i["question"]["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&gc));
    let gc_family = [
        "GC 机制 ？",
        "GC 的流程是什么？",
        "GO的GC是如何工作的？",
        "你能说说go语言中的垃圾回么？",
        "GC 的触发时机？",
        "GC 如何调优？",
    ];
    let top: Vec<&str> = items
        .iter()
        .take(3)
        .map(|i| i["question"]["title"].as_str().unwrap())
        .collect();
    assert!(top.iter().any(|t| gc_family.contains(t)), "{top:?}");
    app.get("/api/v1/questions/99999/similar")
        .await
        .assert_problem(404, "question_not_found");
    app.get(&format!("/api/v1/questions/{gc}/similar?limit=51"))
        .await
        .assert_problem(422, "validation_failed");
}

async fn survives(meddle: impl FnOnce(&std::path::Path)) {
    let app = TestApp::seeded().await;
    let q = app
        .create_question(json!({"title": "重建之后还在吗 rebuildcheck", "category": "golang"}))
        .await;
    let before = app.search_ids("GC", "&limit=100").await;
    let app = app.restart(meddle).await;
    assert_eq!(app.search_ids("GC", "&limit=100").await, before);
    assert_eq!(
        app.search_ids("rebuildcheck", "").await,
        vec![q["id"].as_i64().unwrap()]
    );
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn a_missing_index_directory_is_rebuilt_from_the_database() {
    survives(|dir| std::fs::remove_dir_all(dir.join("index")).unwrap()).await;
}

#[tokio::test]
async fn a_corrupt_index_is_rebuilt_not_fatal() {
    survives(|dir| std::fs::write(dir.join("index/meta.json"), b"{ not json").unwrap()).await;
}

#[tokio::test]
async fn an_index_with_missing_segment_files_is_rebuilt() {
    survives(|dir| {
        for entry in std::fs::read_dir(dir.join("index")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "idx") {
                std::fs::remove_file(path).unwrap();
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_index_of_another_schema_version_is_rebuilt() {
    survives(|dir| {
        let meta = dir.join("index/meta.json");
        let text = std::fs::read_to_string(&meta).unwrap();
        assert!(text.contains(r#"\"schema\":1"#), "{text}");
        std::fs::write(&meta, text.replace(r#"\"schema\":1"#, r#"\"schema\":0"#)).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_plain_restart_keeps_search_working() {
    survives(|_| {}).await;
}
