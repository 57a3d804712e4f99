//! Webhooks in: a push announced by GitHub or GitLab, correctly signed, is
//! seen at once although the timed refresh is an hour away; a forged, unsigned
//! or mis-signed delivery gets 401 and refreshes nothing; other events are
//! answered and ignored; a burst of deliveries while a refresh runs costs at
//! most one more refresh; without a secret the endpoints say how to set one.

mod common;

use std::time::{Duration, Instant};

use common::{Api, TestServer, git_in};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "webhook-test-secret-0123456789";
const GITHUB: &str = "/api/v1/webhooks/github";
const GITLAB: &str = "/api/v1/webhooks/gitlab";

/// GitHub's `X-Hub-Signature-256` of `body` under `key`.
fn sign(key: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A push event's body (what Envline reads of it: the `ref`).
fn push_body(branch: &str, after: &str) -> String {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "after": after,
        "repository": {"full_name": "acme/gitops"},
        "pusher": {"name": "eve"},
    })
    .to_string()
}

/// A server with webhooks on (the timed refresh is an hour away) and a
/// viewer's token.
fn started(extra: &[(&str, &str)]) -> (TestServer, Api, String) {
    let mut server = TestServer::new();
    let viewer = server.user("vic", &["viewer"]);
    let mut env = vec![("ENVLINE_WEBHOOKS_SECRET", SECRET)];
    env.extend_from_slice(extra);
    server.start_with(&env);
    let api = Api::new(&server);
    (server, api, viewer)
}

/// Someone outside Envline pushes a new commit to the remote's `branch`
/// with git; returns its id.
fn push_as_outsider(server: &TestServer, branch: &str, name: &str) -> String {
    let work = server.dir.path().join(name);
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "-b", branch])
        .arg(&server.remote)
        .arg(&work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(work.join(format!("{name}.txt")), format!("{name}\n")).unwrap();
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-qm", &format!("outside: {name}")]);
    git_in(&work, &["push", "-q", "origin", branch]);
    let id = git_in(&work, &["rev-parse", "HEAD"]);
    assert_eq!(server.remote_tip(branch), id, "pushed");
    id
}

