//! The audit log anchored in the repository (I5): deleting its newest rows,
//! or rewriting it and recomputing the whole chain, or editing the evidence
//! behind a gate, is found by `envline audit verify` and the API; a remote
//! that refuses the anchor ref is said so, and Envline keeps working.

mod common;

use std::time::Duration;

use common::{Api, TestServer, git};
use envline_engine::store::Pool;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A server with a promotion, a test result, an approval and a hold on
/// record, all anchored on the remote; stopped, ready for tampering.
async fn history() -> (TestServer, String) {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    let ann = server.user("ann", &["approver:prod-*"]);
    server.start();
    let api = Api::new(&server);
    let main = server.remote_tip("main");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    api.verify(&pat, "qa", &main, "passed").await;
    let staging = server.remote_tip("staging-eu");
    api.verify(&pat, "staging-eu", &staging, "passed").await;
    let (_, request) = api.promote(&pat, json!({"environment": "prod-eu"})).await;
    let id = request["id"].as_i64().unwrap();
    api.post(
        &format!("/api/v1/promotions/{id}/approvals"),
        Some(&ann),
        json!({"decision": "approve", "comment": "ok"}),
    )
    .await;
    api.post(
        "/api/v1/holds",
        Some(&pat),
        json!({"environments": ["loadtest"], "reason": "rig rebuild"}),
    )
    .await;
    // A refresh anchors what moved no branch.
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    intact_and_anchored(&api, &pat, "anchors on the remote").await;
    server.stop();
    (server, pat)
}

