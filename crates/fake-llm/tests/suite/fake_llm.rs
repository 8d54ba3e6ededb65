#![allow(clippy::unwrap_used)]
//! The fake LLM over real HTTP, driven with reqwest the way an OpenAI client would.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use orchestra_fake_llm::{Directives, FakeLlm, FakeLlmConfig, Script, Step};
use serde_json::{Value, json};

fn chat_body(text: &str, stream: bool) -> Value {
    json!({"model": "fake-model", "stream": stream,
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
}

async fn post(fake: &FakeLlm, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `data:` payloads of a complete SSE body.
fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn parse_chunks(payloads: &[String]) -> Vec<Value> {
    payloads
        .iter()
        .filter(|p| *p != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

#[tokio::test]
async fn stream_echo_has_the_shape_opencode_accepts() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let resp = post(&fake, &chat_body("hello there fake", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let payloads = sse_payloads(&resp.text().await.unwrap());
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks = parse_chunks(&payloads);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert!(chunks.len() >= 4, "text should arrive as several chunks");
    assert_eq!(content_of(&chunks), "ECHO: hello there fake");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let usage = &last["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    let recorded = fake
        .wait_for_requests(1, Duration::from_secs(5))
        .await
        .unwrap();
    let r = &recorded[0];
    assert_eq!(
        (r.index, r.stream, r.model.as_str()),
        (0, true, "fake-model")
    );
    assert_eq!(r.last_user_text, "hello there fake");
    assert_eq!(r.system_prompt, "be brief");
    assert!(r.completed_at.is_some() && r.disconnected_at.is_none());
}

#[tokio::test]
async fn non_stream_reply_is_a_chat_completion() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let body: Value = post(&fake, &chat_body("plain json", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "ECHO: plain json");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let body: Value = post(
        &fake,
        &chat_body(r#"CALL_TOOL:bash {"command":"ls"}"#, false),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "bash");
    assert_eq!(call["function"]["arguments"], r#"{"command":"ls"}"#);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn tool_call_chunks_carry_id_name_then_argument_fragments() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let text = r#"please CALL_TOOL:write {"filePath":"/tmp/x.txt","content":"hi"} thanks"#;
    let payloads = sse_payloads(
        &post(&fake, &chat_body(text, true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let chunks = parse_chunks(&payloads);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["type"], "function");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        calls[0]["function"],
        json!({"name": "write", "arguments": ""})
    );
    assert!(calls.len() >= 3, "arguments should come in fragments");
    let arguments: String = calls[1..]
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"filePath": "/tmp/x.txt", "content": "hi"})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(payloads.last().unwrap(), "[DONE]");

    // The follow-up carrying the tool result is answered with it, whatever the user text said.
    let follow_up = json!({"model": "fake-model", "stream": true, "messages": [
        {"role": "user", "content": text},
        {"role": "assistant", "content": "", "tool_calls": [calls[0]]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "Wrote file successfully."}]});
    let payloads = sse_payloads(&post(&fake, &follow_up).await.text().await.unwrap());
    assert_eq!(
        content_of(&parse_chunks(&payloads)),
        "TOOL_RESULT_SEEN: Wrote file successfully."
    );
}

#[tokio::test]
async fn fail_directive_returns_openai_error_bodies() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    for (code, kind) in [(500, "server_error"), (429, "rate_limit_error")] {
        for stream in [true, false] {
            let resp = post(&fake, &chat_body(&format!("FAIL:{code} ignored"), stream)).await;
            assert_eq!(resp.status().as_u16(), code);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["message"], format!("fake failure {code}"));
            assert_eq!(body["error"]["type"], kind);
        }
    }
}

#[tokio::test]
async fn cut_drops_the_connection_without_finish_or_done() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let resp = post(&fake, &chat_body("CUT:2", true)).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut received = String::new();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => received.push_str(std::str::from_utf8(&bytes).unwrap()),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the body must end with a transport error; got {received:?}"
    );
    let payloads = sse_payloads(&received);
    assert!(!payloads.iter().any(|p| p == "[DONE]"));
    let chunks = parse_chunks(&payloads);
    assert_eq!(content_of(&chunks), "chunk1 chunk2 ");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    let r = &fake.requests()[0];
    assert!(r.completed_at.is_none() && r.disconnected_at.is_none());

    let plain = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&chat_body("CUT:2", false))
        .send()
        .await;
    let outcome = match plain {
        Ok(resp) => resp.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "a cut JSON reply must fail on the client");
}

#[tokio::test]
async fn delayms_holds_the_first_token_then_echoes_the_rest() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let started = Instant::now();
    let resp = post(&fake, &chat_body("DELAYMS:300 late hello", true)).await;
    let mut stream = resp.bytes_stream();
    let mut received = String::new();
    let mut first_content_at = None;
    while let Some(bytes) = stream.next().await {
        received.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
        if first_content_at.is_none() && received.contains("ECHO") {
            first_content_at = Some(started.elapsed());
        }
    }
    let first = first_content_at.unwrap();
    assert!(
        first >= Duration::from_millis(300),
        "first token after {first:?}"
    );
    assert_eq!(
        content_of(&parse_chunks(&sse_payloads(&received))),
        "ECHO: late hello"
    );
}

#[tokio::test]
async fn image_parts_are_counted_anywhere_in_the_conversation() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let image =
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}});
    let body = json!({"model": "fake-model", "stream": false, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "earlier"}, image]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "what is this"}, image,
            {"type": "text", "text": "<system-reminder>ignored</system-reminder>"}]}]});
    let reply: Value = post(&fake, &body).await.json().await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "ECHO: what is this IMAGES=2"
    );
    assert_eq!(fake.requests()[0].image_parts, 2);
}

