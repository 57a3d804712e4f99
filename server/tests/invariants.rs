//! The invariants held against people, not only against faults (I3, I4,
//! holds): an approval counts only while its approver may approve, a
//! rollback is a failed verdict on the commit it left, and a hold or freeze
//! is lifted only by whoever could place it. Real server, real remote.

mod common;

use std::collections::HashMap;

use common::{Api, TestServer};
use serde_json::{Value, json};

/// The people of these scenarios and their roles.
const PEOPLE: &[(&str, &[&str])] = &[
    ("pat", &["promoter", "tester"]),
    ("paul", &["promoter"]),
    ("ann", &["approver:prod-*"]),
    ("bob", &["approver:prod-*"]),
    ("cat", &["approver:prod-*"]),
    ("ada", &["admin"]),
];

/// A started server with [`PEOPLE`], each with a token.
struct World {
    server: TestServer,
    api: Api,
    tokens: HashMap<&'static str, String>,
}

impl World {
    /// The token of one of [`PEOPLE`].
    fn t(&self, who: &str) -> &str {
        &self.tokens[who]
    }
}

async fn world() -> World {
    world_with(&[]).await
}

async fn world_with(env: &[(&str, &str)]) -> World {
    let mut server = TestServer::new();
    server.extra_env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let tokens = PEOPLE
        .iter()
        .map(|(name, roles)| (*name, server.user(name, roles)))
        .collect();
    server.start();
    let api = Api::new(&server);
    World {
        server,
        api,
        tokens,
    }
}

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn events(w: &World, query: &str) -> Vec<Value> {
    let (s, b) = w
        .api
        .get(&format!("/api/v1/audit?{query}"), Some(w.t("ada")))
        .await;
    assert_eq!(s, 200, "{b}");
    b["events"].as_array().unwrap().clone()
}

