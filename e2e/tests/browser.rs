//! The live page in a real browser (headless Debian Chromium through chromedriver): it
//! goes live, shows likes posted from outside, posts a comment through its own form,
//! and, after the frontend is killed with -9 and restarted on the same port, goes
//! `reconnecting` then `live` again and catches up on the comment it missed (the
//! browser's `EventSource` resumes with `Last-Event-ID`). Saves a screenshot to
//! `target/browser/live-page.png`.
//!
//! Without Chromium and chromedriver the test is skipped, unless `CI` is set: then it
//! fails, so CI cannot silently stop testing the page.

use std::path::PathBuf;
use std::time::Duration;

use e2e::webdriver::{Browser, Tools};
use e2e::{comment, frontend_process, like, publisher, wait_until_healthy};
use serde_json::{Value, json};
use testkit::NatsServer;
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
    let start = Instant::now();
    loop {
        let p = page(b).await;
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

/// `target/browser/live-page.png`, beside the test executable's target dir.
fn screenshot_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    target.join("browser").join("live-page.png")
}

#[tokio::test]
async fn live_page_in_headless_chromium() {
    let tools = match Tools::find() {
        Ok(t) => t,
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI is set: {why}"),
        Err(why) => {
            eprintln!("SKIPPED browser test: {why}");
            return;
        }
    };

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
    let shot = screenshot_path();
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
/// posted across several expiries all show, once each, in order.
#[tokio::test]
async fn live_page_renews_its_token_when_the_stream_expires() {
    let tools = match Tools::find() {
        Ok(t) => t,
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI is set: {why}"),
        Err(why) => {
            eprintln!("SKIPPED browser test: {why}");
            return;
        }
    };
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
    browser.goto(&format!("{}/?video={RENEW}", fe.url)).await;
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

    let metrics = reqwest::get(format!("{}/metrics", fe.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expired: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("frontend_streams_expired_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(expired >= 1.0, "no stream expired: {metrics}");
    eprintln!("{expired} streams expired and were renewed by the page");
    let console = browser.console().await;
    let script_errors: Vec<_> = console.iter().filter(|l| l.starts_with("SEVERE")).collect();
    assert!(
        script_errors.is_empty(),
        "errors in the browser console: {script_errors:#?}"
    );
    browser.quit().await;
}
