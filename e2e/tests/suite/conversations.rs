//! Conversations' write side against a real nats-server and the real publisher: typing
//! indicators (one event per burst, `until_ms` ahead, rate-limited), read receipts
//! (stored in the `RECEIPTS_{region}` bucket, then published with their revision, read
//! back as a reader's snapshot), bad input and refused tokens changing nothing, the same
//! over NATS ingest, the NATS roles of `nats/auth/`, and the latency from a request to a
//! NATS subscriber (printed, not asserted: `--nocapture`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{Service, publisher};
use futures::StreamExt;
use live_common::jwt::{Claims, Key};
use live_proto::conversations::ReadReceipts;
use live_proto::subjects::{self, ConversationEvent};
use live_proto::{ConversationId, Region, v1};
use prost::Message as _;
use serde_json::{Value, json};
use testkit::NatsServer;

const T: Duration = Duration::from_secs(10);
const SECRET: &str = "e2e-conversations-secret-0123456789abcdef";

fn key() -> Key {
    Key::new(SECRET.as_bytes())
}

fn now_ms() -> i64 {
    live_proto::now_ms()
}

/// A token for `sub`, member of `conversations`.
fn token(sub: &str, conversations: &[&str]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    key().sign(&Claims {
        sub: Some(sub.into()),
        exp: Some(exp),
        conversations: Some(conversations.iter().map(|c| c.to_string()).collect()),
        ..Default::default()
    })
}

fn conv(id: &str) -> ConversationId {
    ConversationId::parse(id).unwrap()
}

/// POSTs `body` (JSON) with an optional bearer token: status, `Retry-After`, answer.
async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut r = http.post(url).json(&body);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("POST");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn typing_url(p: &Service, c: &str) -> String {
    format!("{}/v1/conversations/{c}/typing", p.url)
}

fn read_url(p: &Service, c: &str) -> String {
    format!("{}/v1/conversations/{c}/read", p.url)
}

/// Every conversation event published, anywhere.
async fn watch_all(nats: &NatsServer) -> (async_nats::Client, async_nats::Subscriber) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let sub = client.subscribe("conv.v1.>").await.unwrap();
    e2e::server_has_subscriptions(&client).await;
    (client, sub)
}

/// What arrives within `quiet` of silence.
async fn drain(sub: &mut async_nats::Subscriber, quiet: Duration) -> Vec<async_nats::Message> {
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        got.push(m);
    }
    got
}

/// Reads a conversation's receipts as a frontend would: every current entry of the
/// region's bucket on `$KV.RECEIPTS_{region}.{conversation}.*`, merged.
async fn snapshot(
    client: &async_nats::Client,
    region: &str,
    conversation: &str,
) -> (ReadReceipts, usize) {
    let mut receipts = ReadReceipts::new(conv(conversation));
    let n = read_into(&mut receipts, client, region, region).await;
    (receipts, n)
}

/// Applies `origin`'s receipts of the conversation, as read in region `here` (from its
/// own bucket, or from here's mirror of origin's), to `receipts`; how many entries.
async fn read_into(
    receipts: &mut ReadReceipts,
    client: &async_nats::Client,
    origin: &str,
    here: &str,
) -> usize {
    let (origin, here) = (Region::parse(origin).unwrap(), Region::parse(here).unwrap());
    let c = receipts.conversation().clone();
    let stream = subjects::readable_stream(subjects::receipts_stream(&origin), &origin, &here);
    let stored = live_common::direct::read(
        client,
        "$JS.API",
        &stream,
        &subjects::receipts_of(&origin, &c),
        0,
        u64::MAX,
        10_000,
    )
    .await
    .unwrap_or_default();
    for m in &stored {
        receipts
            .apply_stored(&m.subject, m.seq, &m.payload)
            .expect("a valid entry");
    }
    stored.len()
}

