//! The queue contract, run against the SQLite queue and SQS (moto).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_shared::StoreError;
use parley_shared::queue::{Delivery, Queue};

/// Receives until `want` messages came or `within` passed (SQS may hand out fewer than
/// asked for in one call).
async fn receive_n(
    queue: &dyn Queue,
    want: usize,
    visibility: Duration,
    within: Duration,
) -> Vec<Delivery> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < want && start.elapsed() < within {
        got.extend(
            queue
                .receive(10, visibility, Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    got
}

async fn delivers_and_deletes(queue: Arc<dyn Queue>) {
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            queue
                .send(&format!("{{\"lead\":{i}}}"), Duration::ZERO)
                .await
                .unwrap(),
        );
    }
    let got = receive_n(&*queue, 3, Duration::from_secs(30), Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    let mut bodies: Vec<_> = got.iter().map(|d| d.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["{\"lead\":0}", "{\"lead\":1}", "{\"lead\":2}"]);
    assert!(
        got.iter()
            .all(|d| d.receive_count == 1 && ids.contains(&d.message_id))
    );
    // Hidden while in flight.
    assert!(
        queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    for d in &got {
        queue.delete(&d.receipt).await.unwrap();
        queue.delete(&d.receipt).await.unwrap(); // twice is fine
    }
}

async fn redelivers_after_the_visibility_timeout(queue: Arc<dyn Queue>) {
    let id = queue
        .send("dial lead 7 attempt 1", Duration::ZERO)
        .await
        .unwrap();
    let first = receive_n(&*queue, 1, Duration::from_secs(1), Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    assert!(
        queue
            .receive(10, Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(5)).await;
    assert_eq!(second.len(), 1, "not deleted, so delivered again");
    assert_eq!(second[0].message_id, id);
    assert_eq!(second[0].body, "dial lead 7 attempt 1");
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);
    queue.delete(&second[0].receipt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        queue
            .receive(10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn delays_a_message(queue: Arc<dyn Queue>) {
    queue.send("later", Duration::from_secs(2)).await.unwrap();
    assert!(
        queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let got = receive_n(&*queue, 1, Duration::from_secs(30), Duration::from_secs(6)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "later");
}

/// A poison message (received 3 times, never deleted) ends in the dead-letter queue.
async fn dead_letters_after_max_receives(queue: Arc<dyn Queue>) {
    let id = queue.send("poison", Duration::ZERO).await.unwrap();
    for n in 1..=3 {
        let got = receive_n(&*queue, 1, Duration::ZERO, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1, "delivery {n}");
        assert_eq!(got[0].receive_count, n);
    }
    // The next receive moves it aside instead of delivering it.
    let after = receive_n(&*queue, 1, Duration::ZERO, Duration::from_secs(2)).await;
    assert!(after.is_empty(), "{after:?}");
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].body, "poison");
    // Looking does not remove it.
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 1);
}

async fn refuses_bad_arguments(queue: Arc<dyn Queue>) {
    let field = |r: Result<String, StoreError>| match r {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(queue.send("", Duration::ZERO).await), "body");
    assert_eq!(
        field(queue.send("x", Duration::from_secs(901)).await),
        "delay"
    );
    assert_eq!(
        field(
            queue
                .send(&"x".repeat(256 * 1024 + 1), Duration::ZERO)
                .await
        ),
        "body"
    );
    match queue.receive(11, Duration::ZERO, Duration::ZERO).await {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "max"),
        other => panic!("{other:?}"),
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (queue, _dir) = crate::common::embedded::queue(3).await;
                    super::$name(std::sync::Arc::new(queue)).await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let queue = crate::common::moto::queue(3).await;
                    super::$name(std::sync::Arc::new(queue)).await;
                }
            )*
        }
    };
}

contract!(
    delivers_and_deletes,
    redelivers_after_the_visibility_timeout,
    delays_a_message,
    dead_letters_after_max_receives,
    refuses_bad_arguments,
);