/// Waits (up to 10 s) until `GET /api/v1/audit/verify`'s word on the
/// anchor says `says`: the anchor follows a move by itself, a moment later.
async fn anchor_says(api: &Api, token: &str, says: &str) {
    for _ in 0..100 {
        let (_, check): (u16, Value) = api.get("/api/v1/audit/verify", Some(token)).await;
        if check["anchor"].as_str().is_some_and(|a| a.contains(says)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the anchor never said `{says}`");
}

/// Asserts that `GET /api/v1/audit/verify` finds the log intact and that
/// its word on the anchor says `says`.
async fn intact_and_anchored(api: &Api, token: &str, says: &str) {
    let (_, check): (u16, Value) = api.get("/api/v1/audit/verify", Some(token)).await;
    assert_eq!(check["intact"], true, "{check}");
    assert!(check["anchor"].as_str().unwrap().contains(says), "{check}");
}

async fn database(server: &TestServer) -> Pool {
    server.open_database_unguarded().await
}

fn verify(server: &TestServer) -> (Option<i32>, String) {
    let out = server.cli(&["audit", "verify"], &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_finds_deleted_newest_events() {
    let (server, _) = history().await;
    assert_eq!(verify(&server).0, Some(0), "{}", verify(&server).1);
    let pool = database(&server).await;
    let (last,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The chain alone cannot tell: the remaining rows still chain.
    sqlx::query("DELETE FROM audit_events WHERE id > $1")
        .bind(last - 2)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("missing from the database"), "{text}");
}

/// An audit row as a tamperer reads it: id, at, actor, action, environment,
/// old, new, reason, details.
type Row = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// The hash a tamperer recomputes for a row (the chain's own recipe).
fn rehash(prev: &str, row: &Row) -> String {
    let (id, at, actor, action, env, old, new, reason, details) = row;
    let canonical =
        json!([prev, id, at, actor, action, env, old, new, reason, details]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_finds_a_rewritten_and_rechained_log() {
    let (server, _) = history().await;
    let pool = database(&server).await;
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE action = 'promote'")
        .execute(&pool)
        .await
        .unwrap();
    // Recompute every hash so the chain itself is intact again.
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, action, environment, old_commit, new_commit, reason, details FROM audit_events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut prev = "0".repeat(64);
    for row in &rows {
        let hash = rehash(&prev, row);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE id = $3")
            .bind(&prev)
            .bind(&hash)
            .bind(row.0)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    pool.close().await;
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the log was rewritten"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_evidence_behind_a_gate_is_found() {
    let (server, _) = history().await;
    let pool = database(&server).await;
    sqlx::query("UPDATE verifications SET status = 'failed' WHERE environment = 'staging-eu'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE approvals SET comment = 'forged'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE holds SET reason = 'nothing to see'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    for found in ["test result", "decision on request", "hold"] {
        assert!(text.contains(found), "{found}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_the_log_does_not_explain_is_found() {
    let (server, _) = history().await;
    let main = server.remote_tip("main");
    git(
        &server.remote,
        &["update-ref", "refs/heads/loadtest", &main],
    );
    // The clone sees it at its next fetch; verify asks the clone as fetched.
    git(
        &server.dir.path().join("data/repository.git"),
        &["fetch", "-q", "origin"],
    );
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("`loadtest` is at"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_refuses_the_anchor_is_said_so_and_promotions_go_on() {
    let mut server = TestServer::new();
    {
        use std::os::unix::fs::PermissionsExt;
        let hook = server.remote.join("hooks/pre-receive");
        std::fs::write(
            &hook,
            "#!/bin/sh\nwhile read old new ref; do case \"$ref\" in refs/envline/*) echo 'custom refs are not allowed here' >&2; exit 1;; esac; done\n",
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    let main = server.remote_tip("main");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(server.remote_tip("qa"), main);
    anchor_says(&api, &pat, "not anchored: the remote refuses").await;
    intact_and_anchored(&api, &pat, "not anchored: the remote refuses").await;
    // Asked again with back-off (1 s, then 2 s): a remote that keeps
    // refusing is a standing problem, not a one-off.
    for wait in [1100, 2100] {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
        assert_eq!(s, 200);
    }
    let (_, check): (u16, Value) = api.get("/api/v1/audit/verify", Some(&pat)).await;
    let anchor = check["anchor"].as_str().unwrap();
    assert!(
        anchor.contains("standing problem") && anchor.contains("3 times"),
        "{check}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_anchor_push_does_not_stop_anchoring() {
    let mut server = TestServer::new();
    // "cannot lock ref" once: the hook refuses the anchor the first time only.
    let marker = server.dir.path().join("refused-once");
    common::hook(
        &server,
        "pre-receive",
        &format!(
            "#!/bin/sh
while read old new ref; do case \"$ref\" in refs/envline/*) if [ ! -e '{m}' ]; then touch '{m}'; echo \"error: cannot lock ref '$ref'\" >&2; exit 1; fi;; esac; done\n",
            m = marker.display()
        ),
    );
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    anchor_says(&api, &pat, "the remote refuses").await;
    assert!(marker.exists(), "the anchor was refused once");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    let anchored = git(
        &server.remote,
        &["rev-parse", "--verify", "-q", "refs/envline/audit"],
    );
    assert_eq!(anchored.len(), 40, "anchored after the refusal");
    intact_and_anchored(&api, &pat, "anchors on the remote").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewound_anchor_is_reported_and_not_built_upon() {
    let (mut server, pat) = history().await;
    server.start();
    let api = Api::new(&server);
    let newest = git(&server.remote, &["rev-parse", "refs/envline/audit"]);
    let older = git(&server.remote, &["rev-parse", "refs/envline/audit~1"]);
    // Someone with push rights moves the remote's anchor back one commit.
    git(
        &server.remote,
        &["update-ref", "refs/envline/audit", &older],
    );
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    let (_, check): (u16, Value) = api.get("/api/v1/audit/verify", Some(&pat)).await;
    assert_eq!(check["intact"], false, "{check}");
    let text = check.to_string();
    assert!(
        text.contains("rewound") && text.contains(&older[..10]) && text.contains(&newest[..10]),
        "{check}"
    );
    // New events are not anchored on top of the rewound anchor.
    let main = server.remote_tip("main");
    api.verify(&pat, "qa", &main, "failed").await;
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        git(&server.remote, &["rev-parse", "refs/envline/audit"]),
        older,
        "nothing built on the rewound anchor"
    );
    server.stop();
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&older[..10]) && text.contains(&newest[..10]),
        "{text}"
    );
}

/// The change the remote's newest anchor vouches for, once the anchor that
/// follows a move has landed (within a few seconds).
async fn anchored_intent(server: &TestServer) -> String {
    for _ in 0..100 {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&server.remote)
            .args(["show", "refs/envline/audit:intent"])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no anchor followed the move within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_anchored_right_after_and_anchors_carry_hashes_only() {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);
    let (s, b) = api
        .promote(
            &pat,
            json!({"environment": "qa", "reason": "secret-project-x"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // No refresh: the anchor of the change follows its push by itself.
    let intent = anchored_intent(&server).await;
    let events = git(&server.remote, &["log", "-p", "refs/envline/audit"]);
    assert!(
        !events.contains("secret-project-x"),
        "reasons stay out of the anchor: {events}"
    );
    assert!(!events.contains("\"actor\""), "{events}");
    server.stop();
    let (code, text) = verify(&server);
    assert_eq!(code, Some(0), "{text}");
    // Deleting the move's events (the newest rows: the chain still holds)
    // is found through the anchored change.
    let pool = database(&server).await;
    let id: i64 = intent.split_whitespace().next().unwrap().parse().unwrap();
    sqlx::query("DELETE FROM audit_events WHERE id >= (SELECT MIN(id) FROM audit_events WHERE details LIKE $1)")
        .bind(format!("%\"intent\":{id}%"))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (code, text) = verify(&server);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("change {id}")), "{text}");

    // `[audit] anchor_events = true` keeps whole events in the anchor.
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter"]);
    server.start_with(&[("ENVLINE_AUDIT_ANCHOR_EVENTS", "true")]);
    let api = Api::new(&server);
    api.promote(
        &pat,
        json!({"environment": "qa", "reason": "secret-project-x"}),
    )
    .await;
    let (s, _) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200);
    let events = git(&server.remote, &["log", "-p", "refs/envline/audit"]);
    assert!(events.contains("secret-project-x"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_people_and_tokens_are_audited_and_a_revoked_token_stops_working() {
    let mut server = TestServer::new();
    let token = server.user("cid", &["promoter"]);
    let out = server.cli(
        &[
            "user",
            "role",
            "cid",
            "--grant",
            "tester:qa",
            "--remove",
            "promoter",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = server.cli(&["token", "list", "--user", "cid"], &[]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        !listed.contains(&token),
        "tokens are never shown again: {listed}"
    );
    let id = listed.split_whitespace().next().unwrap().to_owned();
    let users = String::from_utf8_lossy(&server.cli(&["user", "list"], &[]).stdout).into_owned();
    assert!(
        users.contains("tester:qa") && !users.contains("promoter"),
        "{users}"
    );
    server.start();
    let api = Api::new(&server);
    let (s, _) = api.get("/api/v1/environments", Some(&token)).await;
    assert_eq!(s, 200);
    let out = server.cli(&["token", "revoke", &id], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A revoked token stops working (tokens are remembered for 5 s at most).
    let mut status = 200;
    for _ in 0..70 {
        status = api.get("/api/v1/environments", Some(&token)).await.0;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401);
    let admin = server.user("root", &["viewer"]);
    let (_, audit) = api.get("/api/v1/audit", Some(&admin)).await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["user"] == "cid")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "user_created",
        "role_granted",
        "token_created",
        "role_removed",
        "token_revoked",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    let text = audit.to_string();
    assert!(
        !text.contains(&token),
        "the token itself is never in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_of_the_check_cost_one_remote_read() {
    // The remote behind a real `git daemon` that logs every request.
    let mut server = TestServer::new();
    let port = common::free_port();
    let log = server.dir.path().join("daemon.log");
    let exec_path = String::from_utf8(
        std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let base = server.dir.path().to_owned();
    let mut daemon =
        std::process::Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--verbose",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(&base)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pat = server.user("pat", &["promoter"]);
    let url = format!("git://127.0.0.1:{port}/remote.git");
    server.start_with(&[("ENVLINE_REPOSITORY_URL", &url)]);
    let api = Api::new(&server);
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    let (_, first) = api.get("/api/v1/audit/verify", Some(&pat)).await;
    assert_eq!(first["intact"], true, "{first}");
    let requests = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Request upload-pack")
            .count()
    };
    let before = requests();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let (client, base, token) = (api.client.clone(), api.base.clone(), pat.clone());
        readers.push(tokio::spawn(async move {
            let r = client
                .get(format!("{base}/api/v1/audit/verify"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }));
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), first, "the same answer for every reader");
    }
    assert_eq!(
        requests() - before,
        0,
        "20 readers within refresh_seconds read the remote not once more"
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
