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
    assert!(
        api.post_and_die(
            "/api/v1/promotions",
            &pat,
            json!({"environment": "integration"})
        )
        .await,
        "the server died mid-request"
    );
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

/// Killed (SIGKILL) at every step of a promotion while the remote is slow to
/// take pushes; started again with the remote away, then with it back. At
/// the end the remote, the clone and the audit log agree, and a move that
/// reached the remote is recorded once, for the person who asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_step_of_a_slow_push_the_remote_clone_and_log_agree() {
    for step in [
        "after_intent",
        "after_local",
        "during_push",
        "after_push_attempt",
        "after_push",
        "after_record",
    ] {
        let mut server = TestServer::new();
        {
            use std::os::unix::fs::PermissionsExt;
            let hook = server.remote.join("hooks/pre-receive");
            std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\nsleep 1\n").unwrap();
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let pat = server.user("pat", &["promoter", "tester"]);
        server.start_with(&[("ENVLINE_CRASH_AT", step)]);
        let api = Api::new(&server);
        let qa = server.remote_tip("qa");
        let before = server.remote_tip("integration");
        let (s, _) = api.verify(&pat, "qa", &qa, "passed").await;
        assert_eq!(s, 201, "{step}");
        assert!(
            api.post_and_die(
                "/api/v1/promotions",
                &pat,
                json!({"environment": "integration"})
            )
            .await,
            "{step}: the server died mid-request"
        );
        assert!(server.wait_exit(), "{step}: killed");
        // A push under way finishes on its own (git outlives Envline).
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let landed = server.remote_tip("integration") == qa;
        // Back with the remote away: nothing unsettled is shown as done.
        let away = server.dir.path().join("remote-away.git");
        std::fs::rename(&server.remote, &away).unwrap();
        server.start();
        let viewer = server.user("vic", &["viewer"]);
        let (_, envs) = api.get("/api/v1/environments", Some(&viewer)).await;
        let shown = envs["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "integration")
            .unwrap()["head"]["id"]
            .clone();
        let recorded = step == "after_record";
        assert_eq!(
            shown,
            if recorded { qa.clone() } else { before.clone() },
            "{step}: shown while the remote is away"
        );
        // The remote is back: everything is settled.
        std::fs::rename(&away, &server.remote).unwrap();
        let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
        assert_eq!(s, 200, "{step}: {b}");
        assert_eq!(
            server.remote_tip("integration"),
            server.clone_tip("integration"),
            "{step}: remote = clone"
        );
        let events = promote_events(&server).await;
        if landed {
            assert_eq!(events.len(), 1, "{step}: recorded once: {events:?}");
            assert_eq!(events[0]["actor"], "pat", "{step}");
            assert_eq!(events[0]["new"], qa, "{step}");
        } else {
            assert!(events.is_empty(), "{step}: {events:?}");
            assert_eq!(server.remote_tip("integration"), before, "{step}");
        }
        let (_, audit) = api
            .get("/api/v1/audit?environment=integration", Some(&viewer))
            .await;
        assert!(
            audit["events"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["action"] != "out_of_band"),
            "{step}: never out_of_band: {audit}"
        );
        let (_, check) = api.get("/api/v1/audit/verify", Some(&viewer)).await;
        assert_eq!(check["intact"], true, "{step}: {check}");
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_request_whose_push_never_happened_is_closed_as_failed() {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    let ann = server.user("ann", &["approver:prod-*"]);
    let bob = server.user("bob", &["approver:prod-*"]);
    server.start_with(&[("ENVLINE_CRASH_AT", "after_local")]);
    let api = Api::new(&server);
    let staging = server.remote_tip("staging-eu");
    let before = server.remote_tip("prod-eu");
    api.verify(&pat, "staging-eu", &staging, "passed").await;
    let (_, request) = api.promote(&pat, json!({"environment": "prod-eu"})).await;
    let id = request["id"].as_i64().unwrap();
    let path = format!("/api/v1/promotions/{id}/approvals");
    let (s, _) = api
        .post(&path, Some(&ann), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 200);
    // The last approval runs it; the server dies after moving the clone.
    assert!(
        api.post_and_die(&path, &bob, json!({"decision": "approve"}))
            .await
    );
    assert!(server.wait_exit());
    server.start();
    let (_, request) = api
        .get(&format!("/api/v1/promotions/{id}"), Some(&pat))
        .await;
    assert_eq!(request["state"], "failed", "not left awaiting: {request}");
    assert!(
        request["state_reason"]
            .as_str()
            .unwrap()
            .contains("request again"),
        "{request}"
    );
    assert_eq!(server.remote_tip("prod-eu"), before);
    assert_eq!(server.clone_tip("prod-eu"), before);
}
