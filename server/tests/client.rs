//! The client commands (`envline status`, `promote`, …) against a real
//! server: every command, every exit code, `--wait`, and `login`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Api, BIN, TestServer};
use serde_json::Value;

/// Runs a client command as a pipeline would: the server and token from the
/// environment, and a config directory of its own (no login file unless the
/// test writes one).
fn envline(server: &TestServer, home: &Path, token: Option<&str>, args: &[&str]) -> Output {
    command(server, home, token, args).output().unwrap()
}

fn command(server: &TestServer, home: &Path, token: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("ENVLINE_SERVER", &server.addr)
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env("ENVLINE_LOG", "warn")
        .env_remove("ENVLINE_TOKEN")
        .env_remove("ENVLINE_CONFIG");
    if let Some(t) = token {
        cmd.env("ENVLINE_TOKEN", t);
    }
    cmd
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
fn exits(out: &Output, code: i32) -> (String, String) {
    let (o, e) = text(out);
    assert_eq!(out.status.code(), Some(code), "stdout:\n{o}\nstderr:\n{e}");
    (o, e)
}

struct People {
    pat: String,
    ann: String,
    bob: String,
    vic: String,
}

fn started() -> (TestServer, People, tempfile::TempDir) {
    let mut server = TestServer::new();
    let people = People {
        pat: server.user("pat", &["promoter", "tester"]),
        ann: server.user("ann", &["approver:prod-*"]),
        bob: server.user("bob", &["approver:prod-*", "tester"]),
        vic: server.user("vic", &["viewer"]),
    };
    server.start();
    (server, people, tempfile::tempdir().unwrap())
}

#[test]
fn every_command_answers_with_its_exit_code() {
    let (server, p, home) = started();
    let home = home.path();
    let run = |token: &str, args: &[&str]| envline(&server, home, Some(token), args);

    // 0: status, a table of every environment.
    let (out, _) = exits(&run(&p.vic, &["status"]), 0);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("ENVIRONMENT") && first.contains("SUBJECT"),
        "{out}"
    );
    for env in ["main", "qa", "integration", "staging-eu", "prod-eu"] {
        assert!(out.lines().any(|l| l.starts_with(env)), "{env}: {out}");
    }
    let (json, _) = exits(&run(&p.vic, &["status", "--output", "json"]), 0);
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["environments"].as_array().unwrap().len(), 10);

    // 4: no token, a forged one, a role missing.
    let (_, err) = exits(&envline(&server, home, None, &["status"]), 4);
    assert!(err.contains("envline login"), "{err}");
    exits(&run("envl_forged", &["status"]), 4);
    let (_, err) = exits(&run(&p.vic, &["promote", "qa"]), 4);
    assert!(
        err.contains("not allowed") && err.contains("promoter"),
        "{err}"
    );

    // 0: a promotion, with what moved.
    let main = server.remote_tip("main");
    let (out, _) = exits(&run(&p.pat, &["promote", "qa", "--reason", "weekly"]), 0);
    assert!(
        out.contains(&format!("→ {} (promote)", &main[..10])),
        "{out}"
    );
    assert!(out.contains("  "), "the moving commits are listed: {out}");
    assert_eq!(server.remote_tip("qa"), main);

    // 2: a gate, printed.
    let before = server.remote_tip("integration");
    let (_, err) = exits(&run(&p.pat, &["promote", "integration"]), 2);
    assert!(err.contains("✗ verified") && err.contains("qa"), "{err}");
    assert_eq!(server.remote_tip("integration"), before, "nothing moved");
    let (json, _) = exits(
        &run(&p.pat, &["promote", "integration", "--output", "json"]),
        2,
    );
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["error"]["code"], "gates_not_met");

    // verify, then the promotion goes through; its JSON is the API's.
    exits(
        &run(
            &p.pat,
            &[
                "verify",
                "qa",
                &main[..10],
                "--status",
                "passed",
                "--url",
                "https://ci/1",
            ],
        ),
        0,
    );
    let (json, _) = exits(
        &run(&p.pat, &["promote", "integration", "--output", "json"]),
        0,
    );
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["state"], "done");
    assert_eq!(server.remote_tip("integration"), main);

    // 1: a bad command line is not a refusal; neither is an unreachable server.
    let (_, err) = exits(
        &run(&p.pat, &["verify", "qa", &main, "--status", "great"]),
        1,
    );
    assert!(err.contains("passed, failed or pending"), "{err}");
    let out = command(&server, home, Some(&p.pat), &["status"])
        .env("ENVLINE_SERVER", "127.0.0.1:1")
        .output()
        .unwrap();
    let (_, err) = exits(&out, 1);
    assert!(err.contains("cannot reach the Envline server"), "{err}");
    let out = command(&server, home, Some(&p.pat), &["status"])
        .env_remove("ENVLINE_SERVER")
        .output()
        .unwrap();
    let (_, err) = exits(&out, 1);
    assert!(
        err.contains("--server") && err.contains("envline login"),
        "{err}"
    );

    // 3: production waits for two approvers; a rejection is final.
    let staging = server.remote_tip("staging-eu");
    exits(
        &run(
            &p.bob,
            &["verify", "staging-eu", &staging, "--status", "passed"],
        ),
        0,
    );
    let (out, _) = exits(&run(&p.pat, &["promote", "prod-eu", "--reason", "1.6"]), 3);
    assert!(
        out.contains("awaits approval") && out.contains("envline approve"),
        "{out}"
    );
    let (json, _) = exits(&run(&p.vic, &["status", "--output", "json"]), 0);
    let status: Value = serde_json::from_str(&json).unwrap();
    let prod = status["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod-eu")
        .unwrap();
    let id = prod["open_request"]["id"].as_i64().unwrap().to_string();
    let (out, _) = exits(&run(&p.vic, &["status"]), 0);
    assert!(
        out.contains(&format!("request #{id} awaiting approval (0 of 2)")),
        "{out}"
    );
    exits(&run(&p.pat, &["approve", &id]), 4);
    let (out, _) = exits(
        &run(
            &p.ann,
            &["approve", &id, "--reject", "--comment", "not today"],
        ),
        0,
    );
    assert!(out.contains("rejected by ann: not today"), "{out}");
    exits(&run(&p.bob, &["approve", &id]), 2);

    // A glob: every environment it promotes is reported.
    for env in ["staging-us", "staging-asia"] {
        let tip = server.remote_tip(env);
        exits(
            &run(&p.bob, &["verify", env, &tip, "--status", "passed"]),
            0,
        );
    }
    let (out, _) = exits(&run(&p.pat, &["promote", "prod-*", "--reason", "1.6"]), 3);
    for env in ["prod-eu", "prod-us", "prod-asia"] {
        assert!(out.contains(&format!("{env}: ")), "{env}: {out}");
    }
    let (json, _) = exits(&run(&p.pat, &["promote", "prod-*", "--output", "json"]), 3);
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["promotions"].as_array().unwrap().len(), 3, "{body}");

    // hold and release.
    let (out, _) = exits(
        &run(
            &p.pat,
            &["hold", "staging-eu", "--reason", "freeze", "--until", "2h"],
        ),
        0,
    );
    let hold = out
        .split("hold #")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(out.contains("until 20"), "{out}");
    let (_, err) = exits(&run(&p.pat, &["promote", "staging-eu"]), 2);
    assert!(err.contains("✗ hold") && err.contains("freeze"), "{err}");
    let (out, _) = exits(&run(&p.pat, &["release", &hold]), 0);
    assert!(out.contains(&format!("hold #{hold} released")), "{out}");
    exits(&run(&p.pat, &["release", &hold]), 2);

    // rollback: integration back where it was, with the commits that leave.
    let (out, _) = exits(
        &run(&p.pat, &["rollback", "integration", "--reason", "bad"]),
        0,
    );
    assert!(
        out.contains(&format!("integration: {} → {}", &main[..10], &before[..10])),
        "{out}"
    );
    assert!(out.contains("left: "), "{out}");
    assert_eq!(server.remote_tip("integration"), before);

    // audit: a table, CSV and JSON, filtered.
    let (out, _) = exits(&run(&p.vic, &["audit", "--environment", "integration"]), 0);
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains("rollback") && out.contains("pat"), "{out}");
    assert!(!out.contains(" qa "), "filtered to integration: {out}");
    let (csv, _) = exits(
        &run(&p.vic, &["audit", "--since", "1h", "--format", "csv"]),
        0,
    );
    assert!(csv.starts_with("id,at,actor,action"), "{csv}");
    assert!(csv.lines().count() > 5, "{csv}");
    let (json, _) = exits(
        &run(&p.vic, &["audit", "--action", "reject", "--format", "json"]),
        0,
    );
    let body: Value = serde_json::from_str(&json).unwrap();
    assert!(!body["events"].as_array().unwrap().is_empty(), "{body}");
    let (_, err) = exits(&run(&p.vic, &["audit", "--since", "yesterday-ish"]), 1);
    assert!(err.contains("since"), "{err}");

    // The server's own `audit verify` is still there.
    let out = server.cli(&["audit", "verify"], &[]);
    exits(&out, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_once_two_approvers_sign_off_and_login_keeps_the_token() {
    let (server, p, home) = started();
    let home = home.path();
    let api = Api::new(&server);

    // login: a token piped in is checked, then saved for the next commands (0600).
    let login = |token: &str| {
        let mut child = command(&server, home, None, &["login", "--server", &server.addr])
            .env_remove("ENVLINE_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
        child.wait_with_output().unwrap()
    };
    let file = home.join("envline/login.toml");
    // A broken login file is passed over (and replaced by login).
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "server = [").unwrap();
    let (_, err) = exits(&envline(&server, home, None, &["status"]), 4);
    assert!(err.contains("passing over the login file"), "{err}");
    let (_, err) = exits(&envline(&server, home, Some(&p.vic), &["status"]), 0);
    assert!(
        err.is_empty(),
        "with --server and --token it is not read: {err}"
    );
    std::fs::remove_file(&file).unwrap();
    let (_, err) = exits(&login("envl_forged"), 4);
    assert!(err.contains("nothing was saved"), "{err}");
    assert!(!file.exists());
    let (out, _) = exits(&login(&p.pat), 0);
    assert!(out.contains("as pat (promoter, tester)"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved = command(&server, home, None, &["status"])
        .env_remove("ENVLINE_SERVER")
        .output()
        .unwrap();
    exits(&saved, 0);

    // --wait: exits 0 once the two approvals arrive and the promotion ran.
    let staging = server.remote_tip("staging-eu");
    let (s, b) = api.verify(&p.bob, "staging-eu", &staging, "passed").await;
    assert_eq!(s, 201, "{b}");
    let waiting = command(
        &server,
        home,
        None,
        &[
            "promote",
            "prod-eu",
            "--reason",
            "1.6",
            "--wait",
            "--timeout",
            "2m",
        ],
    )
    .env_remove("ENVLINE_SERVER")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let id = wait_for_request(&api, &p.vic).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    exits(&envline(&server, home, Some(&p.ann), &["approve", &id]), 0);
    let (out, _) = exits(
        &envline(
            &server,
            home,
            Some(&p.bob),
            &["approve", &id, "--comment", "ok"],
        ),
        0,
    );
    assert!(
        out.contains("prod-eu:") && out.contains("(promote)"),
        "{out}"
    );
    let out = waiting.wait_with_output().unwrap();
    let (out, err) = exits(&out, 0);
    assert!(out.contains("awaits approval"), "{out}");
    assert!(out.lines().last().unwrap().contains("(promote)"), "{out}");
    assert!(
        err.contains("waiting: prod-eu"),
        "plain lines off a terminal: {err}"
    );
    assert_eq!(server.remote_tip("prod-eu"), staging);

    // --wait that runs out of time: still awaiting approval, 3.
    let staging_us = server.remote_tip("staging-us");
    let (s, _) = api
        .verify(&p.bob, "staging-us", &staging_us, "passed")
        .await;
    assert_eq!(s, 201);
    let started = Instant::now();
    let out = envline(
        &server,
        home,
        Some(&p.pat),
        &[
            "promote",
            "prod-us",
            "--wait",
            "--timeout",
            "1s",
            "--output",
            "json",
        ],
    );
    let (json, err) = exits(&out, 3);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.contains("still waiting"), "{err}");
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["state"], "awaiting_approval");

    // logout forgets it.
    exits(&envline(&server, home, None, &["logout"]), 0);
    assert!(!file.exists());
}

/// The id of the request awaiting approval, once there is one.
async fn wait_for_request(api: &Api, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, b) = api
            .get("/api/v1/promotions?state=awaiting_approval", Some(token))
            .await;
        assert_eq!(s, 200, "{b}");
        if let Some(id) = b["promotions"][0]["id"].as_i64() {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no request appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