async fn approve(w: &World, token: &str, id: i64) -> (u16, Value) {
    w.api
        .post(
            &format!("/api/v1/promotions/{id}/approvals"),
            Some(token),
            json!({"decision": "approve", "comment": "looks good"}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_stops_counting_when_its_approver_loses_the_role() {
    let w = world().await;
    let staging = w.server.remote_tip("staging-eu");
    let prod_before = w.server.remote_tip("prod-eu");
    let (s, b) = w
        .api
        .verify(w.t("pat"), "staging-eu", &staging, "passed")
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, request) = w
        .api
        .promote(
            w.t("pat"),
            json!({"environment": "prod-eu", "reason": "release 2.0"}),
        )
        .await;
    assert_eq!(s, 201, "{request}");
    let id = request["id"].as_i64().unwrap();
    let (s, b) = approve(&w, w.t("bob"), id).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("awaiting_approval")));

    // An admin takes bob's approver role away (from the command line).
    ok(w.server
        .cli(&["user", "role", "bob", "--remove", "approver:prod-*"], &[]));
    // ann's approval would be the second: bob's no longer counts.
    let (s, b) = approve(&w, w.t("ann"), id).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "awaiting_approval", "{b}");
    assert_eq!(b["counted_approvers"], json!(["ann"]), "{b}");
    let bob = b["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["approver"] == "bob")
        .unwrap();
    assert!(
        bob["withdrawn"]
            .as_str()
            .is_some_and(|why| why.contains("removed bob's role approver:prod-*")),
        "{bob}"
    );
    assert_eq!(w.server.remote_tip("prod-eu"), prod_before, "nothing moved");
    // The preview's approvals gate says it, and how many are still needed.
    let (_, listed) = w
        .api
        .get(
            "/api/v1/promotions?state=awaiting_approval",
            Some(w.t("pat")),
        )
        .await;
    let listed = &listed["promotions"][0];
    assert_eq!(listed["id"], id, "{listed}");
    assert_eq!(listed["counted_approvers"], json!(["ann"]));

    // A third approver completes it; the move's event lists only those that counted.
    let (s, b) = approve(&w, w.t("cat"), id).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "done", "{b}");
    assert_eq!(w.server.remote_tip("prod-eu"), staging);
    let log = events(&w, "environment=prod-eu").await;
    let promote = log.iter().find(|e| e["action"] == "promote").unwrap();
    assert_eq!(promote["details"]["approvals"], json!(["ann", "cat"]));
    let withdrawn = log
        .iter()
        .find(|e| e["action"] == "approval_withdrawn")
        .expect("the withdrawal is audited");
    assert_eq!(withdrawn["details"]["approver"], "bob");
    assert_eq!(withdrawn["details"]["request"], id);
    let (_, check) = w.api.get("/api/v1/audit/verify", Some(w.t("ada"))).await;
    assert_eq!(check["intact"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_approver_withdraws_their_approvals_and_a_new_grant_needs_a_new_approval() {
    let w = world().await;
    let staging = w.server.remote_tip("staging-us");
    w.api
        .verify(w.t("pat"), "staging-us", &staging, "passed")
        .await;
    let (_, request) = w
        .api
        .promote(w.t("pat"), json!({"environment": "prod-us", "reason": "r"}))
        .await;
    let id = request["id"].as_i64().unwrap();
    approve(&w, w.t("bob"), id).await;
    // Removing the person withdraws the approval (REST, as an admin).
    let (s, b) = w.api.delete("/api/v1/users/bob", Some(w.t("ada"))).await;
    assert_eq!(s, 204, "{b}");
    let (_, b) = w
        .api
        .get(&format!("/api/v1/promotions/{id}"), Some(w.t("pat")))
        .await;
    assert_eq!(b["counted_approvers"], json!([]), "{b}");
    // cat's role is removed, then granted again: the old approval stays
    // withdrawn until cat approves again.
    approve(&w, w.t("cat"), id).await;
    ok(w.server
        .cli(&["user", "role", "cat", "--remove", "approver:prod-*"], &[]));
    ok(w.server
        .cli(&["user", "role", "cat", "--grant", "approver"], &[]));
    let (s, b) = approve(&w, w.t("ann"), id).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "awaiting_approval", "{b}");
    let (s, b) = approve(&w, w.t("cat"), id).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "done", "{b}");
    assert_eq!(w.server.remote_tip("prod-us"), staging);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_a_failed_verdict_that_no_source_walks_around() {
    let w = world().await;
    // qa, loadtest and integration take main's tip C, tested in each.
    let c = w.server.remote_tip("main");
    let (s, b) = w
        .api
        .promote(w.t("pat"), json!({"environment": "qa"}))
        .await;
    assert_eq!(s, 201, "{b}");
    w.api.verify(w.t("pat"), "qa", &c, "passed").await;
    for env in ["integration", "loadtest"] {
        let (s, b) = w.api.promote(w.t("pat"), json!({"environment": env})).await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = w.api.verify(w.t("pat"), env, &c, "passed").await;
        assert_eq!(s, 201, "{b}");
    }
    // integration is rolled back from C.
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(w.t("pat")),
            json!({"environments": ["integration"], "reason": "checkout broken"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let staging_before = w.server.remote_tip("staging-eu");
    // S6 from main with exactly C: refused, the gate names the rollback.
    let walk_around =
        json!({"environment": "staging-eu", "from": "main", "commit": c, "reason": "around"});
    let (s, b) = w.api.promote(w.t("pat"), walk_around.clone()).await;
    assert_eq!(s, 422, "{b}");
    let gate = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["environment"] == "integration")
        .unwrap_or_else(|| panic!("{b}"));
    let message = gate["message"].as_str().unwrap();
    assert!(
        message.contains("failed") && message.contains("rolled back by pat: checkout broken"),
        "{message}"
    );
    assert_eq!(w.server.remote_tip("staging-eu"), staging_before);
    // The preview shows the same gate.
    let (s, b) = w
        .api
        .post(
            "/api/v1/promotions/preview",
            Some(w.t("pat")),
            walk_around.clone(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let gates = b["previews"][0]["gates"].as_array().unwrap();
    assert!(
        gates
            .iter()
            .any(|g| g["environment"] == "integration" && g["met"] == false),
        "{b}"
    );
    // The verdict is in the log with the rollback.
    let log = events(&w, "environment=integration").await;
    let rollback = log.iter().find(|e| e["action"] == "rollback").unwrap();
    assert!(rollback["details"]["verification"].is_i64(), "{rollback}");
    // Once C passes in integration again, it may go on.
    let (s, b) = w.api.verify(w.t("pat"), "integration", &c, "passed").await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = w.api.promote(w.t("pat"), walk_around).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(w.server.remote_tip("staging-eu"), c);
    let (_, check) = w.api.get("/api/v1/audit/verify", Some(w.t("ada"))).await;
    assert_eq!(check["intact"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_is_lifted_only_by_whoever_could_place_it() {
    let w = world_with(&[("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "true")]).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (s, b) = w
        .api
        .post(
            "/api/v1/holds",
            Some(w.t("ada")),
            json!({"environments": ["staging-us"], "reason": "year-end freeze", "ends_at": until}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let freeze = b["holds"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{b}"));
    // A promoter may place holds, but not lift an admin's freeze.
    let (s, b) = w
        .api
        .delete(&format!("/api/v1/holds/{freeze}"), Some(w.t("pat")))
        .await;
    assert_eq!(s, 403, "{b}");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("placed by ada") && message.contains("only ada or an admin"),
        "{message}"
    );
    let (_, holds) = w.api.get("/api/v1/holds", Some(w.t("pat"))).await;
    assert!(
        holds["holds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == freeze),
        "the refused release changed nothing: {holds}"
    );
    // A promoter's own hold: they may lift it; another promoter may not.
    let (s, b) = w
        .api
        .post(
            "/api/v1/holds",
            Some(w.t("paul")),
            json!({"environments": ["loadtest"], "reason": "rig rebuild"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let own = b["holds"][0]["id"].as_i64().unwrap();
    let (s, _) = w
        .api
        .delete(&format!("/api/v1/holds/{own}"), Some(w.t("pat")))
        .await;
    assert_eq!(s, 403);
    let (s, b) = w
        .api
        .delete(&format!("/api/v1/holds/{own}"), Some(w.t("paul")))
        .await;
    assert_eq!(s, 204, "{b}");
    // The admin lifts the freeze.
    let (s, b) = w
        .api
        .delete(&format!("/api/v1/holds/{freeze}"), Some(w.t("ada")))
        .await;
    assert_eq!(s, 204, "{b}");
    // A rollback's hold: paul did not place it but may reset qa, so he may
    // release it; an approver may not.
    let main = w.server.remote_tip("main");
    for _ in 0..50 {
        if w.server.remote_tip("qa") == main {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(w.t("pat")),
            json!({"environments": ["qa"], "reason": "broken"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, holds) = w.api.get("/api/v1/holds", Some(w.t("pat"))).await;
    let reset_hold = holds["holds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["environment"] == "qa")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, b) = w
        .api
        .delete(&format!("/api/v1/holds/{reset_hold}"), Some(w.t("ann")))
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pat's rollback"),
        "{b}"
    );
    let (s, b) = w
        .api
        .delete(&format!("/api/v1/holds/{reset_hold}"), Some(w.t("paul")))
        .await;
    assert_eq!(s, 204, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cli_names_who_ran_it() {
    let w = world().await;
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.arg("--config")
        .arg(&w.server.config)
        .args(["user", "add", "eve", "--role", "viewer"])
        .env_remove("USER")
        .env_remove("ENVLINE_PASSWORD");
    ok(cmd.output().unwrap());
    ok(w.server.cli(
        &["user", "add", "fay", "--role", "viewer", "--actor", "alice"],
        &[],
    ));
    let bad = w.server.cli(
        &["user", "add", "gus", "--role", "viewer", "--actor", "a b"],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot name a person"));
    let log = events(&w, "action=user_created").await;
    let actor_of = |user: &str| {
        log.iter()
            .find(|e| e["details"]["user"] == user)
            .map(|e| e["actor"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{user}: {log:?}"))
    };
    let os_user = nix_user();
    assert_eq!(actor_of("eve"), format!("cli:{os_user}"));
    assert_ne!(actor_of("eve"), "cli:unknown");
    assert_eq!(actor_of("fay"), "cli:alice");
}

/// The name of the operating-system user running the tests.
fn nix_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
