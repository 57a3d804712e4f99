//! Trust under failure: what a real remote and a real machine do to a
//! promotion (a push that lands after its timeout, a remote that refuses or
//! hangs, a second process, a restart with the remote down), and that every
//! move is still recorded once, for the person who made it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Api, TestServer, daemon, free_port, hook};
use serde_json::{Value, json};

async fn events_of(api: &Api, token: &str, env: &str) -> Vec<Value> {
    let (_, audit) = api
        .get(&format!("/api/v1/audit?environment={env}"), Some(token))
        .await;
    audit["events"].as_array().unwrap().clone()
}

async fn environment(api: &Api, token: &str, name: &str) -> Value {
    let (_, body) = api.get("/api/v1/environments", Some(token)).await;
    body["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_lands_after_its_timeout_is_credited_to_its_requester() {
    let mut server = TestServer::new();
    let port = free_port();
    let _daemon = daemon(server.dir.path(), port);
    // The remote takes its time before accepting: longer than Envline waits.
    hook(
        &server,
        "pre-receive",
        "#!/bin/sh\ncat >/dev/null\nsleep 4\n",
    );
    server.extra_env = vec![
        (
            "ENVLINE_REPOSITORY_URL".into(),
            format!("git://127.0.0.1:{port}/remote.git"),
        ),
        (
            "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
            "2".into(),
        ),
    ];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    let before = server.remote_tip("integration");
    api.verify(&pat, "qa", &qa, "passed").await;
    let (status, body) = api
        .promote(
            &pat,
            json!({"environment": "integration", "reason": "slow remote"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "outcome_unknown", "{body}");
    // Until it is settled, nothing shows the move.
    assert_eq!(
        environment(&api, &pat, "integration").await["head"]["id"],
        before
    );
    // The remote finishes; refreshes settle the push for pat.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(server.remote_tip("integration"), qa, "it landed");
    for _ in 0..2 {
        let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
        assert_eq!(s, 200, "{b}");
    }
    let events = events_of(&api, &pat, "integration").await;
    let moves: Vec<&Value> = events.iter().filter(|e| e["new"] == qa).collect();
    assert_eq!(moves.len(), 1, "recorded once: {events:?}");
    assert_eq!(moves[0]["action"], "promote");
    assert_eq!(moves[0]["actor"], "pat", "the requester, not out_of_band");
    assert_eq!(moves[0]["reason"], "slow remote");
    assert!(
        events.iter().all(|e| e["action"] != "out_of_band"),
        "{events:?}"
    );
    assert_eq!(
        environment(&api, &pat, "integration").await["head"]["id"],
        qa
    );
}

/// A change whose outcome is not known yet holds up the moves that read
/// its branch, not only those of the branch itself: nothing decides from
/// where `integration` seems to be until its pending push is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsettled_change_holds_up_the_moves_that_read_its_branch() {
    let mut server = TestServer::new();
    let port = free_port();
    let _daemon = daemon(server.dir.path(), port);
    hook(
        &server,
        "pre-receive",
        "#!/bin/sh\ncat >/dev/null\nsleep 4\n",
    );
    server.extra_env = vec![
        (
            "ENVLINE_REPOSITORY_URL".into(),
            format!("git://127.0.0.1:{port}/remote.git"),
        ),
        (
            "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
            "2".into(),
        ),
    ];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    api.verify(&pat, "qa", &qa, "passed").await;
    let (status, body) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "outcome_unknown", "{body}");
    let before = server.all_remote_tips();
    // staging-eu's source is integration: refused until it is settled.
    let (status, body) = api
        .promote(&pat, json!({"environment": "staging-eu"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "unsettled", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("integration"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_ne!(
        server.all_remote_tips(),
        before,
        "integration's push landed"
    );
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (_, body) = api
        .promote(&pat, json!({"environment": "staging-eu"}))
        .await;
    assert_ne!(body["error"]["code"], "unsettled", "settled now: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_stopped_at_its_timeout_takes_its_helpers_with_it_and_fails() {
    let mut server = TestServer::new();
    // A local remote: git push runs receive-pack (and its hook) itself. When
    // Envline stops the push, the whole group stops: nothing lands later.
    hook(
        &server,
        "pre-receive",
        "#!/bin/sh\ncat >/dev/null\nsleep 4\n",
    );
    server.extra_env = vec![(
        "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
        "1".into(),
    )];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    let before = server.remote_tip("integration");
    api.verify(&pat, "qa", &qa, "passed").await;
    let (status, body) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(status, 503, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        server.remote_tip("integration"),
        before,
        "nothing landed later"
    );
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(server.clone_tip("integration"), before);
    let events = events_of(&api, &pat, "integration").await;
    assert!(events.iter().all(|e| e["new"] != qa), "{events:?}");
    // And the next promotion goes through.
    hook(&server, "pre-receive", "#!/bin/sh\ncat >/dev/null\n");
    let (status, body) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_auto_promotion_backs_off_instead_of_looping() {
    let mut server = TestServer::new();
    let attempts = server.dir.path().join("attempts");
    hook(
        &server,
        "pre-receive",
        &format!(
            "#!/bin/sh\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/qa ]; then echo x >> {}; echo 'qa is frozen by the hosting team' >&2; exit 1; fi\ndone\n",
            attempts.display()
        ),
    );
    server.extra_env = vec![("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE".into(), "true".into())];
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    // main is ahead of qa: auto-promotion tries, the remote refuses.
    for _ in 0..50 {
        if attempts.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Changes that wake auto-promotion must not make it push again at once.
    for _ in 0..5 {
        api.post(
            "/api/v1/holds",
            Some(&pat),
            json!({"environments": ["loadtest"], "reason": "wake up"}),
        )
        .await;
        let (_, holds) = api.get("/api/v1/holds", Some(&pat)).await;
        let id = holds["holds"][0]["id"].as_i64().unwrap();
        api.client
            .delete(format!("{}/api/v1/holds/{id}", api.base))
            .bearer_auth(&pat)
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // One attempt (the branch alone: the audit anchor follows in a push of
    // its own), then a wait of 30 s or more, however often something wakes
    // auto-promotion.
    let tries = std::fs::read_to_string(&attempts).unwrap().lines().count();
    assert_eq!(tries, 1, "one attempt, then a wait of 30 s or more");
    let qa = environment(&api, &pat, "qa").await;
    let failure = &qa["auto_promotion_failure"];
    assert_eq!(failure["failures"], 1, "{qa}");
    assert_eq!(failure["candidate"], server.remote_tip("main"));
    assert!(
        failure["message"].as_str().unwrap().contains("refused"),
        "{failure}"
    );
    assert!(failure["retry_at"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let mut server = TestServer::new();
    server.start();
    let pid = server.child.as_ref().unwrap().id();
    let out = Command::new(common::BIN)
        .arg("--config")
        .arg(&server.config)
        .arg("serve")
        .env(
            "ENVLINE_SERVER_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("ENVLINE_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {pid}")) && stderr.contains("data directory"),
        "{stderr}"
    );
    // The first one still serves.
    let (status, _) = Api::new(&server).get("/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_remote_does_not_stall_tests_approvals_or_holds() {
    let mut server = TestServer::new();
    // A remote that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    let pat = server.user("pat", &["promoter", "tester"]);
    let ann = server.user("ann", &["approver:prod-*"]);
    server.start();
    let api = Api::new(&server);
    let staging = server.remote_tip("staging-eu");
    api.verify(&pat, "staging-eu", &staging, "passed").await;
    let (_, request) = api.promote(&pat, json!({"environment": "prod-eu"})).await;
    let id = request["id"].as_i64().unwrap();
    server.stop();
    server.extra_env = vec![
        (
            "ENVLINE_REPOSITORY_URL".into(),
            format!("git://127.0.0.1:{port}/remote.git"),
        ),
        (
            "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
            "5".into(),
        ),
    ];
    server.start();
    // A fetch hangs on the silent remote for up to 5 s...
    let refresher = {
        let api = Api::new(&server);
        let pat = pat.clone();
        tokio::spawn(async move { api.post("/api/v1/refresh", Some(&pat), json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...while test results, approvals and holds, which touch only the
    // database, go through.
    let qa = server.remote_tip("qa");
    let (s, b) = api.verify(&pat, "qa", &qa, "passed").await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = api
        .post(
            &format!("/api/v1/promotions/{id}/approvals"),
            Some(&ann),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = api
        .post(
            "/api/v1/holds",
            Some(&pat),
            json!({"environments": ["loadtest"], "reason": "checking"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        !refresher.is_finished(),
        "the fetch was still hanging meanwhile"
    );
    refresher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_an_unsettled_change_and_the_remote_down_shows_where_branches_are() {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start_with(&[("ENVLINE_CRASH_AT", "after_local")]);
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    let before = server.remote_tip("integration");
    api.verify(&pat, "qa", &qa, "passed").await;
    assert!(
        api.post_and_die(
            "/api/v1/promotions",
            &pat,
            json!({"environment": "integration"})
        )
        .await,
        "the server died mid-request"
    );
    assert!(server.wait_exit(), "crashed after moving the clone");
    assert_eq!(server.clone_tip("integration"), qa, "the clone moved");
    // The remote is away when Envline starts again.
    let away = server.dir.path().join("remote-away.git");
    std::fs::rename(&server.remote, &away).unwrap();
    server.start();
    assert_eq!(
        environment(&api, &pat, "integration").await["head"]["id"],
        before,
        "the page and the API never show a move that has not happened"
    );
    assert_eq!(server.clone_tip("integration"), before);
    // The remote is back: the change is settled (it never reached the remote).
    std::fs::rename(&away, &server.remote).unwrap();
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(server.remote_tip("integration"), before);
    let (status, body) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.remote_tip("integration"), qa);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_whose_push_times_out_is_not_recorded_as_done() {
    let mut server = TestServer::new();
    server.extra_env = vec![(
        "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
        "1".into(),
    )];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let before = server.remote_tip("qa");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    let promoted = server.remote_tip("qa");
    // The remote now takes its time: the rollback's push is stopped.
    hook(
        &server,
        "pre-receive",
        "#!/bin/sh\ncat >/dev/null\nsleep 3\n",
    );
    let (s, b) = api
        .post(
            "/api/v1/rollbacks",
            Some(&pat),
            json!({"environments": ["qa"], "reason": "slow"}),
        )
        .await;
    assert_eq!(s, 503, "{b}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        server.remote_tip("qa"),
        promoted,
        "the rollback never landed"
    );
    // Its old position descends from its target: that must not pass for "landed".
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    let events = events_of(&api, &pat, "qa").await;
    assert!(
        events
            .iter()
            .all(|e| e["action"] != "rollback" && e["action"] != "out_of_band"),
        "{events:?}"
    );
    assert_eq!(server.clone_tip("qa"), promoted);
    assert_eq!(environment(&api, &pat, "qa").await["head"]["id"], promoted);
    assert_ne!(promoted, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_push_later_made_by_hand_is_out_of_band_not_the_requesters() {
    let mut server = TestServer::new();
    hook(
        &server,
        "pre-receive",
        "#!/bin/sh\nwhile read old new ref; do [ \"$ref\" = refs/heads/qa ] && exit 1; done\nexit 0\n",
    );
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    let main = server.remote_tip("main");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "remote_rejected");
    // Someone with access to the remote does it by hand.
    common::git(&server.remote, &["update-ref", "refs/heads/qa", &main]);
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    let events = events_of(&api, &pat, "qa").await;
    assert_eq!(events[0]["action"], "out_of_band", "{events:?}");
    assert!(
        events.iter().all(|e| e["action"] != "promote"),
        "{events:?}"
    );
}
