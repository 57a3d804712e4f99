//! Crash safety: the server is aborted at each step of a promotion; after a
//! restart the remote, the clone and the audit log agree.

mod common;

use common::{Api, TestServer};
use serde_json::json;

async fn promote_and_crash(step: &str) -> (TestServer, String, String) {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start_with(&[("ENVLINE_CRASH_AT", step)]);
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    let before = server.remote_tip("integration");
    let (s, _) = api.verify(&pat, "qa", &qa, "passed").await;
    assert_eq!(s, 201);
    let r = api
        .client
        .post(format!("{}/api/v1/promotions", api.base))
        .bearer_auth(&pat)
        .json(&json!({"environment": "integration"}))
        .send()
        .await;
    assert!(r.is_err(), "the server died mid-request");
    assert!(server.wait_exit(), "aborted at {step}");
    server.start();
    (server, before, qa)
}

async fn promote_events(server: &TestServer) -> Vec<serde_json::Value> {
    let viewer = server.user("vic", &["viewer"]);
    let (_, audit) = Api::new(server)
        .get("/api/v1/audit?environment=integration", Some(&viewer))
        .await;
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "promote")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_intent_changes_nothing() {
    let (server, before, _) = promote_and_crash("after_intent").await;
    assert_eq!(server.remote_tip("integration"), before);
    assert_eq!(server.clone_tip("integration"), before);
    assert!(promote_events(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_local_update_restores_the_clone() {
    let (server, before, _) = promote_and_crash("after_local").await;
    assert_eq!(server.remote_tip("integration"), before);
    assert_eq!(
        server.clone_tip("integration"),
        before,
        "the clone follows the remote again"
    );
    assert!(promote_events(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_push_is_recorded_for_the_requester() {
    let (server, before, qa) = promote_and_crash("after_push").await;
    assert_eq!(server.remote_tip("integration"), qa);
    assert_eq!(server.clone_tip("integration"), qa);
    let events = promote_events(&server).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "pat");
    assert_eq!(events[0]["old"], before);
    assert_eq!(events[0]["details"]["settled_later"], true);
    // Not also logged as a direct push.
    let viewer = server.user("vic2", &["viewer"]);
    let (_, audit) = Api::new(&server)
        .get("/api/v1/audit?environment=integration", Some(&viewer))
        .await;
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "out_of_band")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_recording_keeps_one_event() {
    let (server, _, qa) = promote_and_crash("after_record").await;
    assert_eq!(server.remote_tip("integration"), qa);
    assert_eq!(promote_events(&server).await.len(), 1);
}
