//! A network remote: `git daemon` on 127.0.0.1. Promotions push over it; when
//! it is gone, operations answer 503 and nothing moves.

mod common;

use common::{Api, TestServer, daemon, free_port};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_push_over_git_daemon_and_an_unreachable_remote_moves_nothing() {
    let mut server = TestServer::new();
    let port = free_port();
    let d = daemon(server.dir.path(), port);
    server.extra_env = vec![(
        "ENVLINE_REPOSITORY_URL".into(),
        format!("git://127.0.0.1:{port}/remote.git"),
    )];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    api.verify(&pat, "qa", &qa, "passed").await;
    let (s, b) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        server.remote_tip("integration"),
        qa,
        "pushed through git daemon"
    );

    drop(d);
    let loadtest = server.remote_tip("loadtest");
    let (s, b) = api.promote(&pat, json!({"environment": "loadtest"})).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "remote_unreachable");
    assert_eq!(server.remote_tip("loadtest"), loadtest);
    assert_eq!(
        server.clone_tip("loadtest"),
        loadtest,
        "the clone was restored"
    );
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 503, "{b}");
    let viewer = server.user("vic", &["viewer"]);
    let (_, envs) = api.get("/api/v1/environments", Some(&viewer)).await;
    assert!(
        envs["refresh_error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{envs}"
    );

    // Back again: the next operation goes through.
    let _d = daemon(server.dir.path(), port);
    let (s, b) = api.promote(&pat, json!({"environment": "loadtest"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(server.remote_tip("loadtest"), qa);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_times_out_after_the_remote_took_it_is_recorded_not_lost() {
    let mut server = TestServer::new();
    // The remote applies the update, then hangs in post-receive past Envline's limit.
    let hook = server.remote.join("hooks/post-receive");
    std::fs::write(&hook, "#!/bin/sh\nsleep 4\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    server.extra_env = vec![(
        "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS".into(),
        "2".into(),
    )];
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start();
    let api = Api::new(&server);
    let qa = server.remote_tip("qa");
    let before = server.remote_tip("integration");
    api.verify(&pat, "qa", &qa, "passed").await;
    let (s, b) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(
        s, 201,
        "git push timed out but the remote has the update: {b}"
    );
    assert_eq!(b["state"], "done");
    assert_eq!(server.remote_tip("integration"), qa);
    assert_eq!(server.clone_tip("integration"), qa);
    let viewer = server.user("vic", &["viewer"]);
    let (_, audit) = api
        .get("/api/v1/audit?environment=integration", Some(&viewer))
        .await;
    let event = &audit["events"][0];
    assert_eq!(event["action"], "promote", "{audit}");
    assert_eq!(event["actor"], "pat");
    assert_eq!(event["old"], before);
}