async fn stored_receipts(client: &async_nats::Client) -> u64 {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream("KV_RECEIPTS_local").await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn a_burst_of_typing_is_one_event_until_a_few_seconds_ahead() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |_| {}).await;
    let (_client, mut sub) = watch_all(&nats).await;
    let http = reqwest::Client::new();

    let before = now_ms();
    let mut untils = Vec::new();
    for _ in 0..10 {
        let (status, _, body) =
            post(&http, &typing_url(&p, "c1"), None, json!({"user": "alice"})).await;
        assert_eq!(status, 202, "{body}");
        untils.push(body["until_ms"].as_i64().unwrap());
    }
    assert!(
        untils.iter().all(|u| *u == untils[0]),
        "one indicator: {untils:?}"
    );
    let got = drain(&mut sub, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1, "one event for the burst: {got:?}");
    assert_eq!(got[0].subject.as_str(), "conv.v1.local.c1.typing");
    let typing = v1::Typing::decode(got[0].payload.clone()).unwrap();
    assert_eq!(
        (typing.user.as_str(), typing.conversation.as_str()),
        ("alice", "c1")
    );
    assert_eq!(typing.until_ms, untils[0]);
    assert!(
        typing.until_ms >= before + 4_000 && typing.until_ms <= now_ms() + 5_000,
        "until_ms {} is ~5 s ahead of {before}",
        typing.until_ms
    );
    assert_eq!(typing.region, "local");

    // Another user, and another conversation, each get their own event.
    post(&http, &typing_url(&p, "c1"), None, json!({"user": "bob"})).await;
    post(&http, &typing_url(&p, "c2"), None, json!({"user": "alice"})).await;
    let got = drain(&mut sub, Duration::from_millis(500)).await;
    let subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["conv.v1.local.c1.typing", "conv.v1.local.c2.typing"]
    );
}

#[tokio::test]
async fn a_typing_flood_gets_429_with_retry_after() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| c.typing_per_sec = 1.0).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..5 {
        let (status, r, body) = post(
            &http,
            &typing_url(&p, "c1"),
            None,
            json!({"user": "mallory"}),
        )
        .await;
        if status == 429 {
            assert!(body["error"].as_str().is_some(), "{body}");
            retry = r;
        }
        statuses.push(status);
    }
    // Burst 2× of 1/s.
    assert_eq!(statuses, [202, 202, 429, 429, 429]);
    assert_eq!(retry.as_deref(), Some("1"));
    // Other users are not affected.
    let (status, _, _) = post(&http, &typing_url(&p, "c1"), None, json!({"user": "alice"})).await;
    assert_eq!(status, 202);
}

