//! The chat-completions client against the local OpenAI-compatible server, over real
//! loopback HTTP: streamed text and tool calls, the request it writes, retries, and
//! cancellation.

use std::time::Duration;

use parley_media::llm::openai::OpenAiChat;
use parley_media::llm::{ChatRequest, LanguageModel, LlmEvent, Message, ToolCall, ToolSpec};
use parley_media::vendor::{Endpoint, VendorError};
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::{self, Reply, StreamEnd};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SHORT: &str = "Monday at ten, or Tuesday? Both work.";
const REPLY: &str = "Of course! The flat on Elm Street is free to view on Monday at ten, \
                     or on Tuesday afternoon. Which suits you better?";

fn client(base: &str, key: &str) -> OpenAiChat {
    OpenAiChat::new(
        Endpoint::new(base, SecretString::new(key.to_owned())),
        "gpt-4o-mini",
    )
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::System {
                content: "You are Riley, a letting agent.".into(),
            },
            Message::User {
                content: text.into(),
            },
        ],
        tools: vec![],
    }
}

async fn all_events(rx: &mut mpsc::Receiver<LlmEvent>) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    let gather = async {
        while let Some(event) = rx.recv().await {
            out.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gather)
        .await
        .expect("the answer ends");
    out
}

fn text_of(events: &[LlmEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn texts(events: &[LlmEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, LlmEvent::Text(_)))
        .count()
}

#[tokio::test]
async fn text_streamed_in_many_deltas_reassembles() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::text(REPLY).delta_chars(3));
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Can I see the flat?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert_eq!(text_of(&events), REPLY);
    assert!(texts(&events) >= REPLY.len() / 3, "{events:?}");
    assert_eq!(events.last(), Some(&LlmEvent::Done));
    assert_eq!(events.iter().filter(|e| **e == LlmEvent::Done).count(), 1);
}

#[tokio::test]
async fn with_nothing_scripted_the_server_echoes_the_caller() {
    let server = openai_chat::start().await.unwrap();
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Is it still available?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert_eq!(text_of(&events), "You said: Is it still available?.");
    assert_eq!(events.last(), Some(&LlmEvent::Done));
}

#[tokio::test]
async fn the_request_has_chat_completions_shape() {
    let server = openai_chat::start().await.unwrap();
    let chat = client(&server.url(), server.key())
        .with_temperature(0.25)
        .with_max_tokens(200);
    let parameters = json!({
        "type": "object",
        "properties": {"day": {"type": "string"}},
        "required": ["day"],
    });
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: "Be brief.".into(),
            },
            Message::User {
                content: "Book me for Monday.".into(),
            },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "book_viewing".into(),
                    arguments: r#"{"day":"Monday"}"#.into(),
                }],
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                content: r#"{"booked":true}"#.into(),
            },
            Message::Assistant {
                content: "Done: Monday it is.".into(),
                tool_calls: vec![],
            },
            Message::User {
                content: "Thanks.".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "book_viewing".into(),
            description: "Books a viewing.".into(),
            parameters: parameters.clone(),
        }],
    };
    let mut rx = chat.stream(request).await.unwrap();
    all_events(&mut rx).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {}", server.key()).as_str())
    );
    assert_eq!(
        requests[0].body,
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "temperature": 0.25,
            "max_tokens": 200,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Book me for Monday."},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "book_viewing", "arguments": "{\"day\":\"Monday\"}"}
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"booked\":true}"},
                {"role": "assistant", "content": "Done: Monday it is."},
                {"role": "user", "content": "Thanks."}
            ],
            "tools": [{"type": "function", "function": {
                "name": "book_viewing", "description": "Books a viewing.", "parameters": parameters
            }}]
        })
    );

    // Without tools, there is no `tools` field at all.
    let mut rx = chat.stream(ask("Hi")).await.unwrap();
    all_events(&mut rx).await;
    let body = &server.requests()[1].body;
    assert!(body.get("tools").is_none(), "{body}");
}

#[tokio::test]
async fn streamed_tool_calls_are_assembled_whole() {
    let server = openai_chat::start().await.unwrap();
    let booking = r#"{"day":"Monday","time":"10:00","name":"Ana Lima","notes":"bringing a dog"}"#;
    server.push(Reply::tool_calls(&[("book_viewing", booking), ("end_call", "{}")]).delta_chars(3));
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Monday at ten please")).await.unwrap();
    let events = all_events(&mut rx).await;
    let [LlmEvent::ToolCalls(calls), LlmEvent::Done] = events.as_slice() else {
        panic!("expected tool calls then done, got {events:?}");
    };
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "book_viewing");
    assert_eq!(calls[0].arguments, booking);
    let parsed: Value = serde_json::from_str(&calls[0].arguments).unwrap();
    assert_eq!(parsed["notes"], "bringing a dog");
    assert_eq!(calls[1].name, "end_call");
    assert_eq!(calls[1].arguments, "{}");
    assert!(!calls[0].id.is_empty() && calls[0].id != calls[1].id);
}

