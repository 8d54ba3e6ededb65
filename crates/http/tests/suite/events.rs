//! The event stream over SSE: replay after a dropped connection, and many clients at a high
//! rate, with nothing lost.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use orchestra_protocol::{EventBody, LogEvent};

use crate::suite::common::Served;

fn log(n: u64) -> EventBody {
    EventBody::Log(LogEvent::new("info", format!("event {n}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_last_event_id_misses_nothing() {
    let served = Served::start().await;
    let client = served.client();
    let bus = served.hub.bus().clone();
    let first_id = bus.last_id() + 1;
    let mut stream = Box::pin(client.events(Some(first_id - 1)).await.unwrap());
    for n in 0..10 {
        bus.publish(log(n));
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(stream.next().await.unwrap().unwrap().id);
    }
    // The connection drops; events go on.
    drop(stream);
    for n in 10..20 {
        bus.publish(log(n));
    }
    let last = *seen.last().unwrap();
    let mut stream = Box::pin(client.events(Some(last)).await.unwrap());
    while seen.len() < 20 {
        seen.push(stream.next().await.unwrap().unwrap().id);
    }
    let expected: Vec<u64> = (first_id..first_id + 20).collect();
    assert_eq!(seen, expected);
    drop(stream);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_get_every_one_of_a_thousand_events_a_second() {
    let served = Served::start().await;
    let client = served.client();
    let bus = served.hub.bus().clone();
    let start_after = bus.last_id();
    const EVENTS: u64 = 3000;
    let mut readers = Vec::new();
    for _ in 0..5 {
        let stream = client.events(Some(start_after)).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            let mut ids = Vec::with_capacity(EVENTS as usize);
            while ids.len() < EVENTS as usize {
                match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                    Ok(Some(Ok(event))) => ids.push(event.id),
                    other => panic!("stream ended early after {} events: {other:?}", ids.len()),
                }
            }
            ids
        }));
    }
    // 1,000 a second, in 10 ms bursts of 10.
    let began = Instant::now();
    for n in 0..EVENTS {
        bus.publish(log(n));
        if n % 10 == 9 {
            let due = began + Duration::from_millis(n + 1);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let expected: Vec<u64> = (start_after + 1..=start_after + EVENTS).collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), expected);
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_stream_counts_as_a_client_carries_no_events_and_ends_with_the_hub() {
    let served = Served::start().await;
    let client = served.client();
    let bus = served.hub.bus().clone();
    let mut presence = Box::pin(client.presence().await.unwrap());
    assert_eq!(client.health().await.unwrap().clients, 1);
    for n in 0..50 {
        bus.publish(log(n));
    }
    // A normal stream opened after them still gets them: they were published.
    let mut events = Box::pin(client.events(Some(bus.last_id() - 50)).await.unwrap());
    assert!(events.next().await.unwrap().is_ok());
    drop(events);
    let quiet = tokio::time::timeout(Duration::from_millis(500), presence.next()).await;
    assert!(quiet.is_err(), "the presence stream carried {quiet:?}");

    served.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), presence.next())
        .await
        .expect("the presence stream outlived its hub");
    assert!(
        !matches!(ended, Some(Ok(_))),
        "an event after the stop: {ended:?}"
    );
}
