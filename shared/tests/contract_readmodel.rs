//! The read-model contract, run against SQLite and DynamoDB (moto).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use parley_shared::StoreError;
use parley_shared::readmodel::{Index, IndexEntry, Query, View, ViewStore};
use serde_json::json;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

async fn puts_gets_and_counts_revisions(store: Arc<dyn ViewStore>) {
    let key = unique("call");
    assert_eq!(store.get("calls", &key).await.unwrap(), None);
    let view = View::new("calls", &key, json!({"status": "ringing"}))
        .with_index1(IndexEntry::new("calls#t1", "2026-01-01T10:00:00Z#1"));
    assert_eq!(store.put(&view, Some(0)).await.unwrap(), 1);
    let stored = store.get("calls", &key).await.unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.body, json!({"status": "ringing"}));
    assert_eq!(stored.index1, view.index1);
    assert_eq!(stored.index2, None);
    // Another collection with the same key is another view.
    assert_eq!(store.get("leads", &key).await.unwrap(), None);

    let mut next = stored.clone();
    next.body = json!({"status": "completed"});
    assert_eq!(store.put(&next, Some(1)).await.unwrap(), 2);
    for expected in [0, 1, 5] {
        match store.put(&next, Some(expected)).await {
            Err(StoreError::Conflict {
                expected: e,
                actual,
                ..
            }) => assert_eq!((e, actual), (expected, 2)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        store.put(&next, None).await.unwrap(),
        3,
        "unconditional put"
    );
    assert_eq!(store.get("calls", &key).await.unwrap().unwrap().revision, 3);
    store.delete("calls", &key).await.unwrap();
    store.delete("calls", &key).await.unwrap();
    assert_eq!(store.get("calls", &key).await.unwrap(), None);
}

async fn queries_an_index_in_order_page_by_page(store: Arc<dyn ViewStore>) {
    let tenant = unique("tenant");
    let other = unique("tenant");
    for i in 0..23 {
        let view = View::new("calls", unique("c"), json!({"i": i}))
            .with_index1(IndexEntry::new(
                format!("calls#{tenant}"),
                format!("2026-01-{:02}#{i:02}", i % 28 + 1),
            ))
            .with_index2(IndexEntry::new(
                format!("status#{tenant}"),
                if i % 2 == 0 { "done" } else { "live" }.to_string() + &format!("#{i:02}"),
            ));
        store.put(&view, None).await.unwrap();
    }
    let foreign = View::new("calls", unique("c"), json!({"i": 99}))
        .with_index1(IndexEntry::new(format!("calls#{other}"), "2026-01-05#99"));
    store.put(&foreign, None).await.unwrap();

    let mut query = Query::new(Index::First, format!("calls#{tenant}"));
    query.limit = 5;
    let mut seen = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        assert!(page.views.len() <= 5);
        seen.extend(page.views.iter().map(|v| v.body["i"].as_i64().unwrap()));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..23).collect::<Vec<_>>(),
        "every view once, in sort order, none of another tenant"
    );

    let mut desc = Query::new(Index::First, format!("calls#{tenant}"));
    desc.descending = true;
    desc.limit = 3;
    let page = store.query(&desc).await.unwrap();
    assert_eq!(
        page.views
            .iter()
            .map(|v| v.body["i"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![22, 21, 20]
    );

    let mut live = Query::new(Index::Second, format!("status#{tenant}"));
    live.sort_prefix = "live#".into();
    live.limit = 100;
    let page = store.query(&live).await.unwrap();
    let odd: HashSet<_> = page
        .views
        .iter()
        .map(|v| v.body["i"].as_i64().unwrap())
        .collect();
    assert_eq!(odd, (0..23).filter(|i| i % 2 == 1).collect());
    assert_eq!(page.next, None);

    // A range of sort values, both ends included, paged.
    let mut range = Query::new(Index::First, format!("calls#{tenant}"));
    range.sort_between = Some(("2026-01-05".into(), "2026-01-09#99".into()));
    range.limit = 2;
    let mut in_range = Vec::new();
    loop {
        let page = store.query(&range).await.unwrap();
        in_range.extend(page.views.iter().map(|v| v.body["i"].as_i64().unwrap()));
        match page.next {
            Some(cursor) => range.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(in_range, vec![4, 5, 6, 7, 8]);
    // From the start: everything up to a value (the scheduler's "due by now").
    let mut upto = Query::new(Index::First, format!("calls#{tenant}"));
    upto.sort_between = Some((String::new(), "2026-01-03#99".into()));
    let page = upto_all(&*store, upto).await;
    assert_eq!(page, vec![0, 1, 2]);
    range.sort_prefix = "2026".into();
    assert!(
        matches!(store.query(&range).await, Err(StoreError::Invalid { field, .. }) if field == "sort_between")
    );

    let mut bad = Query::new(Index::First, format!("calls#{tenant}"));
    bad.cursor = Some("not a cursor".into());
    assert!(
        matches!(store.query(&bad).await, Err(StoreError::Invalid { field, .. }) if field == "cursor")
    );
    bad.cursor = None;
    bad.limit = 0;
    assert!(
        matches!(store.query(&bad).await, Err(StoreError::Invalid { field, .. }) if field == "limit")
    );
}

/// Projectors racing on one counter: with expected revisions, no increment is lost.
async fn conditional_puts_lose_no_update(store: Arc<dyn ViewStore>) {
    let key = unique("stats");
    store
        .put(
            &View::new("campaign_stats", &key, json!({"dialled": 0})),
            Some(0),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                loop {
                    let mut view = store.get("campaign_stats", &key).await.unwrap().unwrap();
                    let n = view.body["dialled"].as_u64().unwrap();
                    view.body = json!({"dialled": n + 1});
                    match store.put(&view, Some(view.revision)).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(other) => panic!("{other}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let view = store.get("campaign_stats", &key).await.unwrap().unwrap();
    assert_eq!(view.body["dialled"], 30);
    assert_eq!(view.revision, 31);
}

async fn refuses_bad_views(store: Arc<dyn ViewStore>) {
    let field = |r: Result<u64, StoreError>| match r {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(store.put(&View::new("Calls!", "k", json!({})), None).await),
        "collection"
    );
    assert_eq!(
        field(store.put(&View::new("calls", "", json!({})), None).await),
        "key"
    );
    let big = View::new("calls", "k", json!({"x": "y".repeat(400 * 1024)}));
    assert_eq!(field(store.put(&big, None).await), "body");
    assert_eq!(store.get("calls", "k").await.unwrap(), None);
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded::view_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store = crate::common::moto::view_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

contract!(
    puts_gets_and_counts_revisions,
    queries_an_index_in_order_page_by_page,
    conditional_puts_lose_no_update,
    refuses_bad_views,
);

async fn upto_all(store: &dyn ViewStore, mut query: Query) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        seen.extend(page.views.iter().map(|v| v.body["i"].as_i64().unwrap()));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return seen,
        }
    }
}