/// 500 different people typing in one conversation at once: its watchers get at most
/// the conversation's budget of events (`--conversation-typing-per-sec`, burst 2×), not
/// one per typist; the others are told 429, and other conversations are not affected.
#[tokio::test]
async fn a_crowd_typing_in_one_conversation_is_bounded() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| c.conversation_typing_per_sec = 5.0).await;
    let (_client, mut sub) = watch_all(&nats).await;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for i in 0..500 {
        let (status, _, body) = post(
            &http,
            &typing_url(&p, "crowd"),
            None,
            json!({"user": format!("u{i}")}),
        )
        .await;
        match status {
            202 => accepted += 1,
            429 => assert!(body["error"].is_string(), "{body}"),
            other => panic!("status {other}: {body}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let got = drain(&mut sub, Duration::from_millis(500)).await;
    let budget = (10.0 + 5.0 * secs).ceil() as usize;
    println!(
        "500 typists in {secs:.2} s: {} events, {accepted} accepted (budget {budget})",
        got.len()
    );
    assert_eq!(
        got.len(),
        accepted,
        "every accepted typist's event, and no other"
    );
    assert!(
        got.len() <= budget,
        "{} events > budget {budget}",
        got.len()
    );
    assert!(got.len() >= 10, "the burst goes out");
    // Another conversation has its own budget.
    let (status, _, _) = post(&http, &typing_url(&p, "quiet"), None, json!({"user": "u1"})).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_read_receipt_is_stored_then_published_and_read_back_as_a_snapshot() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |_| {}).await;
    let (client, mut sub) = watch_all(&nats).await;
    let http = reqwest::Client::new();

    let mut revisions = Vec::new();
    for (user, message) in [("alice", "m1"), ("bob", "m1"), ("alice", "m2")] {
        let (status, _, body) = post(
            &http,
            &read_url(&p, "c1"),
            None,
            json!({"user": user, "message": message}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        revisions.push(body["revision"].as_u64().unwrap());
    }
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");

    // Stored: the KV bucket has the latest per user.
    let js = async_nats::jetstream::new(client.clone());
    let kv = js.get_key_value("RECEIPTS_local").await.unwrap();
    let entry = kv
        .entry("c1.alice")
        .await
        .unwrap()
        .expect("alice's receipt");
    assert_eq!(entry.revision, revisions[2]);
    let stored = v1::ReadReceipt::decode(entry.value).unwrap();
    assert_eq!(
        (
            stored.user.as_str(),
            stored.message.as_str(),
            stored.region.as_str()
        ),
        ("alice", "m2", "local")
    );

    // Published, each with its revision.
    let got = drain(&mut sub, Duration::from_millis(500)).await;
    let live: Vec<(String, String, u64)> = got
        .iter()
        .map(|m| {
            assert_eq!(m.subject.as_str(), "conv.v1.local.c1.read");
            let r = v1::ReadReceipt::decode(m.payload.clone()).unwrap();
            (r.user, r.message, r.revision)
        })
        .collect();
    assert_eq!(
        live,
        [
            ("alice".into(), "m1".into(), revisions[0]),
            ("bob".into(), "m1".into(), revisions[1]),
            ("alice".into(), "m2".into(), revisions[2]),
        ]
    );

    // A reader's snapshot, then the live events it buffered: nothing goes backwards.
    let (mut receipts, entries) = snapshot(&client, "local", "c1").await;
    assert_eq!(entries, 2, "one entry per user");
    let expected = [("alice", "m2"), ("bob", "m1")]
        .map(|(u, m)| (u.to_owned(), m.to_owned()))
        .into();
    assert_eq!(receipts.snapshot(), expected);
    for m in &got {
        assert_eq!(
            receipts.apply_live(&m.payload),
            Ok(false),
            "already in the snapshot"
        );
    }
    assert_eq!(receipts.snapshot(), expected);
    // Another conversation's snapshot is empty.
    assert_eq!(snapshot(&client, "local", "c2").await.1, 0);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |_| {}).await;
    let (client, mut sub) = watch_all(&nats).await;
    let http = reqwest::Client::new();

    let cases: Vec<(String, Value, u16)> = vec![
        (typing_url(&p, "a.b"), json!({"user": "alice"}), 400),
        (typing_url(&p, "a*"), json!({"user": "alice"}), 400),
        (
            typing_url(&p, &"x".repeat(65)),
            json!({"user": "alice"}),
            400,
        ),
        (typing_url(&p, "c1"), json!({"user": "al.ice"}), 400),
        (typing_url(&p, "c1"), json!({"user": ">"}), 400),
        (typing_url(&p, "c1"), json!({}), 400),
        (
            typing_url(&p, "c1"),
            json!({"user": "alice", "until_ms": 1}),
            400,
        ),
        (typing_url(&p, "c1"), json!(["alice"]), 400),
        (
            read_url(&p, "a.b"),
            json!({"user": "alice", "message": "m1"}),
            400,
        ),
        (read_url(&p, "c1"), json!({"user": "alice"}), 400),
        (
            read_url(&p, "c1"),
            json!({"user": "alice", "message": ""}),
            400,
        ),
        (
            read_url(&p, "c1"),
            json!({"user": "alice", "message": "m.1"}),
            400,
        ),
        (
            read_url(&p, "c1"),
            json!({"user": "alice", "message": "m*"}),
            400,
        ),
        (
            read_url(&p, "c1"),
            json!({"user": "alice", "message": 7}),
            400,
        ),
        (
            read_url(&p, "c1"),
            json!({"user": "a b", "message": "m1"}),
            400,
        ),
        (
            read_url(&p, "c1"),
            json!({"user": "alice", "message": "m1", "x": 1}),
            400,
        ),
    ];
    for (url, body, expect) in &cases {
        let (status, _, answer) = post(&http, url, None, body.clone()).await;
        assert_eq!(status, *expect, "{url} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    // Not JSON, too large.
    let r = http
        .post(read_url(&p, "c1"))
        .header("content-type", "text/plain")
        .body(r#"{"user":"alice","message":"m1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let big = json!({"user": "alice", "message": "m1", "pad": "x".repeat(5000)});
    assert_eq!(post(&http, &read_url(&p, "c1"), None, big).await.0, 413);

    assert!(
        drain(&mut sub, Duration::from_millis(300)).await.is_empty(),
        "something was published"
    );
    assert_eq!(stored_receipts(&client).await, 0, "something was stored");
}

#[tokio::test]
async fn with_auth_the_user_is_the_sub_and_the_claim_lists_the_conversation() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| c.jwt_secret = Some(key())).await;
    let (client, mut sub) = watch_all(&nats).await;
    let http = reqwest::Client::new();
    let alice = token("alice", &["c1", "c3"]);

    let refused = [
        // Someone else's name.
        (
            typing_url(&p, "c1"),
            Some(alice.clone()),
            json!({"user": "bob"}),
            403,
        ),
        (
            read_url(&p, "c1"),
            Some(alice.clone()),
            json!({"user": "bob", "message": "m1"}),
            403,
        ),
        // Not a member of c2.
        (
            typing_url(&p, "c2"),
            Some(alice.clone()),
            json!({"user": "alice"}),
            403,
        ),
        (
            read_url(&p, "c2"),
            Some(alice.clone()),
            json!({"message": "m1"}),
            403,
        ),
        (
            typing_url(&p, "c1"),
            Some(token("alice", &[])),
            json!({}),
            403,
        ),
        (
            typing_url(&p, "c1"),
            Some(token("alice", &["*"])),
            json!({}),
            403,
        ),
        // No token, or a bad one.
        (typing_url(&p, "c1"), None, json!({"user": "alice"}), 401),
        (
            read_url(&p, "c1"),
            Some("x.y.z".into()),
            json!({"user": "alice", "message": "m1"}),
            401,
        ),
        (
            read_url(&p, "c1"),
            Some(
                Key::new(b"another-secret-of-at-least-32-bytes").sign(&Claims {
                    sub: Some("alice".into()),
                    exp: Some(u64::MAX / 2),
                    conversations: Some(vec!["c1".into()]),
                    ..Default::default()
                }),
            ),
            json!({"message": "m1"}),
            401,
        ),
    ];
    for (url, bearer, body, expect) in &refused {
        let (status, _, answer) = post(&http, url, bearer.as_deref(), body.clone()).await;
        assert_eq!(status, *expect, "{url} {body}: {answer}");
    }
    assert!(
        drain(&mut sub, Duration::from_millis(300)).await.is_empty(),
        "a refused request was published"
    );
    assert_eq!(
        stored_receipts(&client).await,
        0,
        "a refused receipt was stored"
    );

    // Allowed: with or without `user` (then the sub).
    let (status, _, _) = post(&http, &typing_url(&p, "c1"), Some(&alice), json!({})).await;
    assert_eq!(status, 202);
    let (status, _, _) = post(
        &http,
        &read_url(&p, "c3"),
        Some(&alice),
        json!({"user": "alice", "message": "m9"}),
    )
    .await;
    assert_eq!(status, 202);
    let got = drain(&mut sub, Duration::from_millis(300)).await;
    let subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["conv.v1.local.c1.typing", "conv.v1.local.c3.read"]
    );
}

#[tokio::test]
async fn typing_and_receipts_over_nats_ingest() {
    let nats = NatsServer::start();
    let p = publisher(&nats, |c| c.jwt_secret = Some(key())).await;
    let (client, mut sub) = watch_all(&nats).await;
    let request = |event, conversation: &str, payload: Vec<u8>| {
        let client = client.clone();
        let subject = subjects::conversation_ingest(&conv(conversation), event);
        async move {
            let reply = client
                .request(subject, payload.into())
                .await
                .expect("a reply");
            v1::IngestReply::decode(reply.payload).unwrap()
        }
    };
    let alice = token("alice", &["c1"]);
    let typing = |user: &str, token: &str| {
        v1::TypingRequest {
            user: user.into(),
            token: token.into(),
        }
        .encode_to_vec()
    };
    let read = |user: &str, message: &str, token: &str| {
        v1::ReadRequest {
            user: user.into(),
            message: message.into(),
            token: token.into(),
        }
        .encode_to_vec()
    };

    // Refused, as over HTTP: nothing published or stored.
    for (event, c, payload, status) in [
        (ConversationEvent::Typing, "c1", typing("bob", &alice), 403),
        (ConversationEvent::Typing, "c2", typing("", &alice), 403),
        (ConversationEvent::Typing, "c1", typing("alice", ""), 401),
        (
            ConversationEvent::Read,
            "c1",
            read("alice", "m.1", &alice),
            400,
        ),
        (
            ConversationEvent::Read,
            "c2",
            read("alice", "m1", &alice),
            403,
        ),
        (ConversationEvent::Read, "c1", vec![0xff, 0xff], 400),
    ] {
        let reply = request(event, c, payload).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(!reply.error.is_empty());
    }
    assert!(drain(&mut sub, Duration::from_millis(300)).await.is_empty());
    assert_eq!(stored_receipts(&client).await, 0);

    let t1 = request(ConversationEvent::Typing, "c1", typing("", &alice)).await;
    assert_eq!(t1.status, 202, "{t1:?}");
    assert!(t1.until_ms > now_ms());
    let t2 = request(ConversationEvent::Typing, "c1", typing("alice", &alice)).await;
    assert_eq!((t2.status, t2.until_ms), (202, t1.until_ms), "coalesced");
    let r = request(ConversationEvent::Read, "c1", read("alice", "m1", &alice)).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.revision > 0);

    let got = drain(&mut sub, Duration::from_millis(300)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        v1::Typing::decode(got[0].payload.clone()).unwrap().until_ms,
        t1.until_ms
    );
    assert_eq!(
        v1::ReadReceipt::decode(got[1].payload.clone())
            .unwrap()
            .revision,
        r.revision
    );
    assert_eq!(
        snapshot(&client, "local", "c1").await.0.snapshot(),
        [("alice".to_owned(), "m1".to_owned())].into()
    );
    drop(p);
}

// --- NATS roles -------------------------------------------------------------------

fn auth_conf() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../nats/auth/test.conf").to_owned()
}

