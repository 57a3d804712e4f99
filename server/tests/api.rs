//! The HTTP API against a real server on a real temporary repository.

mod common;

use common::{Api, TestServer, git, git_in};
use serde_json::{Value, json};

struct World {
    server: TestServer,
    api: Api,
    pat: String,
    ann: String,
    bob: String,
    vic: String,
    ida: String,
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
    let pat = server.user("pat", &["promoter", "tester"]);
    let ann = server.user("ann", &["approver:prod-*"]);
    let bob = server.user("bob", &["approver:prod-*", "tester"]);
    let vic = server.user("vic", &["viewer"]);
    let ida = server.user("ida", &["incident-commander"]);
    server.start();
    let api = Api::new(&server);
    World {
        server,
        api,
        pat,
        ann,
        bob,
        vic,
        ida,
    }
}

/// Makes `env` hold `commit` for a while, as in a history the test did not
/// make itself: the branch is set on the remote around Envline and Envline
/// refreshes (so a test result for `commit` in `env` is one where it ran).
async fn held(w: &World, env: &str, commit: &str) {
    git(
        &w.server.remote,
        &["update-ref", &format!("refs/heads/{env}"), commit],
    );
    let (s, b) = w.api.post("/api/v1/refresh", Some(&w.pat), json!({})).await;
    assert_eq!(s, 200, "{b}");
}

