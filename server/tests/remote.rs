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
    // Readiness says so, without taking the server out: pages and reads work.
    let (s, ready) = api.get("/readyz", Some(&pat)).await;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["remote"]["ok"], false, "{ready}");
    assert!(
        ready["remote"]["problem"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{ready}"
    );
    assert_eq!(ready["database"]["ok"], true, "{ready}");
    // Anyone may ask; what is wrong (hosts, paths) only a reader is told.
    let (s, anonymous) = api.get("/readyz", None).await;
    assert_eq!((s, &anonymous["status"]), (200, &json!("degraded")));
    assert_eq!(anonymous["remote"], json!({"ok": false}), "{anonymous}");
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
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, ready) = api.get("/readyz", None).await;
    assert_eq!((s, &ready["status"]), (200, &json!("ready")), "{ready}");
    assert_eq!(ready["role"], "leader", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_that_cannot_be_read_makes_the_server_unready() {
    let mut server = TestServer::new();
    let vic = server.user("vic", &["viewer"]);
    server.start();
    let api = Api::new(&server);
    let (s, ready) = api.get("/readyz", Some(&vic)).await;
    assert_eq!((s, &ready["status"]), (200, &json!("ready")), "{ready}");

    // The clone's folder goes away under the server (a disk swapped, a
    // careless cleanup): a balancer must stop sending people here.
    let clone = server.dir.path().join("data/repository.git");
    let aside = server.dir.path().join("data/repository.git.aside");
    std::fs::rename(&clone, &aside).unwrap();
    let (s, ready) = api.get("/readyz", Some(&vic)).await;
    assert_eq!(s, 503, "{ready}");
    assert_eq!(ready["status"], "unready", "{ready}");
    assert_eq!(ready["clone"]["ok"], false, "{ready}");
    assert!(
        ready["clone"]["problem"]
            .as_str()
            .unwrap()
            .contains("repository.git"),
        "{ready}"
    );
    assert_eq!(ready["database"]["ok"], true, "{ready}");

    std::fs::rename(&aside, &clone).unwrap();
    let (s, ready) = api.get("/readyz", Some(&vic)).await;
    assert_eq!((s, &ready["status"]), (200, &json!("ready")), "{ready}");
    server.stop();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_repository_url_is_never_shown() {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter"]);
    let closed = free_port();
    let url = format!("http://ci:s3cr3t-pw@127.0.0.1:{closed}/remote.git");
    // No clone yet: start-up fails, and says so without the password.
    let out = std::process::Command::new(common::BIN)
        .arg("--config")
        .arg(&server.config)
        .arg("serve")
        .env("ENVLINE_REPOSITORY_URL", &url)
        .env("ENVLINE_SERVER_LISTEN", &server.addr)
        .env("ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ci:***@127.0.0.1"), "{said}");
    assert!(!said.contains("s3cr3t-pw"), "{said}");
    // With a clone, the remote moves behind a URL with a password that
    // cannot be reached: the API and the log show the failure, never it.
    server.start();
    server.stop();
    let log = server.dir.path().join("server.log");
    server.log = Some(log.clone());
    server.start_with(&[
        ("ENVLINE_REPOSITORY_URL", url.as_str()),
        ("ENVLINE_LOG", "info"),
    ]);
    let api = Api::new(&server);
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 503);
    let (s, b) = api.get("/api/v1/environments", Some(&pat)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["refresh_error"].is_string(), "{b}");
    let (_, b2) = api
        .post(
            "/api/v1/promotions",
            Some(&pat),
            json!({"environment": "qa"}),
        )
        .await;
    server.stop();
    let everything = format!("{b}\n{b2}\n{}", std::fs::read_to_string(&log).unwrap());
    assert!(!everything.contains("s3cr3t-pw"), "{everything}");
}
