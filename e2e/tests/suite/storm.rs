//! A reconnect storm: a frontend holding 300 viewers is killed with -9 while comments
//! flow; each viewer waits its stream's `retry:` and comes back, with `Last-Event-ID`, to
//! one of the two surviving frontends (as a load balancer would send it). Every viewer
//! gets every comment exactly once, in order, and the survivors serve the resumes from
//! memory: their JetStream history reads stay a handful, where one read per resuming
//! viewer would be hundreds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::{Service, frontend_process, publisher};
use testkit::{NatsServer, SseClient};
use tokio::time::Instant;

/// Videos watched on every frontend: the survivors' rooms exist and their rings reach back.
const SHARED: [&str; 3] = ["storm0", "storm1", "storm2"];
/// A video watched only on the frontend that dies: the storm opens its rooms on the
/// survivors, whose rings know nothing from before (one shared read fills them).
const SOLO: &str = "stormsolo";
const VIEWERS: usize = 300;
const COMMENTS_PER_VIDEO: usize = 40;
const T: Duration = Duration::from_secs(40);

/// What one viewer saw.
struct Seen {
    video: &'static str,
    ids: Vec<String>,
    /// The frontend it ended on (index into the list it was given).
    ended_on: usize,
    resets: usize,
}

/// A viewer that starts on `urls[0]` and, when a connect fails, moves to the next URL
/// (a load balancer's choice of a live node); after a stream ends it waits the stream's
/// `retry:` and resumes with the last id it saw, as `EventSource` does.
async fn viewer(
    urls: Vec<String>,
    video: &'static str,
    connected: Arc<AtomicUsize>,
    want: usize,
) -> Seen {
    let mut seen = Seen {
        video,
        ids: Vec::new(),
        ended_on: 0,
        resets: 0,
    };
    let mut at = 0;
    let mut first = true;
    let _ = tokio::time::timeout(T, async {
        loop {
            let url = format!("{}/v1/videos/{video}/events", urls[at]);
            let last = seen.ids.last().cloned();
            let mut sse = match SseClient::connect(&url, last.as_deref()).await {
                Ok(sse) if sse.status == 200 => sse,
                _ => {
                    at = (at + 1) % urls.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let mut retry = 1_000;
            while let Some(e) = sse.next().await {
                if let Some(r) = e.retry {
                    retry = r;
                }
                match e.event.as_str() {
                    "snapshot" if first => {
                        first = false;
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    "comment" => {
                        seen.ids.push(e.id.expect("comment id"));
                        if seen.ids.len() >= want {
                            seen.ended_on = at;
                            return;
                        }
                    }
                    "reset" => seen.resets += 1,
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(retry)).await;
        }
    })
    .await;
    seen
}

/// The sum of a counter's series in a frontend's `/metrics`, by label set.
async fn counter(fe: &Service, name: &str) -> Vec<(String, f64)> {
    let text = e2e::metrics(&fe.url).await;
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((
                series.trim_start_matches(name).to_owned(),
                value.parse().ok()?,
            ))
        })
        .collect()
}

fn total(series: &[(String, f64)]) -> f64 {
    series.iter().map(|(_, v)| v).sum()
}

fn labelled(series: &[(String, f64)], label: &str) -> f64 {
    series
        .iter()
        .filter(|(s, _)| s.contains(label))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_dead_frontends_viewers_resume_on_the_survivors_from_memory_losing_nothing() {
    let nats = NatsServer::start();
    let publisher = publisher(&nats, |c| c.no_rate_limit = true).await;
    let args = ["--retry-min", "500ms", "--retry-max", "2s"];
    let (mut dying_proc, dying) = frontend_process(&nats.url(), &args).await;
    let (_p1, survivor1) = frontend_process(&nats.url(), &args).await;
    let (_p2, survivor2) = frontend_process(&nats.url(), &args).await;
    let survivors = [&survivor1, &survivor2];

    let connected = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // The survivors' own viewers of the shared videos (their rooms exist before).
    for (k, fe) in survivors.iter().enumerate() {
        for i in 0..10 {
            let video = SHARED[(i + k) % SHARED.len()];
            tasks.push(tokio::spawn(viewer(
                vec![fe.url.clone()],
                video,
                connected.clone(),
                COMMENTS_PER_VIDEO,
            )));
        }
    }
    // The dying node's viewers: a quarter on the solo video; each moves to one survivor
    // or the other, every video's viewers to both.
    for i in 0..VIEWERS {
        let video = if i % 4 == 3 { SOLO } else { SHARED[i % 4] };
        let k = (i / 4) % 2;
        let (a, b) = (survivors[k], survivors[1 - k]);
        let urls = vec![dying.url.clone(), a.url.clone(), b.url.clone()];
        tasks.push(tokio::spawn(viewer(
            urls,
            video,
            connected.clone(),
            COMMENTS_PER_VIDEO,
        )));
    }
    let all = tasks.len();
    assert!(
        e2e::eventually(Duration::from_secs(20), || connected
            .load(Ordering::Relaxed)
            == all)
        .await,
        "{} of {all} viewers connected",
        connected.load(Ordering::Relaxed)
    );

    // Comments flow, round robin over the videos, one every 10 ms.
    let posted = Arc::new(AtomicUsize::new(0));
    let poster = {
        let (url, posted) = (publisher.url.clone(), posted.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let videos: Vec<&str> = SHARED.iter().copied().chain([SOLO]).collect();
            let mut ids: Vec<(&str, String)> = Vec::new();
            for n in 0..COMMENTS_PER_VIDEO * videos.len() {
                let video = videos[n % videos.len()];
                let r = client
                    .post(format!("{url}/v1/videos/{video}/comments"))
                    .json(&serde_json::json!({"user": "storm", "text": format!("c{n}")}))
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(r.status(), 202);
                let body: serde_json::Value = r.json().await.unwrap();
                ids.push((video, body["id"].as_str().unwrap().to_owned()));
                posted.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ids
        })
    };
    // A third of the comments in, the node dies.
    let third = COMMENTS_PER_VIDEO * 4 / 3;
    while posted.load(Ordering::Relaxed) < third {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut reads_before = Vec::new();
    for fe in survivors {
        reads_before.push(counter(fe, "frontend_history_reads_total").await);
    }
    let killed = Instant::now();
    dying_proc.kill9();

    let ids = poster.await.unwrap();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    let storm_over = killed.elapsed();

    let mut reads = 0.0;
    let mut from_memory = 0.0;
    let mut from_history = 0.0;
    for (fe, before) in survivors.iter().zip(&reads_before) {
        let after = counter(fe, "frontend_history_reads_total").await;
        let delta = total(&after) - total(before);
        eprintln!(
            "{}: {delta} history reads during the storm ({after:?} after, {before:?} before)",
            fe.url
        );
        reads += delta;
        let resumes = counter(fe, "frontend_resumes_total").await;
        from_memory += labelled(&resumes, "memory");
        from_history += labelled(&resumes, "history");
    }
    eprintln!(
        "storm: {VIEWERS} viewers back and complete {storm_over:?} after the kill; survivors' \
         JetStream reads {reads}; resumes from memory {from_memory}, from history {from_history}"
    );

    for s in &seen {
        let want: Vec<&String> = ids
            .iter()
            .filter(|(v, _)| *v == s.video)
            .map(|(_, id)| id)
            .collect();
        let got: Vec<&String> = s.ids.iter().collect();
        assert_eq!(s.resets, 0, "a viewer of {} got a reset", s.video);
        assert_eq!(
            got, want,
            "a viewer of {} got every comment once, in order",
            s.video
        );
    }
    let moved = seen.iter().skip(20).filter(|s| s.ended_on > 0).count();
    assert_eq!(
        moved, VIEWERS,
        "every viewer of the dead node ended on a survivor"
    );
    // One read per resuming viewer would be at least 2 × 300 (the oldest retained
    // sequence, then the comments); from memory it is the solo video's room opening on
    // each survivor (tombstones, likes, newest sequence) and its one shared backfill.
    assert!(
        reads <= 20.0,
        "{reads} JetStream reads on the survivors during the storm"
    );
    assert!(
        from_memory >= (VIEWERS - 10) as f64,
        "{from_memory} of {VIEWERS} resumes from memory ({from_history} from history)"
    );
}