#[tokio::test]
async fn custom_responder_scripts_replies_and_none_falls_back() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(|req| {
        (req.model == "scripted").then(|| Script {
            steps: vec![
                Step::TextChunks {
                    chunks: vec!["a".into(), "b".into()],
                    gap: Duration::from_millis(10),
                },
                Step::ToolCall {
                    name: "read".into(),
                    arguments: json!({"filePath": "/x"}),
                },
                Step::Usage {
                    prompt_tokens: 7,
                    completion_tokens: 3,
                },
            ],
        })
    });
    let mut body = chat_body("anything", true);
    body["model"] = json!("scripted");
    let chunks = parse_chunks(&sse_payloads(
        &post(&fake, &body).await.text().await.unwrap(),
    ));
    assert_eq!(content_of(&chunks), "ab");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );

    let fallback = parse_chunks(&sse_payloads(
        &post(&fake, &chat_body("plain", true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    assert_eq!(content_of(&fallback), "ECHO: plain");

    fake.clear_responder();
    let cleared = parse_chunks(&sse_payloads(
        &post(&fake, &body).await.text().await.unwrap(),
    ));
    assert_eq!(content_of(&cleared), "ECHO: anything");
}

#[tokio::test]
async fn client_hanging_up_mid_stream_is_recorded() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let resp = post(&fake, &chat_body("SLOW:10", true)).await;
    let mut stream = resp.bytes_stream();
    let mut received = String::new();
    while !received.contains("chunk1") {
        received.push_str(std::str::from_utf8(&stream.next().await.unwrap().unwrap()).unwrap());
    }
    let dropped_at = Instant::now();
    drop(stream);
    let r = fake
        .wait_for_disconnect(Duration::from_secs(5))
        .await
        .unwrap();
    let noticed = r.disconnected_at.unwrap().duration_since(dropped_at);
    eprintln!("disconnect noticed {noticed:?} after the client dropped the stream");
    assert!(
        // Well inside the 1 s gap: hyper sees the hang-up, not a failed write of the next chunk.
        noticed < Duration::from_millis(900),
        "noticed after {noticed:?}"
    );
    assert_eq!(r.index, 0);
    assert!(r.completed_at.is_none());
}

#[tokio::test]
async fn sixty_four_slow_streams_run_concurrently() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", fake.base_url());
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let text = client
                    .post(url)
                    .json(&chat_body("SLOWMS:200:5", true))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                content_of(&parse_chunks(&sse_payloads(&text)))
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "chunk1 chunk2 chunk3 chunk4 chunk5 ");
    }
    let wall = started.elapsed();
    // Each stream takes 1 s; serialised they would take 64 s.
    assert!(
        wall >= Duration::from_secs(1) && wall < Duration::from_secs(5),
        "{wall:?}"
    );
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 64);
    assert!(recorded.iter().all(|r| r.completed_at.is_some()));
}