/// Sends a delivery with the given headers.
async fn deliver(api: &Api, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut request = api
        .client
        .post(format!("{}{path}", api.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A correctly signed GitHub delivery of `event`.
async fn github(api: &Api, event: &str, body: &str) -> (u16, Value) {
    let signature = sign(SECRET, body);
    deliver(
        api,
        GITHUB,
        &[
            ("X-GitHub-Event", event),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    )
    .await
}

/// The head Envline shows for `environment` (`main` for the root).
async fn head(api: &Api, token: &str, environment: &str) -> String {
    let (status, view) = api.get("/api/v1/environments", Some(token)).await;
    assert_eq!(status, 200, "{view}");
    view["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == environment)
        .unwrap_or_else(|| panic!("no {environment} in {view}"))["head"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `envline_refreshes_total` from `/metrics`: refreshes that ran so far.
async fn refreshes(api: &Api, token: &str) -> u64 {
    let (status, text) = api.get("/metrics", Some(token)).await;
    assert_eq!(status, 200, "{text}");
    let text = text.as_str().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("envline_refreshes_total "))
        .unwrap_or_else(|| panic!("no envline_refreshes_total in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Polls until `environment` shows `commit`, for at most `within`.
async fn until_shown(api: &Api, token: &str, environment: &str, commit: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let shown = head(api, token, environment).await;
        if shown == commit {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{environment} still shows {shown}, not the pushed {commit}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a refresh that was wrongly started would take to show: a
/// refresh of the demo takes well under this.
const SETTLE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_github_push_is_seen_at_once() {
    let (server, api, vic) = started(&[]);
    let before = head(&api, &vic, "main").await;
    let pushed = push_as_outsider(&server, "main", "push");
    assert_eq!(
        head(&api, &vic, "main").await,
        before,
        "without a webhook the push waits for the timed refresh (an hour)"
    );

    let (status, answer) = github(&api, "push", &push_body("main", &pushed)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["refresh"], "started", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("main"),
        "{answer}"
    );
    until_shown(&api, &vic, "main", &pushed, Duration::from_secs(10)).await;

    let (_, metrics) = api.get("/metrics", Some(&vic)).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains(r#"envline_webhook_deliveries_total{host="github",outcome="started"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unsigned_and_missigned_deliveries_get_401_and_do_nothing() {
    let (server, api, vic) = started(&[]);
    let before = head(&api, &vic, "main").await;
    let ran = refreshes(&api, &vic).await;
    let pushed = push_as_outsider(&server, "main", "push");
    let body = push_body("main", &pushed);
    let other = push_body("qa", &pushed);

    let forged = sign("not-the-secret-at-all-0123", &body);
    let over_other_body = sign(SECRET, &other);
    // What is wrong, the signature header sent (if any), what the answer says.
    let cases = [
        (
            "a forged signature",
            Some(("X-Hub-Signature-256", forged.as_str())),
            "does not match",
        ),
        ("no signature", None, "no X-Hub-Signature-256"),
        (
            "a signature over another body",
            Some(("X-Hub-Signature-256", over_other_body.as_str())),
            "does not match",
        ),
        (
            "a signature that is not sha256=<hex>",
            Some(("X-Hub-Signature-256", "sha1=0123")),
            "64 hex digits",
        ),
        (
            "the secret itself instead of a signature",
            Some(("X-Hub-Signature-256", SECRET)),
            "64 hex digits",
        ),
        (
            "a GitLab token sent to GitHub's endpoint",
            Some(("X-Gitlab-Token", SECRET)),
            "no X-Hub-Signature-256",
        ),
    ];
    for (what, signature, says) in cases {
        let mut headers = vec![("X-GitHub-Event", "push")];
        headers.extend(signature);
        let (status, answer) = deliver(&api, GITHUB, &headers, &body).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_signature", "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message}");
        assert!(message.contains("nothing was done"), "{what}: {message}");
    }

    tokio::time::sleep(SETTLE).await;
    assert_eq!(refreshes(&api, &vic).await, ran, "no refresh ran");
    assert_eq!(
        head(&api, &vic, "main").await,
        before,
        "the push is not seen"
    );
    let (_, metrics) = api.get("/metrics", Some(&vic)).await;
    assert!(
        metrics.as_str().unwrap().contains(
            r#"envline_webhook_deliveries_total{host="github",outcome="bad_signature"} 6"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_pushes_need_the_token() {
    let (server, api, vic) = started(&[]);
    let before = head(&api, &vic, "main").await;
    let ran = refreshes(&api, &vic).await;
    let pushed = push_as_outsider(&server, "main", "push");
    let body = push_body("main", &pushed);

    for token in ["wrong-token-0123456789abcdef", "", &SECRET[1..]] {
        let headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", token)];
        let (status, answer) = deliver(&api, GITLAB, &headers, &body).await;
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-Gitlab-Token does not match"),
            "{answer}"
        );
    }
    let (status, answer) = deliver(&api, GITLAB, &[("X-Gitlab-Event", "Push Hook")], &body).await;
    assert_eq!(status, 401, "no token: {answer}");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(refreshes(&api, &vic).await, ran, "no refresh ran");
    assert_eq!(head(&api, &vic, "main").await, before);

    // A tag push is answered and ignored.
    let tag = json!({"ref": "refs/tags/v1.0", "object_kind": "tag_push"}).to_string();
    let headers = [
        ("X-Gitlab-Event", "Tag Push Hook"),
        ("X-Gitlab-Token", SECRET),
    ];
    let (status, answer) = deliver(&api, GITLAB, &headers, &tag).await;
    assert_eq!(
        (status, &answer["refresh"]),
        (202, &json!("ignored")),
        "{answer}"
    );

    let headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)];
    let (status, answer) = deliver(&api, GITLAB, &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["refresh"], "started", "{answer}");
    until_shown(&api, &vic, "main", &pushed, Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_events_tags_and_branches_are_answered_and_ignored() {
    let (server, api, vic) = started(&[]);
    let ran = refreshes(&api, &vic).await;
    let pushed = push_as_outsider(&server, "main", "push");

    let (status, answer) = github(&api, "issues", r#"{"action":"opened"}"#).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["refresh"], "ignored", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("`issues`"),
        "{answer}"
    );

    let (status, answer) = github(&api, "ping", r#"{"zen":"Keep it logically awesome."}"#).await;
    assert_eq!(
        (status, &answer["refresh"]),
        (202, &json!("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().starts_with("pong"),
        "{answer}"
    );

    let (status, answer) = github(&api, "push", &push_body("feature/x", &pushed)).await;
    assert_eq!(
        (status, &answer["refresh"]),
        (202, &json!("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("not a branch of the pipeline"),
        "{answer}"
    );

    let tag = json!({"ref": "refs/tags/v1.0"}).to_string();
    let (status, answer) = github(&api, "push", &tag).await;
    assert_eq!(
        (status, &answer["refresh"]),
        (202, &json!("ignored")),
        "{answer}"
    );

    // Signed, but not a push Envline can read: a clear 400.
    let (status, answer) = github(&api, "push", "not json").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"),
        "{answer}"
    );
    let (status, answer) = deliver(
        &api,
        GITHUB,
        &[("X-Hub-Signature-256", &sign(SECRET, "{}"))],
        "{}",
    )
    .await;
    assert_eq!(status, 400, "no event header: {answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-GitHub-Event"),
        "{answer}"
    );

    tokio::time::sleep(SETTLE).await;
    assert_eq!(refreshes(&api, &vic).await, ran, "no refresh ran");
    assert_ne!(
        head(&api, &vic, "main").await,
        pushed,
        "the push is not seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_deliveries_while_a_refresh_runs_costs_one_more_refresh() {
    // Every fetch from the remote takes a second (git runs this upload-pack),
    // so the whole burst lands while the first refresh runs.
    let (server, api, vic) = started(&[
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "remote.origin.uploadpack"),
        ("GIT_CONFIG_VALUE_0", "sleep 1; git-upload-pack"),
    ]);
    let ran = refreshes(&api, &vic).await;
    let pushed = push_as_outsider(&server, "main", "push");
    let body = push_body("main", &pushed);

    let answers = futures::future::join_all((0..20).map(|_| github(&api, "push", &body))).await;
    let mut started = 0;
    for (status, answer) in &answers {
        assert_eq!(*status, 202, "{answer}");
        match answer["refresh"].as_str() {
            Some("started") => started += 1,
            Some("queued") => {}
            _ => panic!("{answer}"),
        }
    }
    assert_eq!(
        started, 1,
        "one delivery started a refresh, the others queued: {answers:?}"
    );
    until_shown(&api, &vic, "main", &pushed, Duration::from_secs(30)).await;

    // The queued refresh (if the burst outran the first one's start, the
    // first serves them all) runs after the first; then nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = refreshes(&api, &vic).await;
    assert!(
        (1..=2).contains(&(now - ran)),
        "20 deliveries while a refresh ran made {} refreshes, not one or two",
        now - ran
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_endpoints_say_how_to_set_one() {
    let mut server = TestServer::new();
    server.start();
    let api = Api::new(&server);
    let body = push_body("main", "0");
    let signature = sign(SECRET, &body);
    for (path, headers) in [
        (
            GITHUB,
            [
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", signature.as_str()),
            ],
        ),
        (
            GITLAB,
            [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)],
        ),
    ] {
        let (status, answer) = deliver(&api, path, &headers, &body).await;
        assert_eq!(status, 503, "{path}: {answer}");
        assert_eq!(
            answer["error"]["code"], "webhooks_not_configured",
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        for says in ["[webhooks] secret", "ENVLINE_WEBHOOKS_SECRET", "restart"] {
            assert!(message.contains(says), "{path}: {message}");
        }
    }
}

/// Starts an upload that sends `first` bytes of a larger declared body and
/// then stalls; returns the connection, to read the answer from.
async fn stalled_upload(addr: &str, first: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {GITHUB} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-github-event: push\r\nx-hub-signature-256: sha256={}\r\ncontent-length: {}\r\n\r\n",
        "0".repeat(64),
        first * 4
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&vec![b' '; first]).await.unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploads_never_keep_a_signed_delivery_waiting_and_time_out() {
    use tokio::io::AsyncReadExt;
    let (server, api, _) = started(&[]);
    // Four large uploads take every slot for large bodies, then stall.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(stalled_upload(&server.addr, 2 * 1024 * 1024).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = push_body("main", &"1".repeat(40));
    let asked = Instant::now();
    let signature = sign(SECRET, &body);
    let (s, b) = tokio::time::timeout(
        Duration::from_secs(8),
        deliver(
            &api,
            GITHUB,
            &[
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
            ],
            &body,
        ),
    )
    .await
    .expect("the signed delivery is answered while the uploads stall");
    assert_eq!(s, 202, "{b}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the signed delivery waited {:?} behind the stalled uploads",
        asked.elapsed()
    );
    // Each stalled upload is answered 408 once its 10 s are up.
    for mut socket in stalled {
        let mut answer = vec![0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut answer))
            .await
            .expect("answered within the deadline")
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
}