async fn connect_as(
    nats: &NatsServer,
    user: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .user_and_password(user.into(), format!("{user}-test-password"))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    (client, rx)
}

async fn expect_violation(
    errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    subject: &str,
) {
    tokio::time::timeout(T, async {
        loop {
            let e = errors.recv().await.expect("connection alive");
            if e.contains("Permissions Violation") && e.contains(subject) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no permission violation for {subject}"));
}

/// The roles of nats/auth/permissions.conf are enough for the real services (the
/// publisher serves conversation ingest, stores receipts and publishes; an ingest client
/// posts; a frontend follows the live subjects and reads the receipts snapshot), and
/// refuse forging: a frontend or ingest client cannot publish live conversation events
/// or write receipts.
#[tokio::test]
async fn nats_roles_allow_the_conversation_paths_and_refuse_forgery() {
    let nats = NatsServer::start_with(&["-c", &auth_conf()]);
    let _p = publisher(&nats, |c| {
        c.nats.user = Some("publisher".into());
        c.nats.password = Some("publisher-test-password".into());
    })
    .await;
    let (fe, mut fe_errors) = connect_as(&nats, "frontend").await;
    let mut live = fe
        .subscribe(subjects::conversation_live_all(&conv("c1")))
        .await
        .unwrap();
    fe.flush().await.unwrap();
    let (ingest, mut ingest_errors) = connect_as(&nats, "ingest").await;

    let typing = v1::TypingRequest {
        user: "alice".into(),
        token: String::new(),
    };
    let reply = ingest
        .request(
            subjects::conversation_ingest(&conv("c1"), ConversationEvent::Typing),
            typing.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 202);
    let read = v1::ReadRequest {
        user: "alice".into(),
        message: "m1".into(),
        token: String::new(),
    };
    let reply = ingest
        .request(
            subjects::conversation_ingest(&conv("c1"), ConversationEvent::Read),
            read.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(v1::IngestReply::decode(reply.payload).unwrap().status, 202);
    for expected in ["conv.v1.local.c1.typing", "conv.v1.local.c1.read"] {
        let m = tokio::time::timeout(T, live.next()).await.unwrap().unwrap();
        assert_eq!(m.subject.as_str(), expected);
    }
    // The frontend reads the snapshot with its own role.
    let (receipts, _) = snapshot(&fe, "local", "c1").await;
    assert_eq!(
        receipts.snapshot(),
        [("alice".to_owned(), "m1".to_owned())].into()
    );
    let log = nats.log();
    assert!(
        !log.contains("Violation"),
        "the roles are not enough:\n{log}"
    );

    // Forgery is refused and never delivered.
    for subject in [
        "conv.v1.local.c1.typing",
        "conv.v1.local.c1.read",
        "$KV.RECEIPTS_local.c1.alice",
    ] {
        fe.publish(subject, "forged".into()).await.unwrap();
        fe.flush().await.unwrap();
        expect_violation(&mut fe_errors, subject).await;
        ingest.publish(subject, "forged".into()).await.unwrap();
        ingest.flush().await.unwrap();
        expect_violation(&mut ingest_errors, subject).await;
    }
    let _snoop = ingest.subscribe("conv.v1.>").await.unwrap();
    ingest.flush().await.unwrap();
    expect_violation(&mut ingest_errors, "conv.v1.>").await;
    let leaked = tokio::time::timeout(Duration::from_millis(300), live.next()).await;
    assert!(leaked.is_err(), "a forged event was delivered: {leaked:?}");
}

// --- Latency (reported, not asserted) ---------------------------------------------

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(at(1.0))
    )
}

/// Sequential requests, each timed from just before the POST (or NATS request) to the
/// moment a NATS subscriber of the conversation has the event; JetStream fsyncs every
/// write (`sync_interval: always`, as in `nats/local.conf`).
#[tokio::test]
async fn latency_from_request_to_a_nats_subscriber() {
    const N: usize = 1000;
    let conf = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(conf.path(), "jetstream {\n  sync_interval: always\n}\n").unwrap();
    let nats = NatsServer::start_with(&["-c", conf.path().to_str().unwrap()]);
    let p = publisher(&nats, |c| c.no_rate_limit = true).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = client
        .subscribe(subjects::conversation_live_all(&conv("lat")))
        .await
        .unwrap();
    e2e::server_has_subscriptions(&client).await;
    let http = reqwest::Client::new();
    // The publisher answers /healthz before its ingest subscription is surely in place:
    // wait for it (an unanswered publish below would be lost).
    let warm = subjects::conversation_ingest(&conv("warm"), ConversationEvent::Typing);
    let probe = v1::TypingRequest {
        user: "probe".into(),
        token: String::new(),
    };
    while client
        .request(warm.clone(), probe.encode_to_vec().into())
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut typing = Vec::with_capacity(N);
    let mut reads = Vec::with_capacity(N);
    let mut typing_nats = Vec::with_capacity(N);
    let mut reads_nats = Vec::with_capacity(N);
    for i in 0..N {
        // A new user each time: every request publishes (none is coalesced).
        let started = Instant::now();
        let r = http
            .post(typing_url(&p, "lat"))
            .json(&json!({"user": format!("u{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();
        typing.push(started.elapsed());

        let started = Instant::now();
        let r = http
            .post(read_url(&p, "lat"))
            .json(&json!({"user": "reader", "message": format!("m{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();
        reads.push(started.elapsed());

        for (event, payload, samples) in [
            (
                ConversationEvent::Typing,
                v1::TypingRequest {
                    user: format!("n{i}"),
                    token: String::new(),
                }
                .encode_to_vec(),
                &mut typing_nats,
            ),
            (
                ConversationEvent::Read,
                v1::ReadRequest {
                    user: "reader".into(),
                    message: format!("n{i}"),
                    token: String::new(),
                }
                .encode_to_vec(),
                &mut reads_nats,
            ),
        ] {
            let started = Instant::now();
            client
                .publish(
                    subjects::conversation_ingest(&conv("lat"), event),
                    payload.into(),
                )
                .await
                .unwrap();
            tokio::time::timeout(T, sub.next()).await.unwrap().unwrap();
            samples.push(started.elapsed());
        }
    }
    println!(
        "typing, HTTP POST -> NATS subscriber: {}",
        percentiles(typing)
    );
    println!(
        "read,   HTTP POST -> NATS subscriber: {}",
        percentiles(reads)
    );
    println!(
        "typing, NATS ingest -> NATS subscriber: {}",
        percentiles(typing_nats)
    );
    println!(
        "read,   NATS ingest -> NATS subscriber: {}",
        percentiles(reads_nats)
    );
}

// --- Two regions ------------------------------------------------------------------

/// East and west (one node each, joined by gateways), a publisher in each: a typing
/// indicator and a read receipt posted in east reach a subscriber in west through the
/// gateway (by interest), west's mirror of east's receipts bucket has the receipt, and a
/// reader in west merges both regions' buckets into one snapshot.
#[tokio::test]
async fn typing_and_receipts_cross_regions() {
    let sc = testkit::Supercluster::builder(&["east", "west"])
        .start()
        .await;
    let regions = vec!["east".to_owned(), "west".to_owned()];
    let publisher_in = |region: &'static str| {
        let (urls, regions) = (sc.region(region).urls(), regions.clone());
        async move {
            e2e::publisher_at(&urls, move |c| {
                c.region = region.into();
                c.regions = regions;
            })
            .await
        }
    };
    let east = publisher_in("east").await;
    let west = publisher_in("west").await;
    let reader = async_nats::connect(sc.region("west").urls()).await.unwrap();
    let mut live = reader
        .subscribe(subjects::conversation_live_all(&conv("c1")))
        .await
        .unwrap();
    reader.flush().await.unwrap();
    let http = reqwest::Client::new();

    // The subscription's interest reaches east within moments: until then an event
    // stays in east. A new user each time, so each request publishes.
    let mut crossed = None;
    for i in 0..100 {
        let user = format!("typist{i}");
        let (status, _, _) =
            post(&http, &typing_url(&east, "c1"), None, json!({"user": user})).await;
        assert_eq!(status, 202);
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), live.next()).await {
            crossed = Some(m);
            break;
        }
    }
    let m = crossed.expect("a typing event from east reached west");
    assert!(
        m.subject.as_str().starts_with("conv.v1.east.c1.typing"),
        "{}",
        m.subject
    );

    let (status, _, body) = post(
        &http,
        &read_url(&east, "c1"),
        None,
        json!({"user": "alice", "message": "m1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let m = loop {
        let m = tokio::time::timeout(T, live.next()).await.unwrap().unwrap();
        if m.subject.as_str().ends_with(".read") {
            break m;
        }
    };
    assert_eq!(m.subject.as_str(), "conv.v1.east.c1.read");
    let r = v1::ReadReceipt::decode(m.payload).unwrap();
    assert_eq!(
        (r.region.as_str(), r.revision),
        ("east", body["revision"].as_u64().unwrap())
    );

    let (status, _, _) = post(
        &http,
        &read_url(&west, "c1"),
        None,
        json!({"user": "bob", "message": "m2"}),
    )
    .await;
    assert_eq!(status, 202);

    // A reader in west: its own bucket and its mirror of east's (which may lag).
    let deadline = Instant::now() + Duration::from_secs(30);
    let merged = loop {
        let mut receipts = ReadReceipts::new(conv("c1"));
        read_into(&mut receipts, &reader, "east", "west").await;
        read_into(&mut receipts, &reader, "west", "west").await;
        if receipts.len() == 2 || Instant::now() > deadline {
            break receipts.snapshot();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        merged,
        [("alice", "m1"), ("bob", "m2")]
            .map(|(u, m)| (u.to_owned(), m.to_owned()))
            .into()
    );
}
