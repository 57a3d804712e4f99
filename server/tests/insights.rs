//! Delivery figures (`GET /api/v1/insights`, `envline insights`) from a
//! real history: commits with known committer times, promotions, a
//! rollback, a failed test, each checked against the definitions.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Api, BIN, TestServer, git_in};
use serde_json::{Value, json};

/// Commits `file` on `work` with the committer time `hours_ago` hours back
/// and pushes it to main.
fn commit_at(work: &Path, file: &str, hours_ago: i64) {
    std::fs::write(work.join(file), format!("{file}\n")).unwrap();
    git_in(work, &["add", "."]);
    let when = (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339();
    let out = Command::new("git")
        .current_dir(work)
        .args(["commit", "-qm", file])
        .env("GIT_COMMITTER_DATE", &when)
        .env("GIT_AUTHOR_DATE", &when)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    git_in(work, &["push", "-q", "origin", "main"]);
}

fn about(value: &Value, seconds: i64) -> bool {
    value.as_i64().is_some_and(|v| (v - seconds).abs() <= 120)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_the_definitions_over_the_api_and_the_client() {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start_with(&[("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "false")]);
    let api = Api::new(&server);
    let work = server.work_clone("work");
    // qa where main is, so the window below starts from a known place.
    let refresh = || api.post("/api/v1/refresh", Some(&pat), json!({}));
    let (s, b) = refresh().await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert!(s == 201 || b["error"]["code"] == "already_there", "{s} {b}");
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(std::time::Duration::from_millis(20));

    // One deployment of two commits made 3 h and 1 h ago...
    commit_at(&work, "one.txt", 3);
    commit_at(&work, "two.txt", 1);
    let (s, b) = refresh().await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    // ... rolled back from, then restored by the next deployment ...
    let (s, b) = api
        .post(
            "/api/v1/rollbacks",
            Some(&pat),
            json!({"environments": ["qa"], "reason": "broken"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    commit_at(&work, "three.txt", 2);
    let (s, b) = refresh().await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    // ... whose commit then fails a test there.
    let (s, b) = api
        .verify(&pat, "qa", &server.remote_tip("qa"), "failed")
        .await;
    assert_eq!(s, 201, "{b}");

    let (s, qa) = api
        .get(
            &format!("/api/v1/insights?environment=qa&since={since}"),
            Some(&pat),
        )
        .await;
    assert_eq!(s, 200, "{qa}");
    assert_eq!(qa["environment"], "qa");
    assert_eq!(qa["deployments"], 2, "{qa}");
    assert_eq!(qa["failed_deployments"], 2, "{qa}");
    assert_eq!(qa["change_failure_rate"], 1.0, "{qa}");
    assert!(
        qa["deployments_per_week"].as_f64().is_some_and(|d| d > 0.0),
        "{qa}"
    );
    // Leads: 3 h and 1 h (first deployment), 2 h (the second brings only
    // its own commit: the two before it were there already).
    let lead = &qa["lead_time_seconds"];
    assert_eq!(lead["commits"], 3, "{qa}");
    assert!(about(&lead["median"], 2 * 3600), "{qa}");
    assert!(about(&lead["p90"], 3 * 3600), "{qa}");
    // The rollback was restored within seconds; the failed test is not yet.
    let restore = &qa["time_to_restore_seconds"];
    assert_eq!(restore["failures"], 2, "{qa}");
    assert_eq!(restore["restored"], 1, "{qa}");
    assert!(
        restore["median"]
            .as_i64()
            .is_some_and(|s| (0..120).contains(&s)),
        "{qa}"
    );
    let weeks = qa["series"].as_array().unwrap();
    assert!(!weeks.is_empty());
    let counted: u64 = weeks
        .iter()
        .map(|w| w["deployments"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 2, "{qa}");

    // Every environment, in pipeline order; the others did not move.
    let (s, all) = api
        .get(&format!("/api/v1/insights?since={since}"), Some(&pat))
        .await;
    assert_eq!(s, 200, "{all}");
    let envs = all["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 9);
    assert_eq!(envs[0]["environment"], "qa");
    assert_eq!(envs[1]["deployments"], 0);
    assert!(envs[1]["change_failure_rate"].is_null());

    // Bad input says what was wrong.
    let (s, b) = api.get("/api/v1/insights?since=soon", Some(&pat)).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["code"], "bad_window", "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("30d"),
        "{b}"
    );
    let (s, b) = api
        .get("/api/v1/insights?since=1d&until=2d", Some(&pat))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not before"),
        "{b}"
    );
    let (s, b) = api
        .get("/api/v1/insights?environment=nowhere", Some(&pat))
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("qa"),
        "{b}"
    );

    // The client prints the same figures.
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["insights", "--environment", "qa", "--since", &since])
        .env("ENVLINE_SERVER", &server.addr)
        .env("ENVLINE_TOKEN", &pat)
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("ENVLINE_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("CHANGE FAILURE RATE") && text.contains("100% (2 of 2)"),
        "{text}"
    );
    assert!(text.contains("2h") && text.contains("3h"), "{text}");
    server.stop();
}
