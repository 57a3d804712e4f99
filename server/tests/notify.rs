//! Notifications out: a receiver on 127.0.0.1 that refuses the first
//! attempts, then accepts, gets every event exactly once by `id`, including
//! an event raised just before the server is killed and restarted.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{Api, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    accepted: bool,
    body: Value,
    raw: Bytes,
    signature: Option<String>,
}

/// A chat tool's incoming webhook: down (503) until told to accept.
#[derive(Clone, Default)]
struct Receiver {
    accept: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        async fn hook(
            State(r): State<Receiver>,
            uri: Uri,
            headers: HeaderMap,
            raw: Bytes,
        ) -> StatusCode {
            let accepted = r.accept.load(Ordering::SeqCst);
            r.seen.lock().unwrap().push(Seen {
                path: uri.path().to_owned(),
                accepted,
                body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                raw,
                signature: headers
                    .get("x-envline-signature-256")
                    .map(|v| v.to_str().unwrap().to_owned()),
            });
            if accepted {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(hook))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Accepted deliveries to `path`, as (id, event).
    fn accepted(&self, path: &str) -> Vec<(String, String)> {
        self.seen()
            .into_iter()
            .filter(|s| s.accepted && s.path == path)
            .map(|s| {
                (
                    s.body["id"].as_str().unwrap().to_owned(),
                    s.body["event"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly_once_by_id_across_refusals_and_a_restart() {
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let mut server = TestServer::new();
    let mut config = std::fs::read_to_string(&server.config).unwrap();
    config.push_str(&format!(
        "\n[[notify]]\nurl = \"{base}/chat\"\nevents = [\"approval_needed\", \"promoted\", \"rolled_back\", \"out_of_band\", \"held\", \"hotfix_started\", \"hotfix_resolved\"]\n\
         \n[[notify]]\nurl = \"{base}/pager\"\nevents = [\"held\"]\nsecret = \"s3cret\"\n"
    ));
    std::fs::write(&server.config, config).unwrap();
    let pat = server.user("pat", &["promoter", "tester"]);
    let bob = server.user("bob", &["approver:prod-*", "tester"]);
    let out = server.cli(
        &["user", "add", "root", "--role", "admin"],
        &[("ENVLINE_PASSWORD", "root-secret-1")],
    );
    assert!(out.status.success());
    server.start();
    let api = Api::new(&server);

    // Two events while the receiver is down: a promotion, and a production
    // request that waits for approvers.
    let main = server.remote_tip("main");
    let qa_before = server.remote_tip("qa");
    let (s, b) = api
        .promote(&pat, json!({"environment": "qa", "reason": "weekly"}))
        .await;
    assert_eq!(s, 201, "{b}");
    let staging = server.remote_tip("staging-eu");
    let (s, _) = api.verify(&bob, "staging-eu", &staging, "passed").await;
    assert_eq!(s, 201);
    let (s, b) = api
        .promote(
            &pat,
            json!({"environment": "prod-eu", "reason": "release 1.6"}),
        )
        .await;
    assert_eq!(
        (s, b["state"].as_str()),
        (201, Some("awaiting_approval")),
        "{b}"
    );

    // A refused promotion (no test result in qa yet) raises nothing.
    let (s, b) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 422, "{b}");

    // Failing deliveries show in the API and in /metrics.
    until("two failing notifications", async || {
        let (_, b) = api
            .get("/api/v1/notifications?state=failing", Some(&pat))
            .await;
        b["notifications"].as_array().map_or(0, Vec::len) == 2
    })
    .await;
    let (_, b) = api
        .get("/api/v1/notifications?state=failing", Some(&pat))
        .await;
    let failing = &b["notifications"][0];
    assert_eq!(
        failing["target"],
        format!("{base}/…"),
        "the hook path is hidden"
    );
    assert!(
        failing["last_error"].as_str().unwrap().contains("503"),
        "{failing}"
    );
    let metrics = api.get_text("/metrics", &pat).await;
    assert!(
        metrics.contains("envline_notifications{state=\"failing\"} 2"),
        "{metrics}"
    );
    let (s, b) = api
        .get("/api/v1/notifications?state=sent", Some(&pat))
        .await;
    assert_eq!(s, 400, "{b}");

    // An admin sees them on the Admin page.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let signed = browser
        .post(server.url("/fn/sign_in"))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", server.addr))
        .form(&[("user", "root"), ("password", "root-secret-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let page = browser
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("2 notifications are failing"), "{page}");
    assert!(page.contains("the receiver answered 503"), "{page}");

    // An event raised just before the server dies.
    let (s, b) = api
        .post(
            "/api/v1/holds",
            Some(&pat),
            json!({"environments": ["integration"], "reason": "db migration"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    server.stop();

    // The receiver comes back, then the server: everything arrives, once.
    receiver.accept.store(true, Ordering::SeqCst);
    server.start();
    until("every notification delivered", async || {
        receiver.accepted("/chat").len() >= 3 && !receiver.accepted("/pager").is_empty()
    })
    .await;
    // Give a duplicate time to show up, should there be one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let chat = receiver.accepted("/chat");
    let mut events: Vec<&str> = chat.iter().map(|(_, e)| e.as_str()).collect();
    events.sort();
    assert_eq!(
        events,
        ["approval_needed", "held", "promoted"],
        "no notification of the refused promotion: {chat:?}"
    );
    let mut ids: Vec<&String> = chat.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each id once: {chat:?}");
    let pager = receiver.accepted("/pager");
    assert_eq!(pager.len(), 1, "only the events it asked for: {pager:?}");
    assert_eq!(pager[0].1, "held");

    // Every attempt carried the id of the delivery that finally landed.
    let seen = receiver.seen();
    assert!(
        seen.iter().any(|s| !s.accepted),
        "the first attempts were refused"
    );
    for s in &seen {
        let id = s.body["id"].as_str().unwrap();
        assert!(
            chat.iter().chain(&pager).any(|(landed, _)| landed == id),
            "{id} was tried but never landed"
        );
    }

    // What a chat tool shows, and the fields a bot reads.
    let promoted = seen
        .iter()
        .find(|s| s.accepted && s.body["event"] == "promoted")
        .unwrap();
    let p = &promoted.body;
    assert_eq!(p["environment"], "qa");
    assert_eq!(p["from"], qa_before);
    assert_eq!(p["to"], main);
    assert_eq!(p["actor"], "pat");
    assert_eq!(p["reason"], "weekly");
    assert_eq!(p["url"], format!("http://{}/env/qa", server.addr));
    assert!(
        p["text"].as_str().unwrap().starts_with(&format!(
            "pat promoted qa: {} → {}",
            &qa_before[..10],
            &main[..10]
        )),
        "{p}"
    );
    let asked = seen
        .iter()
        .find(|s| s.accepted && s.body["event"] == "approval_needed")
        .unwrap();
    assert_eq!(asked.body["environment"], "prod-eu");
    assert_eq!(asked.body["to"], staging);
    assert!(
        asked.body["text"]
            .as_str()
            .unwrap()
            .contains("prod-eu needs 2 approvals"),
        "{}",
        asked.body
    );

    // The pager's deliveries are signed with its secret.
    let signed = seen.iter().find(|s| s.path == "/pager").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(&signed.raw);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(signed.signature.as_deref(), Some(expected.as_str()));
    assert!(
        seen.iter()
            .filter(|s| s.path == "/chat")
            .all(|s| s.signature.is_none())
    );

    let (_, b) = api
        .get("/api/v1/notifications?state=delivered", Some(&pat))
        .await;
    assert_eq!(b["notifications"].as_array().unwrap().len(), 4, "{b}");
    let (_, b) = api
        .get("/api/v1/notifications?state=failing", Some(&pat))
        .await;
    assert_eq!(b["notifications"], json!([]));
}

#[test]
fn a_bad_notify_entry_is_refused_with_what_to_fix() {
    let server = TestServer::new();
    let mut config = std::fs::read_to_string(&server.config).unwrap();
    config
        .push_str("\n[[notify]]\nurl = \"https://chat.example.com/h\"\nevents = [\"deployed\"]\n");
    std::fs::write(&server.config, config).unwrap();
    let out = server.cli(&["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notify[0]")
            && err.contains("`deployed` is not an event")
            && err.contains("promoted"),
        "{err}"
    );
}

/// A receiver that takes connections and never answers: a hung chat tool.
async fn hung_receiver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_receiver_never_delays_another_and_a_dead_one_is_given_up() {
    let receiver = Receiver::default();
    receiver.accept.store(true, Ordering::SeqCst);
    let live = receiver.start().await;
    let (hung, _hung_task) = hung_receiver().await;
    // A receiver that refuses every attempt, given up after 2 s.
    let refusing = Receiver::default();
    let dead = refusing.start().await;
    let mut server = TestServer::new();
    let mut config = std::fs::read_to_string(&server.config).unwrap();
    config.push_str(&format!(
        "\n[[notify]]\nurl = \"{hung}/hook\"\nevents = [\"held\"]\n\
         \n[[notify]]\nurl = \"{live}/chat\"\nevents = [\"held\"]\n\
         \n[[notify]]\nurl = \"{dead}/pager\"\nevents = [\"held\"]\ngive_up_after = \"2s\"\n"
    ));
    std::fs::write(&server.config, config).unwrap();
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    // Three holds, one after another: each reaches the live receiver at
    // once, while the hung one holds its first attempt open for 10 s.
    let started = Instant::now();
    for env in ["qa", "integration", "loadtest"] {
        let want = receiver.accepted("/chat").len() + 1;
        let (s, b) = api
            .post(
                "/api/v1/holds",
                Some(&pat),
                json!({"environments": [env], "reason": "rig rebuild"}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        until("the live receiver", async || {
            receiver.accepted("/chat").len() >= want
        })
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the live receiver was not held up behind the hung one ({:?})",
        started.elapsed()
    );
    // The refusing receiver is given up on: dropped, audited, counted.
    until(
        "the dead receiver's notifications to be given up",
        async || {
            let (_, b) = api
                .get("/api/v1/notifications?state=dropped", Some(&pat))
                .await;
            b["notifications"].as_array().is_some_and(|n| n.len() == 3)
        },
    )
    .await;
    let (_, b) = api
        .get("/api/v1/notifications?state=dropped", Some(&pat))
        .await;
    for n in b["notifications"].as_array().unwrap() {
        assert!(
            n["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("given up after 2s")),
            "{n}"
        );
    }
    let (_, audit) = api
        .get("/api/v1/audit?action=notification_dropped", Some(&pat))
        .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 3, "{audit}");
    let metrics = api.get_text("/metrics", &pat).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("envline_notifications{state=\"dropped\"} 3")),
        "{metrics}"
    );
    let (_, check) = api.get("/api/v1/audit/verify", Some(&pat)).await;
    assert_eq!(check["intact"], true, "{check}");
}