#[tokio::test]
async fn sse_cut_at_odd_byte_boundaries_with_crlf_parses() {
    let server = openai_chat::start().await.unwrap();
    let chat = client(&server.url(), server.key());
    // One-byte pieces sent back to back, and larger ones paced so that they reach the
    // client one by one, cutting events, lines and `\r\n` pairs apart.
    for (size, pause) in [(1, 0), (13, 1), (29, 1)] {
        server.push(
            Reply::text(SHORT)
                .crlf()
                .split_every(size)
                .delays(Duration::ZERO, Duration::from_millis(pause)),
        );
        let mut rx = chat.stream(ask("?")).await.unwrap();
        let events = all_events(&mut rx).await;
        assert_eq!(text_of(&events), SHORT, "pieces of {size}");
        assert_eq!(events.last(), Some(&LlmEvent::Done));
    }
    server.push(Reply::tool_calls(&[("note", r#"{"a":[1,2,3]}"#)]).split_every(3));
    let mut rx = chat.stream(ask("?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert!(
        matches!(&events[..], [LlmEvent::ToolCalls(c), LlmEvent::Done] if c[0].arguments == r#"{"a":[1,2,3]}"#),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_server_error_on_the_first_try_is_retried_once() {
    for status in [500, 429] {
        let server = openai_chat::start().await.unwrap();
        server.push(Reply::error(status));
        server.push(Reply::text("Sure."));
        let chat = client(&server.url(), server.key());
        let mut rx = chat.stream(ask("Hello")).await.unwrap();
        let events = all_events(&mut rx).await;
        assert_eq!(text_of(&events), "Sure.");
        assert_eq!(events.last(), Some(&LlmEvent::Done));
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [status, 200]);
    }
}

#[tokio::test]
async fn only_one_retry_then_the_status_is_the_error() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::error(500));
    server.push(Reply::error(503));
    server.push(Reply::text("never asked for"));
    let chat = client(&server.url(), server.key());
    let error = chat.stream(ask("Hello")).await.expect_err("fails");
    assert!(
        matches!(&error, VendorError::Status { status: 503, detail, .. } if detail.contains("server had an error")),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_refused_key_is_not_retried_and_not_repeated() {
    let server = openai_chat::start().await.unwrap();
    let wrong = "sk-wrong-key-123";
    let chat = client(&server.url(), wrong);
    let error = chat.stream(ask("Hello")).await.expect_err("refused");
    let VendorError::Status { status, detail, .. } = &error else {
        panic!("expected a status, got {error:?}");
    };
    assert_eq!(*status, 401);
    assert!(detail.contains("invalid_api_key"), "{detail}");
    // OpenAI quotes a masked form of the key back; neither it nor the key is kept.
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains("sk-wr"),
        "{shown}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_receiver_stops_the_request() {
    let server = openai_chat::start().await.unwrap();
    let long = REPLY.repeat(4);
    server.push(
        Reply::text(&long)
            .delta_chars(2)
            .delays(Duration::ZERO, Duration::from_millis(15)),
    );
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Tell me everything")).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(rx.recv().await, Some(LlmEvent::Text(_))));
    }
    // The caller barged in.
    drop(rx);
    assert_eq!(
        server.wait_for_end(0, Duration::from_secs(5)).await,
        Some(StreamEnd::Abandoned)
    );
    let sent = server.requests()[0].pieces_sent;
    assert!(
        sent < long.len() / 2,
        "the server kept sending: {sent} pieces"
    );
}

#[tokio::test]
async fn a_stream_cut_after_text_fails_and_is_not_retried() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::truncated("Let me check the diary"));
    server.push(Reply::text("a second answer the caller must not hear"));
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Monday?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert_eq!(text_of(&events), "Let me check the diary");
    assert!(
        matches!(
            events.last(),
            Some(LlmEvent::Failed(VendorError::Closed { .. }))
        ),
        "{events:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_cut_before_anything_was_said_is_retried() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::truncated(""));
    server.push(Reply::text("Monday works."));
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Monday?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert_eq!(
        events,
        [
            LlmEvent::Text("Mond".into()),
            LlmEvent::Text("ay w".into()),
            LlmEvent::Text("orks".into()),
            LlmEvent::Text(".".into()),
            LlmEvent::Done
        ]
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_silent_server_times_out_and_the_retry_answers() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::text("too late").delays(Duration::from_secs(3), Duration::ZERO));
    server.push(Reply::text("On time."));
    let chat = client(&server.url(), server.key()).with_idle_timeout(Duration::from_millis(200));
    let mut rx = chat.stream(ask("Hello?")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert_eq!(text_of(&events), "On time.");
    assert_eq!(server.requests().len(), 2);
    // The stalled first answer was hung up on, not left running.
    assert_eq!(
        server.wait_for_end(0, Duration::from_secs(5)).await,
        Some(StreamEnd::Abandoned)
    );
}

#[tokio::test]
async fn garbage_is_a_protocol_failure_and_not_retried() {
    let server = openai_chat::start().await.unwrap();
    server.push(Reply::garbage());
    let chat = client(&server.url(), server.key());
    let mut rx = chat.stream(ask("Hello")).await.unwrap();
    let events = all_events(&mut rx).await;
    assert!(
        matches!(
            events.as_slice(),
            [LlmEvent::Failed(VendorError::Protocol { .. })]
        ),
        "{events:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn nobody_listening_is_a_connect_failure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let chat = client(&format!("http://{addr}/v1"), "k");
    let error = chat.stream(ask("Hello")).await.expect_err("no server");
    assert!(matches!(error, VendorError::Connect { .. }), "{error:?}");
}