#[tokio::test]
async fn models_titles_and_unknown_routes() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let models: Value = reqwest::get(format!("{}/models", fake.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fake-model", "fake-vision", "fake-mini"]);

    let title = json!({"model": "fake-mini", "stream": true, "messages": [
        {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
        {"role": "user", "content": "SLOW:30 make a title"}]});
    let chunks = parse_chunks(&sse_payloads(
        &post(&fake, &title).await.text().await.unwrap(),
    ));
    assert_eq!(content_of(&chunks), "Fake title");

    let missing = reqwest::get(format!("http://{}/nope", fake.addr()))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/chat/completions")
    );
}

#[tokio::test]
async fn waits_time_out_with_a_useful_error_and_clear_resets() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let err = fake
        .wait_for_requests(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0 request(s)"), "{err}");
    post(&fake, &chat_body("one", false)).await;
    assert_eq!(fake.requests().len(), 1);
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    post(&fake, &chat_body("two", false)).await;
    let after = fake.requests();
    assert_eq!((after.len(), after[0].index), (1, 1));
}

#[tokio::test]
async fn shutdown_cuts_running_streams_and_frees_the_port() {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let addr = fake.addr();
    let resp = post(&fake, &chat_body("SLOW:30", true)).await;
    let reader = tokio::spawn(async move { resp.text().await.is_err() });
    fake.wait_for_requests(1, Duration::from_secs(5))
        .await
        .unwrap();
    let started = Instant::now();
    fake.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(reader.await.unwrap(), "the stream should end with an error");
    let again = FakeLlm::start_with(FakeLlmConfig {
        addr,
        ..FakeLlmConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(again.addr(), addr);
}

#[tokio::test]
async fn the_echo_fake_never_turns_prompt_text_into_a_tool_call() {
    let fake = FakeLlm::start_echo().await.unwrap();
    assert_eq!(fake.directives(), Directives::Off);
    let text = r#"CALL_TOOL:bash {"command":"touch /tmp/pwned"}"#;
    let chunks = parse_chunks(&sse_payloads(
        &post(&fake, &chat_body(text, true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    assert!(
        chunks
            .iter()
            .all(|c| c.pointer("/choices/0/delta/tool_calls").is_none()),
        "{chunks:?}"
    );
    assert_eq!(content_of(&chunks), format!("ECHO: {text}"));
    let resp = post(&fake, &chat_body("FAIL:500", false)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_log_is_a_ring_and_keeps_the_headers() {
    let fake = FakeLlm::start_with(FakeLlmConfig {
        directives: Directives::On,
        log_capacity: 3,
        ..FakeLlmConfig::default()
    })
    .await
    .unwrap();
    for i in 0..5 {
        reqwest::Client::new()
            .post(format!("{}/chat/completions", fake.base_url()))
            .bearer_auth(format!("sk-{i}"))
            .json(&chat_body(&format!("request {i}"), false))
            .send()
            .await
            .unwrap();
    }
    let kept = fake.requests();
    let indexes: Vec<usize> = kept.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [2, 3, 4]);
    assert_eq!(kept[0].last_user_text, "request 2");
    assert_eq!(kept[2].header("Authorization"), Some("Bearer sk-4"));

    let none = FakeLlm::start_with(FakeLlmConfig {
        log_capacity: 0,
        ..FakeLlmConfig::default()
    })
    .await
    .unwrap();
    let resp = post(&none, &chat_body("kept nowhere", false)).await;
    assert_eq!(resp.status(), 200);
    assert!(none.requests().is_empty());
}
