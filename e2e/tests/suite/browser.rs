//! The live page in a real browser (headless Debian Chromium through chromedriver): it
//! goes live, shows likes posted from outside, posts a comment through its own form,
//! and, after the frontend is killed with -9 and restarted on the same port, goes
//! `reconnecting` then `live` again and catches up on the comment it missed (the
//! browser's `EventSource` resumes with `Last-Event-ID`). Saves a screenshot to
//! `target/browser/live-page.png`.
//!
//! The page's side conversation (`?conversation=c&people=bob`), on the same single
//! `/v1/stream`: bob's online dot turns on when a stream of his opens and off after the
//! presence grace when it closes; bob's typing shows until its `until_ms`; the page's
//! own typing and its receipt for the newest message reach bob; bob's receipt shows a
//! "seen" mark; messages are text, never markup. Saves `target/browser/side-conversation.png`.
//!
//! Without Chromium and chromedriver the tests are skipped, unless `CI` is set: then
//! they fail, so CI cannot silently stop testing the page.

use std::path::PathBuf;
use std::time::Duration;

use e2e::webdriver::{Browser, Tools};
use e2e::{comment, frontend, frontend_process, like, post_json, publisher, wait_until_healthy};
use serde_json::{Value, json};
use testkit::{NatsServer, SseClient, SseEvent};
use tokio::time::Instant;

const VIDEO: &str = "browser";
const TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// What the page shows, read in one script call.
const READ_PAGE: &str = r#"
  const q = (s) => document.querySelector(s);
  return {
    conn: q('#conn-state').getAttribute('data-state'),
    likes: q('#likes-total').textContent.trim(),
    viewers: q('#viewer-count').textContent.trim(),
    error: q('#comment-error').textContent.trim(),
    comments: Array.from(document.querySelectorAll('#comments .comment')).map((c) => ({
      id: c.getAttribute('data-id'),
      text: c.querySelector('.c-text') ? c.querySelector('.c-text').textContent : '',
    })),
  };
"#;

async fn page(b: &Browser) -> Value {
    b.execute(READ_PAGE, json!([])).await
}

/// Polls the page every 100 ms until `ok` holds; panics after 20 s with the last state.
async fn wait_for(b: &Browser, what: &str, ok: impl Fn(&Value) -> bool) -> Duration {
    wait_for_read(b, READ_PAGE, what, ok).await
}

/// [`wait_for`] with another script reading the page.
async fn wait_for_read(
    b: &Browser,
    read: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let p = b.execute(read, json!([])).await;
        if ok(&p) {
            return start.elapsed();
        }
        if start.elapsed() > TIMEOUT {
            panic!("timed out after {TIMEOUT:?} waiting for {what}; page: {p:#}");
        }
        tokio::time::sleep(POLL).await;
    }
}

fn texts(p: &Value) -> Vec<String> {
    p["comments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["text"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn count_of(p: &Value, text: &str) -> usize {
    texts(p).iter().filter(|t| *t == text).count()
}

/// `target/browser/{name}`, beside the test executable's target dir.
fn screenshot_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    target.join("browser").join(name)
}

/// Chromium and chromedriver, `None` (skip) if missing, unless `CI` is set (fail).
fn tools() -> Option<Tools> {
    match Tools::find() {
        Ok(t) => Some(t),
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI is set: {why}"),
        Err(why) => {
            eprintln!("SKIPPED browser test: {why}");
            None
        }
    }
}

/// Errors in the browser console (failed connections, `net::ERR_…`, aside).
async fn script_errors(b: &Browser) -> Vec<String> {
    b.console()
        .await
        .into_iter()
        .filter(|l| l.starts_with("SEVERE") && !l.contains("net::ERR_"))
        .collect()
}