fn audit_actions(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_report_the_remote_heads_and_distances() {
    let w = world().await;
    let (status, body) = w.api.get("/api/v1/environments", Some(&w.vic)).await;
    assert_eq!(status, 200, "{body}");
    let envs = body["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 10, "main and the nine seed environments");
    for env in envs {
        let name = env["branch"].as_str().unwrap();
        assert_eq!(env["head"]["id"], w.server.remote_tip(name), "{name}");
        for key in [
            "name",
            "from",
            "requires",
            "on_line",
            "behind_from",
            "position",
            "verification",
            "holds",
            "open_request",
        ] {
            assert!(env.get(key).is_some(), "{name} lacks {key}");
        }
    }
    let qa = envs.iter().find(|e| e["name"] == "qa").unwrap();
    assert_eq!(qa["behind_from"], 1);
    assert_eq!(qa["on_line"], true);
    let staging = envs.iter().find(|e| e["name"] == "staging-eu").unwrap();
    assert_eq!(staging["requires"], json!(["integration", "loadtest"]));
    assert_eq!(staging["behind_from"], 5);
    let (status, _) = w.api.get("/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_are_checked_and_refusals_name_the_permission() {
    let w = world().await;
    let (s, b) = w.api.get("/api/v1/environments", None).await;
    assert_eq!(s, 401, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("Bearer"));
    let (s, _) = w.api.get("/api/v1/environments", Some("envl_forged")).await;
    assert_eq!(s, 401);
    let (s, b) = w.api.promote(&w.vic, json!({"environment": "qa"})).await;
    assert_eq!(s, 403, "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("vic may not promote on `qa`") && msg.contains("promoter"),
        "{msg}"
    );
    assert_eq!(b["error"]["code"], "forbidden");
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(&w.pat),
            json!({"environments": ["prod-eu"]}),
        )
        .await;
    assert_eq!(
        s, 403,
        "protected environments need incident-commander: {b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("incident-commander")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_nothing_moves() {
    let w = world().await;
    let before = w.server.all_remote_tips();
    let qa = w.server.remote_tip("qa");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/api/v1/promotions", json!({"environment": "nope"}).to_string(), 404, "unknown environment"),
        ("/api/v1/promotions", json!({"environment": "../x"}).to_string(), 404, "unknown environment"),
        ("/api/v1/promotions", json!({"environment": "refs/heads/main"}).to_string(), 404, "unknown environment"),
        ("/api/v1/promotions", json!({"environment": "integration", "commit": "main~1"}).to_string(), 400, "not a commit id"),
        ("/api/v1/promotions", json!({"environment": "integration", "commit": "zzzzzzzz"}).to_string(), 400, "not a commit id"),
        ("/api/v1/promotions", json!({"environment": "integration", "commit": "0123456789abcdef0123456789abcdef01234567"}).to_string(), 404, "not a commit"),
        ("/api/v1/promotions", "{not json".to_string(), 400, "not the JSON"),
        ("/api/v1/promotions", json!({"environment": "qa", "bogus": 1}).to_string(), 400, "unknown field"),
        ("/api/v1/promotions", json!({"environment": "integration", "from": "nowhere"}).to_string(), 404, "unknown source"),
        ("/api/v1/verifications", json!({"environment": "qa", "commit": qa, "status": "great"}).to_string(), 400, "expected one of `passed`, `failed`, `pending`"),
        ("/api/v1/rollbacks", json!({"environments": []}).to_string(), 400, "at least one"),
        ("/api/v1/holds", json!({"environments": ["qa"], "reason": " "}).to_string(), 400, "reason"),
        ("/api/v1/holds", json!({"environments": ["qa"], "reason": "x", "ends_at": "tomorrow"}).to_string(), 400, "RFC 3339"),
        ("/api/v1/promotions/abc/approvals", json!({"decision": "approve"}).to_string(), 400, "not a request id"),
        ("/api/v1/promotions/999/approvals", json!({"decision": "approve"}).to_string(), 404, "no promotion request"),
        ("/api/v1/nothing-here", "{}".to_string(), 404, "no API endpoint"),
    ];
    for (path, body, status, text) in cases {
        let (s, b) = w.api.post_raw(path, Some(&w.pat), body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {b}");
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "{path} {body}: `{message}` should contain `{text}`"
        );
        assert!(b["error"]["code"].is_string());
    }
    let big = format!(
        "{{\"environment\": \"qa\", \"reason\": \"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let (s, b) = w
        .api
        .post_raw("/api/v1/promotions", Some(&w.pat), big)
        .await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "body_too_large");
    assert_eq!(w.server.all_remote_tips(), before, "no ref moved");
    let (_, audit) = w.api.get("/api/v1/audit", Some(&w.vic)).await;
    assert!(
        audit_actions(&audit).iter().all(|a| a == "observed"
            || ["user_created", "role_granted", "token_created"].contains(&a.as_str())),
        "only the first observations and the set-up of people: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_needs_the_exact_commit_verified_and_prod_needs_two_other_approvers() {
    let w = world().await;
    // qa moves on to main; it held `older` before.
    let older = w.server.remote_tip("qa");
    let (s, b) = w.api.promote(&w.pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    let qa = w.server.remote_tip("qa");
    // I3: integration requires qa; nothing verified yet.
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "integration", "reason": "weekly"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["details"][0]["environment"], "qa");
    // Another commit's verification does not count.
    let (s, _) = w.api.verify(&w.pat, "qa", &older, "passed").await;
    assert_eq!(s, 201);
    let (s, _) = w
        .api
        .promote(&w.pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 422);
    let (s, _) = w.api.post("/api/v1/verifications", Some(&w.pat), json!({"environment": "qa", "commit": &qa[..12], "status": "passed", "url": "https://ci/1"})).await;
    assert_eq!(s, 201);
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "integration", "reason": "weekly"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["state"], "done");
    assert_eq!(b["to_commit"], qa);
    assert_eq!(w.server.remote_tip("integration"), qa);
    assert_eq!(w.server.clone_tip("integration"), qa);
    // A later failed verification revokes it.
    let (s, _) = w.api.verify(&w.pat, "integration", &qa, "passed").await;
    assert_eq!(s, 201);
    let (s, _) = w.api.verify(&w.pat, "integration", &qa, "failed").await;
    assert_eq!(s, 201);
    let (s, b) = w
        .api
        .promote(&w.pat, json!({"environment": "staging-eu"}))
        .await;
    assert_eq!(s, 422, "{b}");
    let gates: Vec<&str> = b["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["environment"].as_str().unwrap())
        .collect();
    assert_eq!(gates, vec!["integration", "loadtest"]);
    // Not a fast-forward: qa to an older commit.
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "integration", "commit": older}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "not_fast_forward");

    // I4 on prod-eu: staging-eu's head verified there, then two approvers other than the requester.
    let staging = w.server.remote_tip("staging-eu");
    let prod_before = w.server.remote_tip("prod-eu");
    let (s, _) = w.api.verify(&w.bob, "staging-eu", &staging, "passed").await;
    assert_eq!(s, 201);
    let (s, req) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "prod-eu", "reason": "release 1.6"}),
        )
        .await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["state"], "awaiting_approval");
    let id = req["id"].as_i64().unwrap();
    let path = format!("/api/v1/promotions/{id}/approvals");
    let (s, b) = w
        .api
        .post(&path, Some(&w.pat), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 403, "pat is no approver: {b}");
    let (s, b) = w
        .api
        .post(
            &path,
            Some(&w.ann),
            json!({"decision": "approve", "comment": "looks good"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "awaiting_approval");
    let (s, b) = w
        .api
        .post(&path, Some(&w.ann), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["state"], "awaiting_approval",
        "the same approver twice counts once"
    );
    assert_eq!(w.server.remote_tip("prod-eu"), prod_before);
    let (s, b) = w
        .api
        .post(&path, Some(&w.bob), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "done", "{b}");
    assert_eq!(w.server.remote_tip("prod-eu"), staging);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=prod-eu", Some(&w.vic))
        .await;
    let promote = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "promote")
        .unwrap();
    assert_eq!(promote["actor"], "pat");
    assert_eq!(promote["details"]["approvals"], json!(["ann", "bob"]));
    assert_eq!(promote["old"], prod_before);
    let (s, b) = w.api.get("/api/v1/audit/verify", Some(&w.vic)).await;
    assert_eq!(s, 200);
    assert_eq!(b["intact"], true, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_cannot_approve_and_a_rejection_closes_the_request() {
    let w = world().await;
    let staging = w.server.remote_tip("staging-us");
    w.server.user("pat", &["approver"]);
    let (s, _) = w.api.verify(&w.bob, "staging-us", &staging, "passed").await;
    assert_eq!(s, 201);
    let (_, req) = w
        .api
        .promote(&w.pat, json!({"environment": "prod-us"}))
        .await;
    let path = format!("/api/v1/promotions/{}/approvals", req["id"]);
    // pat now has the approver role, yet requested it: separation of duties.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let (s, b) = w
        .api
        .post(&path, Some(&w.pat), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{b}"
    );
    let (s, b) = w
        .api
        .post(
            &path,
            Some(&w.ann),
            json!({"decision": "reject", "comment": "not on a Friday"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["state"], "rejected");
    let (s, b) = w
        .api
        .post(&path, Some(&w.bob), json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 409, "{b}");
    let (_, list) = w
        .api
        .get("/api/v1/promotions?state=rejected", Some(&w.vic))
        .await;
    assert_eq!(list["promotions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_promotions_move_the_environment_once() {
    let w = world().await;
    let qa = w.server.remote_tip("qa");
    let (s, _) = w.api.verify(&w.pat, "qa", &qa, "passed").await;
    assert_eq!(s, 201);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = w.api.client.clone();
        let url = format!("{}/api/v1/promotions", w.api.base);
        let token = w.pat.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"environment": "integration"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=integration", Some(&w.vic))
        .await;
    assert_eq!(
        audit_actions(&audit)
            .iter()
            .filter(|a| *a == "promote")
            .count(),
        1
    );
    assert_eq!(w.server.remote_tip("integration"), qa);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_to_the_previous_position_and_holds_auto_promotion() {
    let w = world_with(&[("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "true")]).await;
    // The demo leaves qa one commit behind main; the server may already have auto-promoted it.
    let qa_before = git(&w.server.remote, &["rev-parse", "main~1"]);
    let main = w.server.remote_tip("main");
    // qa auto-promotes from main (no gates): the server did it at start.
    for _ in 0..50 {
        if w.server.remote_tip("qa") == main {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(w.server.remote_tip("qa"), main, "qa auto-promoted to main");
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(&w.pat),
            json!({"environments": ["qa"], "reason": "checkout broken"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=qa", Some(&w.vic))
        .await;
    assert_eq!(w.server.remote_tip("qa"), qa_before, "{audit:#}");
    let (_, holds) = w.api.get("/api/v1/holds", Some(&w.vic)).await;
    let hold = &holds["holds"][0];
    assert_eq!(hold["environment"], "qa");
    assert_eq!(hold["kind"], "auto_promotion");
    // Held: auto-promotion does not move qa forward again.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(w.server.remote_tip("qa"), qa_before);
    // Rolling back to a commit qa never held is refused.
    let never = w.server.remote_tip("prod-asia");
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(&w.pat),
            json!({"environments": ["qa"], "to": never}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    // Protected environments: incident commander may.
    let prod = w.server.remote_tip("prod-eu");
    let (s, b) = w
        .api
        .post(
            "/api/v1/rollbacks",
            Some(&w.ida),
            json!({"environments": ["prod-*"]}),
        )
        .await;
    assert_eq!(s, 409, "no earlier position known: {b}");
    assert_eq!(w.server.remote_tip("prod-eu"), prod);
    // Releasing the hold lets auto-promotion move qa again.
    let id = hold["id"].as_i64().unwrap();
    let r = w
        .api
        .client
        .delete(format!("{}/api/v1/holds/{id}", w.api.base))
        .bearer_auth(&w.pat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    for _ in 0..50 {
        if w.server.remote_tip("qa") == main {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(w.server.remote_tip("qa"), main);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejecting_remote_leaves_clone_remote_and_audit_unchanged() {
    let mut w = world().await;
    let hook = w.server.remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'frozen by policy' >&2\nexit 1\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let qa = w.server.remote_tip("qa");
    let integration = w.server.remote_tip("integration");
    w.api.verify(&w.pat, "qa", &qa, "passed").await;
    let (s, b) = w
        .api
        .promote(&w.pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "remote_rejected");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed")
    );
    assert_eq!(w.server.remote_tip("integration"), integration);
    assert_eq!(w.server.clone_tip("integration"), integration);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=integration", Some(&w.vic))
        .await;
    assert!(!audit_actions(&audit).contains(&"promote".to_string()));
    let (_, list) = w
        .api
        .get("/api/v1/promotions?state=done", Some(&w.vic))
        .await;
    assert!(
        list["promotions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["environment"] != "integration")
    );
    w.server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_pushes_are_logged_out_of_band_and_off_line_environments_realign() {
    let w = world().await;
    // Someone pushes straight to staging-eu a commit that is not on main.
    let staging = w.server.remote_tip("staging-eu");
    let work = w.server.dir.path().join("work");
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "-b", "staging-eu"])
        .arg(&w.server.remote)
        .arg(&work)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(
        work.join("envs/staging-eu/settings.yml"),
        "hotfixed: true\n",
    )
    .unwrap();
    git_in(&work, &["commit", "-qam", "direct fix"]);
    git_in(&work, &["push", "-q", "origin", "staging-eu"]);
    let (s, _) = w.api.post("/api/v1/refresh", Some(&w.pat), json!({})).await;
    assert_eq!(s, 200);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=staging-eu", Some(&w.vic))
        .await;
    let event = &audit["events"][0];
    assert_eq!(event["action"], "out_of_band");
    assert_eq!(event["old"], staging);
    let (_, envs) = w.api.get("/api/v1/environments", Some(&w.vic)).await;
    let env = envs["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "staging-eu")
        .unwrap()
        .clone();
    assert_eq!(env["on_line"], false);
    // The timeline draws it beside the line: its stray commit, where it left.
    let (_, timeline) = w.api.get("/api/v1/timeline?limit=1", Some(&w.vic)).await;
    let off = &timeline["off_line"][0];
    assert_eq!(off["environment"], "staging-eu", "{timeline}");
    assert_eq!(off["stray_total"], 1);
    assert_eq!(off["stray"][0]["subject"], "direct fix");
    assert_eq!(off["left_at"]["id"], staging);
    assert!(off["left_at_position"].as_u64().is_some());
    // Promotions into an off-line environment are refused until realigned.
    let integration = w.server.remote_tip("integration");
    held(&w, "loadtest", &integration).await;
    for required in ["integration", "loadtest"] {
        w.api.verify(&w.pat, required, &integration, "passed").await;
    }
    let (s, b) = w
        .api
        .promote(&w.pat, json!({"environment": "staging-eu"}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "off_line");
    let (s, b) = w
        .api
        .post(
            "/api/v1/realignments",
            Some(&w.pat),
            json!({"environment": "staging-eu", "reason": "back on the line"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(w.server.remote_tip("staging-eu"), integration);
    let _ = git(&w.server.remote, &["rev-parse", "HEAD"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_cherry_pick_puts_the_environment_off_the_line() {
    let w = world().await;
    let integration_before = w.server.remote_tip("integration");
    // The newest version bump conflicts with the older bumps integration lacks: refused, nothing moves.
    let bump = w.server.remote_tip("main");
    held(&w, "qa", &bump).await;
    w.api.verify(&w.pat, "qa", &bump, "passed").await;
    let (s, b) = w
        .api
        .post(
            "/api/v1/cherry-picks",
            Some(&w.pat),
            json!({"environment": "integration", "commit": bump}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "merge_conflict");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("base/deployment.yml")
    );
    assert_eq!(w.server.remote_tip("integration"), integration_before);
    // An environment-specific change integration lacks applies cleanly.
    let log = git(
        &w.server.remote,
        &[
            "log",
            "--format=%H %s",
            &format!("{integration_before}..main"),
        ],
    );
    let main = log
        .lines()
        .find(|l| !l.contains("build-bot"))
        .expect("a settings change ahead of integration")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    held(&w, "qa", &main).await;
    let (s, _) = w.api.verify(&w.pat, "qa", &main, "passed").await;
    assert_eq!(s, 201);
    // The preview shows that commit's change alone, its gates met, and moves nothing.
    let (s, p) = w
        .api
        .post(
            "/api/v1/cherry-picks/preview",
            Some(&w.pat),
            json!({"environment": "integration", "commit": main}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["kind"], "cherry_pick");
    assert_eq!(p["candidate"]["id"], main);
    assert_eq!(p["commits_total"], 1);
    assert!(p["blocked"].is_null(), "{p}");
    assert!(
        p["gates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["met"] == true),
        "{p}"
    );
    assert_eq!(w.server.remote_tip("integration"), integration_before);
    let (s, b) = w.api.post("/api/v1/cherry-picks", Some(&w.pat), json!({"environment": "integration", "commit": main, "reason": "urgent settings change"})).await;
    assert_eq!(s, 201, "{b}");
    // Picking it again would change nothing: the preview and the pick say so.
    let picked = w.server.remote_tip("integration");
    let (_, p) = w
        .api
        .post(
            "/api/v1/cherry-picks/preview",
            Some(&w.pat),
            json!({"environment": "integration", "commit": main}),
        )
        .await;
    assert_eq!(p["blocked"]["code"], "already_there", "{p}");
    let (s, b) = w
        .api
        .post(
            "/api/v1/cherry-picks",
            Some(&w.pat),
            json!({"environment": "integration", "commit": main, "reason": "again"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "already_there");
    assert_eq!(w.server.remote_tip("integration"), picked, "nothing moved");
    let new = w.server.remote_tip("integration");
    assert_ne!(new, integration_before);
    assert_eq!(
        git(&w.server.remote, &["rev-parse", &format!("{new}^")]),
        integration_before
    );
    let message = git(&w.server.remote, &["log", "-1", "--format=%B", &new]);
    assert!(
        message.contains(&format!("cherry picked from commit {main}")),
        "{message}"
    );
    let (_, envs) = w.api.get("/api/v1/environments", Some(&w.vic)).await;
    let env = envs["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "integration")
        .unwrap()
        .clone();
    assert_eq!(env["on_line"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_audit_log_is_detected() {
    let mut w = world().await;
    let qa = w.server.remote_tip("qa");
    w.api.verify(&w.pat, "qa", &qa, "passed").await;
    w.server.stop();
    let ok = w.server.cli(&["audit", "verify"], &[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let pool = w.server.open_database_unguarded().await;
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE id = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let broken = w.server.cli(&["audit", "verify"], &[]);
    assert_eq!(broken.status.code(), Some(1));
    let text = String::from_utf8_lossy(&broken.stdout);
    assert!(text.contains("event 2 was changed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_environments_are_promoted_together_or_not_at_all() {
    let w = world().await;
    let integration = w.server.remote_tip("integration");
    let before = w.server.all_remote_tips();
    // Only integration verified: every staging environment lacks loadtest; nothing moves.
    w.api
        .verify(&w.pat, "integration", &integration, "passed")
        .await;
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environments": ["staging-*"], "reason": "release train"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(
        b["error"]["details"].as_array().unwrap().len(),
        3,
        "one unmet gate per staging environment: {b}"
    );
    assert_eq!(w.server.all_remote_tips(), before);
    held(&w, "loadtest", &integration).await;
    w.api
        .verify(&w.pat, "loadtest", &integration, "passed")
        .await;
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environments": ["staging-*"], "reason": "release train"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let promotions = b["promotions"].as_array().unwrap();
    assert_eq!(promotions.len(), 3);
    assert!(
        promotions
            .iter()
            .all(|p| p["state"] == "done" && p["to_commit"] == integration),
        "{b}"
    );
    for env in ["staging-eu", "staging-us", "staging-asia"] {
        assert_eq!(w.server.remote_tip(env), integration, "{env}");
    }
    let (_, audit) = w.api.get("/api/v1/audit", Some(&w.vic)).await;
    let promotes: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "promote")
        .collect();
    assert_eq!(promotes.len(), 3);
    assert!(
        promotes
            .iter()
            .all(|e| e["details"]["intent"] == promotes[0]["details"]["intent"]),
        "one atomic operation"
    );
    let (s, b) = w
        .api
        .promote(&w.pat, json!({"environment": "qa", "environments": ["qa"]}))
        .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_where_environments_are_and_what_each_commit_affects() {
    let w = world().await;
    let (s, b) = w.api.get("/api/v1/timeline?limit=100", Some(&w.vic)).await;
    assert_eq!(s, 200, "{b}");
    let commits = b["commits"].as_array().unwrap();
    assert_eq!(commits[0]["id"], w.server.remote_tip("main"));
    assert!(
        commits[0]["environments"].as_array().unwrap().is_empty()
            || commits[0]["environments"] == json!(["qa"])
    );
    let find = |prefix: &str| {
        commits
            .iter()
            .find(|c| c["subject"].as_str().unwrap().starts_with(prefix))
            .unwrap()
            .clone()
    };
    let all: Vec<Value> = [
        "qa",
        "integration",
        "loadtest",
        "staging-eu",
        "staging-us",
        "staging-asia",
        "prod-eu",
        "prod-us",
        "prod-asia",
    ]
    .iter()
    .map(|n| json!(n))
    .collect();
    assert_eq!(
        find("build-bot")["affects"],
        Value::Array(all),
        "a version bump affects everything"
    );
    assert_eq!(
        find("prod: add the PodDisruptionBudget")["affects"],
        json!(["prod-eu", "prod-us", "prod-asia"])
    );
    assert_eq!(
        find("staging-asia: 3 replicas")["affects"],
        json!(["staging-asia"])
    );
    assert_eq!(
        find("qa: same replica count as staging-asia")["affects"],
        json!(["qa"])
    );
    let prod_eu = w.server.remote_tip("prod-eu");
    let at = commits.iter().find(|c| c["id"] == prod_eu).unwrap();
    assert!(
        at["environments"]
            .as_array()
            .unwrap()
            .contains(&json!("prod-eu"))
    );
    // Paging.
    let second = commits[1]["id"].as_str().unwrap().to_owned();
    let (s, b) = w
        .api
        .get(
            &format!(
                "/api/v1/timeline?limit=1&before={}",
                commits[0]["id"].as_str().unwrap()
            ),
            Some(&w.vic),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["commits"][0]["id"], second);
    // Paging by position: the line's length, and the same commits again
    // (served from what the first page computed).
    let total = b["total"].as_u64().unwrap();
    assert_eq!(commits[0]["position"].as_u64().unwrap(), total - 1);
    let (s, b) = w
        .api
        .get(
            &format!("/api/v1/timeline?limit=2&position={}", total - 2),
            Some(&w.vic),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["commits"][0]["id"], second);
    assert_eq!(
        b["commits"][0], commits[1],
        "the same entry from either way in"
    );
    let (s, b) = w
        .api
        .get("/api/v1/timeline?limit=5&position=0", Some(&w.vic))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["commits"].as_array().unwrap().len(),
        1,
        "the oldest commit is last"
    );
    let (s, b) = w
        .api
        .get(&format!("/api/v1/timeline?position={total}"), Some(&w.vic))
        .await;
    assert_eq!(s, 404, "no commit is at that position: {b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("past the line's newest commit"),
        "{b}"
    );
    let (s, b) = w
        .api
        .get(
            &format!("/api/v1/timeline?position=1&before={second}"),
            Some(&w.vic),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "conflicting_parameters");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("not both"),
        "{b}"
    );
    let (s, _) = w.api.get("/api/v1/timeline?limit=0", Some(&w.vic)).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_exports_as_csv_filters_by_time_and_metrics_are_served() {
    let w = world().await;
    let qa = w.server.remote_tip("qa");
    w.api.post("/api/v1/verifications", Some(&w.pat), json!({"environment": "qa", "commit": qa, "status": "passed", "summary": "smoke, \"quoted\""})).await;
    let r = w
        .api
        .client
        .get(format!("{}/api/v1/audit?format=csv", w.api.base))
        .bearer_auth(&w.vic)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert!(
        csv.starts_with("id,at,actor,action,environment,old,new,reason,details,hash"),
        "{csv}"
    );
    assert!(csv.contains("\"smoke, \"\"quoted\"\"\""), "{csv}");
    let (s, b) = w
        .api
        .get("/api/v1/audit?since=2999-01-01T00:00:00Z", Some(&w.vic))
        .await;
    assert_eq!(s, 200);
    assert!(b["events"].as_array().unwrap().is_empty());
    let (s, _) = w
        .api
        .get("/api/v1/audit?since=yesterday", Some(&w.vic))
        .await;
    assert_eq!(s, 400);
    let (s, _) = w.api.get("/api/v1/audit?format=xml", Some(&w.vic)).await;
    assert_eq!(s, 400);
    // Filters by actor, action and a time window (a date, as a form sends
    // it), and pages by event id.
    let (_, all) = w.api.get("/api/v1/audit", Some(&w.vic)).await;
    let all = all["events"].as_array().unwrap().clone();
    let (s, b) = w
        .api
        .get(
            "/api/v1/audit?actor=pat&action=verify&environment=&until=2999-01-01",
            Some(&w.vic),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let mine = b["events"].as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|e| e["actor"] == "pat" && e["action"] == "verify")
    );
    assert_eq!(
        mine.len(),
        all.iter()
            .filter(|e| e["actor"] == "pat" && e["action"] == "verify")
            .count()
    );
    let (_, b) = w
        .api
        .get("/api/v1/audit?until=2000-01-01T00:00", Some(&w.vic))
        .await;
    assert!(b["events"].as_array().unwrap().is_empty());
    let (_, b) = w
        .api
        .get(
            &format!("/api/v1/audit?limit=2&before={}", all[0]["id"]),
            Some(&w.vic),
        )
        .await;
    assert_eq!(b["events"][0], all[1], "the page below the newest event");
    let (s, b) = w
        .api
        .get("/api/v1/audit?until=tomorrow", Some(&w.vic))
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`until` = `tomorrow` is not a time"),
        "{b}"
    );
    // Metrics are read like the rest: a token when anonymous reading is off.
    let (s, _) = w.api.get("/metrics", None).await;
    assert_eq!(s, 401);
    let metrics = w.api.get_text("/metrics", &w.vic).await;
    assert!(metrics.contains("envline_http_requests_total"), "{metrics}");
    // On SQLite the one server leads its own background work (replicas on
    // PostgreSQL: tests/replicas.rs).
    if w.server.database.is_none() {
        assert!(metrics.contains("envline_leader 1"), "{metrics}");
    }
    assert!(
        metrics.contains("envline_environment_behind_from{environment=\"prod-eu\"}"),
        "{metrics}"
    );
}

#[test]
fn a_bad_configuration_is_refused_with_file_line_and_key() {
    let server = TestServer::new();
    let text = std::fs::read_to_string(&server.config)
        .unwrap()
        .replace("from = \"staging-us\"", "from = \"stagin-us\"");
    std::fs::write(&server.config, text).unwrap();
    let out = server.cli(&["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("envline.toml:")
            && err.contains("environment.prod-us.from")
            && err.contains("`stagin-us`"),
        "{err}"
    );
    let out = server.cli(&["user", "add", "x", "--role", "boss"], &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn users_get_passwords_from_the_environment_and_bad_names_are_refused() {
    let server = TestServer::new();
    let out = server.cli(&["check"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["user", "add", "../evil", "--role", "admin"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be a user name"));
    let out = server.cli(
        &["user", "add", "alice", "--role", "admin"],
        &[("ENVLINE_PASSWORD", "correct horse")],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("and a password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["token", "create", "--user", "nobody"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named `nobody`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_request_fails_when_the_environment_moved_meanwhile() {
    let w = world().await;
    let staging = w.server.remote_tip("staging-us");
    let (s, _) = w.api.verify(&w.bob, "staging-us", &staging, "passed").await;
    assert_eq!(s, 201);
    let (s, req) = w
        .api
        .promote(&w.pat, json!({"environment": "prod-us"}))
        .await;
    assert_eq!(s, 201, "{req}");
    // Someone moves prod-us behind Envline's back before the approvals are in.
    let moved = git(&w.server.remote, &["rev-parse", "prod-us~1"]);
    git(
        &w.server.remote,
        &["update-ref", "refs/heads/prod-us", &moved],
    );
    let (s, _) = w.api.post("/api/v1/refresh", Some(&w.pat), json!({})).await;
    assert_eq!(s, 200);
    let path = format!("/api/v1/promotions/{}/approvals", req["id"]);
    w.api
        .post(&path, Some(&w.ann), json!({"decision": "approve"}))
        .await;
    let (s, b) = w
        .api
        .post(&path, Some(&w.bob), json!({"decision": "approve"}))
        .await;
    assert_eq!(
        s, 409,
        "the approval is recorded but the promotion cannot run: {b}"
    );
    assert!(
        b["error"]["message"].as_str().unwrap().contains("moved"),
        "{b}"
    );
    let (_, b) = w
        .api
        .get(&format!("/api/v1/promotions/{}", req["id"]), Some(&w.vic))
        .await;
    assert_eq!(b["state"], "failed", "{b}");
    assert_eq!(b["approvals"].as_array().unwrap().len(), 2);
    assert!(b["state_reason"].as_str().unwrap().contains("moved"), "{b}");
    assert_eq!(
        w.server.remote_tip("prod-us"),
        moved,
        "nothing unexpected was moved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_between_arbitrary_environments_fast_forwards_or_resets() {
    let w = world().await;
    // prod-asia from prod-eu: a fast-forward, with prod-asia's own gates (staging-asia, approvals).
    let prod_eu = w.server.remote_tip("prod-eu");
    let staging_asia = w.server.remote_tip("staging-asia");
    held(&w, "staging-asia", &prod_eu).await;
    held(&w, "staging-asia", &staging_asia).await;
    let (s, _) = w
        .api
        .verify(&w.bob, "staging-asia", &prod_eu, "passed")
        .await;
    assert_eq!(s, 201);
    let (s, req) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "prod-asia", "from": "prod-eu", "reason": "same as eu"}),
        )
        .await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["state"], "awaiting_approval");
    assert_eq!(req["source"], "prod-eu");
    let path = format!("/api/v1/promotions/{}/approvals", req["id"]);
    w.api
        .post(&path, Some(&w.ann), json!({"decision": "approve"}))
        .await;
    let (_, b) = w
        .api
        .post(&path, Some(&w.bob), json!({"decision": "approve"}))
        .await;
    assert_eq!(b["state"], "done", "{b}");
    assert_eq!(w.server.remote_tip("prod-asia"), prod_eu);

    // integration from loadtest, which is behind it: a reset to the source.
    let loadtest = w.server.remote_tip("loadtest");
    let integration = w.server.remote_tip("integration");
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "integration", "from": "loadtest"}),
        )
        .await;
    assert_eq!(
        s, 422,
        "integration requires the commit verified in qa: {b}"
    );
    let qa_now = w.server.remote_tip("qa");
    held(&w, "qa", &loadtest).await;
    held(&w, "qa", &qa_now).await;
    w.api.verify(&w.pat, "qa", &loadtest, "passed").await;
    let (s, b) = w
        .api
        .promote(
            &w.vic,
            json!({"environment": "integration", "from": "loadtest"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = w
        .api
        .promote(
            &w.pat,
            json!({"environment": "integration", "from": "loadtest", "reason": "match loadtest"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["kind"], "reset");
    assert_eq!(w.server.remote_tip("integration"), loadtest);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=integration", Some(&w.vic))
        .await;
    assert_eq!(audit["events"][0]["action"], "reset");
    assert_eq!(audit["events"][0]["old"], integration);
    // A wrong method gets a JSON answer too.
    let (s, b) = w.api.get("/api/v1/rollbacks", Some(&w.vic)).await;
    assert_eq!(s, 405, "{b}");
    assert_eq!(b["error"]["code"], "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_twice_goes_further_back() {
    let w = world().await;
    let start = w.server.remote_tip("integration");
    let middle = git(&w.server.remote, &["rev-parse", "main~2"]);
    let qa = w.server.remote_tip("qa");
    held(&w, "qa", &middle).await;
    held(&w, "qa", &qa).await;
    for commit in [&middle, &qa] {
        w.api.verify(&w.pat, "qa", commit, "passed").await;
        let (s, b) = w
            .api
            .promote(
                &w.pat,
                json!({"environment": "integration", "commit": commit}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    assert_eq!(w.server.remote_tip("integration"), qa);
    let rollback = json!({"environments": ["integration"], "reason": "bad release"});
    let (s, b) = w
        .api
        .post("/api/v1/rollbacks", Some(&w.pat), rollback.clone())
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(w.server.remote_tip("integration"), middle);
    let (s, b) = w
        .api
        .post("/api/v1/rollbacks", Some(&w.pat), rollback)
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        w.server.remote_tip("integration"),
        start,
        "not forth to the rolled-back commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promotion_asks_once_and_a_rejection_sticks() {
    let w = world_with(&[("ENVLINE_ENVIRONMENT_PROD_EU_AUTO_PROMOTE", "true")]).await;
    let staging = w.server.remote_tip("staging-eu");
    w.api.verify(&w.bob, "staging-eu", &staging, "passed").await;
    let mut request = Value::Null;
    for _ in 0..50 {
        let (_, list) = w
            .api
            .get("/api/v1/promotions?state=awaiting_approval", Some(&w.vic))
            .await;
        if let Some(r) = list["promotions"].as_array().unwrap().first() {
            request = r.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        request["environment"], "prod-eu",
        "auto-promotion opened a request"
    );
    assert_eq!(request["requested_by"], "envline");
    let path = format!("/api/v1/promotions/{}/approvals", request["id"]);
    let (s, _) = w
        .api
        .post(
            &path,
            Some(&w.ann),
            json!({"decision": "reject", "comment": "not today"}),
        )
        .await;
    assert_eq!(s, 200);
    // Any later change wakes auto-promotion; it must not ask again for the same commit.
    w.api.verify(&w.pat, "qa", &staging, "passed").await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let (_, list) = w
        .api
        .get("/api/v1/promotions?state=awaiting_approval", Some(&w.vic))
        .await;
    assert!(list["promotions"].as_array().unwrap().is_empty(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_users_read_deleted_branches_are_logged_and_bad_queries_get_json() {
    let w = world().await;
    let (s, b) = w.api.get("/api/v1/environments", Some(&w.ann)).await;
    assert_eq!(s, 200, "approver:prod-* may read: {b}");
    let (s, b) = w.api.get("/api/v1/timeline?limit=abc", Some(&w.vic)).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "bad_input");
    let loadtest = w.server.remote_tip("loadtest");
    git(
        &w.server.remote,
        &["update-ref", "-d", "refs/heads/loadtest"],
    );
    let (s, _) = w.api.post("/api/v1/refresh", Some(&w.pat), json!({})).await;
    assert_eq!(s, 200);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=loadtest", Some(&w.vic))
        .await;
    let event = &audit["events"][0];
    assert_eq!(event["action"], "out_of_band", "{audit}");
    assert_eq!(event["old"], loadtest);
    assert_eq!(event["new"], Value::Null);
    // Made again without Envline: a move too, not a "first seen".
    git(
        &w.server.remote,
        &["update-ref", "refs/heads/loadtest", &loadtest],
    );
    let (s, _) = w.api.post("/api/v1/refresh", Some(&w.pat), json!({})).await;
    assert_eq!(s, 200);
    let (_, audit) = w
        .api
        .get("/api/v1/audit?environment=loadtest", Some(&w.vic))
        .await;
    let event = &audit["events"][0];
    assert_eq!(event["action"], "out_of_band", "{audit}");
    assert_eq!(event["new"], loadtest);
    assert_eq!(event["details"]["recreated"], true);
}