#[tokio::test]
async fn live_page_in_headless_chromium() {
    let Some(tools) = tools() else { return };

    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let (mut fe_process, fe) =
        frontend_process(&nats.url(), &["--publisher-url", &publisher.url]).await;
    let browser = Browser::start(&tools, 1280, 800).await;

    // The page goes live.
    let opened = Instant::now();
    browser.goto(&format!("{}/?video={VIDEO}", fe.url)).await;
    wait_for(&browser, "the page to go live", |p| p["conn"] == "live").await;
    eprintln!("page live {:?} after navigation", opened.elapsed());
    wait_for(&browser, "1 watching", |p| p["viewers"] == "1 watching").await;

    // Likes from outside: the total reaches the number the publisher acknowledged.
    let mut total = 0;
    for i in 0..25 {
        total = like(&publisher, VIDEO, &format!("fan{}", i % 5)).await;
    }
    assert_eq!(total, 25);
    let took = wait_for(&browser, "25 likes", |p| p["likes"] == "25").await;
    eprintln!("likes total on the page reached 25 within {took:?} of the last POST");

    // A comment through the page's own form (typed, then the Send button).
    let text = "hello from chromium";
    let input = browser.find("#comment-text").await.expect("#comment-text");
    input.clear().await;
    input.send_keys(text).await;
    let name = browser
        .execute(
            "return document.querySelector('#comment-user').value",
            json!([]),
        )
        .await;
    assert!(
        name.as_str().is_some_and(|n| !n.is_empty()),
        "the page picks a user name"
    );
    browser
        .find("#comment-submit")
        .await
        .expect("#comment-submit")
        .click()
        .await;
    let took = wait_for(&browser, "the page's own comment in the list", |p| {
        count_of(p, text) == 1 || !p["error"].as_str().unwrap_or_default().is_empty()
    })
    .await;
    let p = page(&browser).await;
    assert_eq!(p["error"], "", "the form reported an error");
    eprintln!("comment posted through the form by {name} shown within {took:?}");
    let form_cleared = browser.execute(
        "return document.querySelector('#comment-text').value === ''",
        json!([]),
    );
    assert_eq!(form_cleared.await, true, "the form clears after a post");

    // kill -9 the frontend: the page says so, and a comment is posted meanwhile.
    fe_process.kill9();
    let killed = Instant::now();
    let took = wait_for(&browser, "reconnecting", |p| p["conn"] == "reconnecting").await;
    eprintln!("frontend killed -9: page showed `reconnecting` after {took:?}");
    let missed = "posted while the frontend was down";
    let missed_id = comment(&publisher, VIDEO, "someone", missed).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Restart on the same port: live again, and the missed comment arrives, once.
    fe_process.restart();
    let restarted = Instant::now();
    wait_until_healthy(&fe.url).await;
    let healthy = restarted.elapsed();
    wait_for(&browser, "live again", |p| p["conn"] == "live").await;
    eprintln!(
        "frontend restarted: healthy after {healthy:?}, page live again {:?} after the \
         restart ({:?} after the kill; the browser waits the server's `retry:`)",
        restarted.elapsed(),
        killed.elapsed()
    );
    let took = wait_for(&browser, "the missed comment", |p| count_of(p, missed) == 1).await;
    eprintln!("the comment posted during the outage appeared {took:?} after going live");
    let p = page(&browser).await;
    assert!(
        p["comments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == missed_id.as_str()),
        "the missed comment carries its id: {p:#}"
    );
    assert_eq!(
        count_of(&p, text),
        1,
        "no duplicate after the resume: {p:#}"
    );
    assert_eq!(texts(&p), vec![text, missed], "comments in order: {p:#}");

    // Still live after the restart: more likes move the total; then the screenshot,
    // with hearts floating.
    for i in 0..10 {
        total = like(&publisher, VIDEO, &format!("late{i}")).await;
    }
    wait_for(&browser, "35 likes", |p| p["likes"] == "35").await;
    assert_eq!(total, 35);
    comment(&publisher, VIDEO, "alice", "what a match!").await;
    wait_for(&browser, "the last comment", |p| {
        count_of(p, "what a match!") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shot = screenshot_path("live-page.png");
    browser.screenshot(&shot).await;
    eprintln!("screenshot: {}", shot.display());

    // No script errors (failed connections while the frontend was down are expected).
    let console = browser.console().await;
    let script_errors: Vec<_> = console
        .iter()
        .filter(|l| l.starts_with("SEVERE") && !l.contains("net::ERR_"))
        .collect();
    assert!(
        script_errors.is_empty(),
        "errors in the browser console: {script_errors:#?}"
    );

    browser.quit().await;
    drop(fe_process);
}

/// With `--dev-tokens` the page gets its own short-lived token, and when a stream ends
/// with `expired` it gets a fresh one and resumes with the last id it saw: comments
/// posted across several expiries all show, once each, in order. The page is in a side
/// conversation too, so its tokens carry the conversation and the chat video.
#[tokio::test]
async fn live_page_renews_its_token_when_the_stream_expires() {
    let Some(tools) = tools() else { return };
    const SECRET: &str = "browser-secret-0123456789abcdef0123456789";
    const RENEW: &str = "renew";
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |_| {}).await;
    let (_fe_process, fe) = frontend_process(
        &nats.url(),
        &[
            "--publisher-url",
            &publisher.url,
            "--jwt-secret",
            SECRET,
            "--dev-tokens",
            "--dev-token-ttl",
            "2s",
        ],
    )
    .await;
    let browser = Browser::start(&tools, 1280, 800).await;
    // In a conversation too: the page's dev tokens must list the conversation and its
    // chat video (`conversations` and `videos` claims) for the one stream to open.
    browser
        .goto(&format!(
            "{}/?video={RENEW}&user=ann&conversation=rc&people=bob",
            fe.url
        ))
        .await;
    wait_for(&browser, "the page to go live", |p| p["conn"] == "live").await;

    // 24 comments over ~4 s: the 2 s tokens expire twice meanwhile.
    let mut posted = Vec::new();
    for i in 0..24 {
        let text = format!("renewal {i}");
        comment(&publisher, RENEW, &format!("poster{i}"), &text).await;
        posted.push(text);
        tokio::time::sleep(Duration::from_millis(170)).await;
    }
    wait_for(&browser, "every comment", |p| {
        texts(p).len() >= posted.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = page(&browser).await;
    assert_eq!(texts(&p), posted, "once each, in order: {p:#}");
    assert_eq!(p["error"], "", "{p:#}");

    let metrics = e2e::metrics(&fe.url).await;
    let expired: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("frontend_streams_expired_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(expired >= 1.0, "no stream expired: {metrics}");
    let side = browser.execute(READ_SIDE, json!([])).await;
    assert_eq!(
        (
            side["shown"].clone(),
            side["ann"].clone(),
            side["bob"].clone()
        ),
        (json!(true), json!("true"), json!("false")),
        "the side panel after the renewals: {side:#}"
    );
    eprintln!("{expired} streams expired and were renewed by the page");
    let console = browser.console().await;
    let script_errors: Vec<_> = console.iter().filter(|l| l.starts_with("SEVERE")).collect();
    assert!(
        script_errors.is_empty(),
        "errors in the browser console: {script_errors:#?}"
    );
    browser.quit().await;
}

const CONVERSATION: &str = "c";
/// The companion video whose comments are the conversation's messages (the page's
/// default: `{conversation}-chat`).
const CHAT: &str = "c-chat";

/// What the side conversation panel shows.
const READ_SIDE: &str = r#"
  const q = (s) => document.querySelector(s);
  const dot = (m) => {
    const li = q('#people .person[data-member="' + m + '"]');
    return li ? li.getAttribute('data-online') : null;
  };
  return {
    conn: q('#conn-state').getAttribute('data-state'),
    shown: !q('#side').hidden,
    ann: dot('ann'),
    bob: dot('bob'),
    typing: q('#typing').textContent,
    error: q('#side-error').textContent,
    likes: q('#likes-total').textContent.trim(),
    messages: Array.from(document.querySelectorAll('#side-messages .comment')).map((m) => ({
      message: m.getAttribute('data-message'),
      user: m.querySelector('.c-user').textContent,
      text: m.querySelector('.c-text').textContent,
      markup: m.querySelector('.c-text').children.length,
      seen: m.querySelector('.seen').textContent,
    })),
  };
"#;

/// The next event `name` on bob's stream whose data has `key` = `value`.
async fn bob_gets(sse: &mut SseClient, name: &str, key: &str, value: &str) -> SseEvent {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let e = sse.next().await.expect("bob's stream ended");
            if e.event == name && e.json()[key] == value {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("bob got no {name} with {key} = {value}"))
}

fn message<'a>(p: &'a Value, id: &str) -> Option<&'a Value> {
    p["messages"]
        .as_array()?
        .iter()
        .find(|m| m["message"] == id)
}

/// The side conversation on the page's one `/v1/stream`: presence, typing, receipts.
#[tokio::test]
async fn side_conversation_shows_presence_typing_and_seen_marks() {
    let Some(tools) = tools() else { return };
    const GRACE: Duration = Duration::from_secs(1);
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.typing_ttl = Duration::from_secs(2)).await;
    let publisher_url = publisher.url.clone();
    let fe = frontend(&nats, move |c| {
        c.publisher_url = publisher_url;
        c.presence_grace = GRACE;
    })
    .await;
    let browser = Browser::start(&tools, 1280, 800).await;
    browser
        .goto(&format!(
            "{}/?video=side&user=ann&conversation={CONVERSATION}&people=bob",
            fe.url
        ))
        .await;
    // Live, with ann's own dot on (her stream counts) and bob's off.
    let took = wait_for_read(&browser, READ_SIDE, "the side panel, ann online", |p| {
        p["conn"] == "live" && p["shown"] == true && p["ann"] == "true" && p["bob"] == "false"
    })
    .await;
    eprintln!("side panel live, ann online, bob offline, {took:?} after navigation");

    // Bob opens a stream of his own: his dot turns on.
    let t0 = Instant::now();
    let mut bob = SseClient::connect(
        &format!(
            "{}/v1/stream?topics=conversation:{CONVERSATION}&member=bob",
            fe.url
        ),
        None,
    )
    .await
    .expect("bob's stream");
    assert_eq!(bob.status, 200);
    wait_for_read(&browser, READ_SIDE, "bob online", |p| p["bob"] == "true").await;
    eprintln!("bob's dot on {:?} after his stream opened", t0.elapsed());

    // Bob types: "bob is typing…" until the until_ms the publisher answered.
    let (status, typed) = post_json(
        &format!("{}/v1/conversations/{CONVERSATION}/typing", publisher.url),
        json!({ "user": "bob" }),
    )
    .await;
    assert_eq!(status, 202, "{typed}");
    let until_ms = typed["until_ms"].as_i64().expect("until_ms");
    let took = wait_for_read(&browser, READ_SIDE, "bob is typing", |p| {
        p["typing"] == "bob is typing\u{2026}"
    })
    .await;
    eprintln!("typing indicator shown {took:?} after the POST");
    wait_for_read(&browser, READ_SIDE, "the typing indicator to go", |p| {
        p["typing"] == ""
    })
    .await;
    let gone_ms = live_proto::now_ms();
    eprintln!(
        "typing indicator gone {} ms after until_ms (polled every 100 ms)",
        gone_ms - until_ms
    );
    assert!(
        gone_ms >= until_ms - 50,
        "gone {} ms before until_ms",
        until_ms - gone_ms
    );
    assert!(
        gone_ms <= until_ms + 1000,
        "shown {} ms too long",
        gone_ms - until_ms
    );

    // A message from bob (a comment on the companion video): shown as text, and the
    // page tells bob that ann has seen it.
    let text = "<b>hi</b> ann & <img src=x onerror=alert(1)>";
    let id = comment(&publisher, CHAT, "bob", text).await;
    let p = wait_for_read(&browser, READ_SIDE, "bob's message", |p| {
        message(p, &id).is_some()
    })
    .await;
    let _ = p;
    let p = browser.execute(READ_SIDE, json!([])).await;
    let m = message(&p, &id).unwrap();
    assert_eq!(
        (m["user"].as_str(), m["text"].as_str()),
        (Some("bob"), Some(text))
    );
    assert_eq!(m["markup"], 0, "message text became markup: {p:#}");
    let t0 = Instant::now();
    let read = bob_gets(&mut bob, "read", "user", "ann").await.json();
    assert_eq!(read["message"], id.as_str(), "ann's receipt: {read}");
    assert_eq!(read["topic"], format!("conversation:{CONVERSATION}"));
    eprintln!(
        "ann's receipt for the newest message reached bob in {:?}",
        t0.elapsed()
    );

    // Bob reads it: "seen by bob" under it.
    let (status, answer) = post_json(
        &format!("{}/v1/conversations/{CONVERSATION}/read", publisher.url),
        json!({ "user": "bob", "message": id }),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let took = wait_for_read(&browser, READ_SIDE, "seen by bob", |p| {
        message(p, &id).is_some_and(|m| m["seen"] == "seen by bob")
    })
    .await;
    eprintln!("\"seen by bob\" shown {took:?} after his receipt");

    // Ann types in the panel: bob sees her typing; she sends it; it shows, once.
    let input = browser.find("#side-text").await.expect("#side-text");
    input.send_keys("on my way").await;
    let typing = bob_gets(&mut bob, "typing", "user", "ann").await.json();
    assert!(typing["until_ms"].as_i64().unwrap() > live_proto::now_ms());
    browser
        .find("#side-submit")
        .await
        .expect("#side-submit")
        .click()
        .await;
    let read = bob_gets(&mut bob, "read", "user", "ann").await.json();
    let mine = read["message"].as_str().unwrap().to_owned();
    assert_ne!(mine, id, "a receipt for ann's own, newer message");
    let p = wait_for_read(&browser, READ_SIDE, "ann's message", |p| {
        message(p, &mine).is_some()
    })
    .await;
    let _ = p;
    let p = browser.execute(READ_SIDE, json!([])).await;
    let texts: Vec<_> = p["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"].clone(), m["text"].clone(), m["seen"].clone()))
        .collect();
    assert_eq!(
        texts,
        [
            (json!("bob"), json!(text), json!("seen by bob")),
            (json!("ann"), json!("on my way"), json!("")),
        ],
        "{p:#}"
    );
    assert_eq!(p["error"], "", "{p:#}");

    // The video shares the connection: a like moves the page's total.
    like(&publisher, "side", "fan").await;
    wait_for_read(&browser, READ_SIDE, "1 like", |p| p["likes"] == "1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shot = screenshot_path("side-conversation.png");
    browser.screenshot(&shot).await;
    eprintln!("screenshot: {}", shot.display());

    // Bob's stream closes: his dot goes off, after the presence grace.
    drop(bob);
    let t0 = Instant::now();
    wait_for_read(&browser, READ_SIDE, "bob offline", |p| p["bob"] == "false").await;
    let took = t0.elapsed();
    eprintln!("bob's dot off {took:?} after his stream closed (grace {GRACE:?})");
    assert!(
        took >= GRACE - Duration::from_millis(100),
        "before the grace: {took:?}"
    );

    let errors = script_errors(&browser).await;
    assert!(
        errors.is_empty(),
        "errors in the browser console: {errors:#?}"
    );
    browser.quit().await;
}
