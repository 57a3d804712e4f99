//! People and their sessions, held against an adversary: guessing a
//! password slows the guesser down without locking the account's owner out;
//! changing or resetting a password, removing a person or revoking a token
//! ends their sessions and closes their live streams within seconds.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::{Api, Browser, TestServer, person};
use serde_json::json;

fn loopback(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

/// A sign-in attempt's status and `Retry-After`.
async fn attempt(
    browser: &Browser,
    user: &str,
    password: &str,
    forwarded: Option<&str>,
) -> (u16, Option<u64>) {
    let mut request = browser
        .client
        .post(format!("{}/fn/sign_in", browser.base))
        .header("accept", "application/json")
        .header("origin", &browser.base)
        .form(&[("user", user), ("password", password)]);
    if let Some(f) = forwarded {
        request = request.header("x-forwarded-for", f);
    }
    let r = request.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (r.status().as_u16(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_password_never_locks_its_owner_out() {
    let mut server = TestServer::new();
    person(&server, "dora", &["viewer"], "dora-secret");
    server.start();
    let guesser = Browser::from_address(&server, loopback(2));
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(attempt(&guesser, "dora", "wrong", None).await);
    }
    assert_eq!(statuses[0].0, 401, "{statuses:?}");
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(
        !limited.is_empty(),
        "the guesser is slowed down: {statuses:?}"
    );
    assert!(
        limited
            .iter()
            .all(|(_, retry)| retry.is_some_and(|r| r >= 1)),
        "429 says when to come back: {statuses:?}"
    );
    // dora, from her own address, signs in at once.
    let owner = Browser::from_address(&server, loopback(3));
    assert_eq!(attempt(&owner, "dora", "dora-secret", None).await.0, 200);
    // From the guesser's address even the right password waits.
    let (s, retry) = attempt(&guesser, "dora", "dora-secret", None).await;
    assert_eq!(s, 429);
    assert!(retry.is_some_and(|r| r >= 1), "{retry:?}");

    // A client cannot pick its address with X-Forwarded-For unless it
    // comes through a trusted proxy.
    let spoofer = Browser::from_address(&server, loopback(4));
    let mut spoofed = Vec::new();
    for i in 0..8 {
        let f = format!("198.51.100.{i}");
        spoofed.push(attempt(&spoofer, "dora", "wrong", Some(&f)).await.0);
    }
    assert!(spoofed.contains(&429), "{spoofed:?}");
    server.stop();

    // Behind a trusted proxy, the address it forwards is the client's.
    server.start_with(&[("ENVLINE_SERVER_TRUSTED_PROXIES", "127.0.0.5/32, 10.0.0.0/8")]);
    let proxy = Browser::from_address(&server, loopback(5));
    let mut through = Vec::new();
    for _ in 0..8 {
        through.push(
            attempt(&proxy, "dora", "wrong", Some("203.0.113.9"))
                .await
                .0,
        );
    }
    assert!(through.contains(&429), "{through:?}");
    assert_eq!(
        attempt(
            &proxy,
            "dora",
            "dora-secret",
            Some("203.0.113.10, 10.1.2.3")
        )
        .await
        .0,
        200,
        "another client behind the same proxy is not held up"
    );
}

/// Reads a live stream until it ends (or `limit` passes); when it ended.
async fn stream_end(browser: &Browser, limit: Duration) -> Option<Instant> {
    let started = Instant::now();
    let mut response = browser
        .client
        .get(format!("{}/api/v1/events", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    loop {
        match tokio::time::timeout_at((started + limit).into(), response.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return Some(Instant::now()),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_the_other_sessions_and_their_live_streams() {
    let mut server = TestServer::new();
    person(&server, "dora", &["promoter"], "dora-secret");
    person(&server, "root", &["admin"], "root-secret");
    server.start();
    let laptop = Browser::new(&server);
    let phone = Browser::new(&server);
    assert_eq!(laptop.sign_in("dora", "dora-secret").await.0, 200);
    assert_eq!(phone.sign_in("dora", "dora-secret").await.0, 200);
    let me = |b: &Browser| {
        let request = b.client.get(format!("{}/api/v1/me", b.base));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(me(&phone).await, 200);
    // The phone's live page is open while dora changes her password on the laptop.
    let watching = {
        let phone = Browser {
            client: phone.client.clone(),
            base: phone.base.clone(),
        };
        tokio::spawn(async move { stream_end(&phone, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed_at = Instant::now();
    let (s, b) = laptop
        .call(
            "change_password",
            &[
                ("current", "dora-secret"),
                ("new", "new-dora-secret"),
                ("confirm", "new-dora-secret"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!(1), "one other session ended");
    let ended = watching.await.unwrap().expect("the phone's stream ended");
    assert!(
        ended.duration_since(changed_at) < Duration::from_secs(5),
        "the stream closed within 5 s of the change ({:?})",
        ended.duration_since(changed_at)
    );
    assert_eq!(me(&phone).await, 401, "the other session ended");
    assert_eq!(me(&laptop).await, 200, "this one stays");
    // A wrong current password changes nothing.
    let (s, b) = laptop
        .call(
            "change_password",
            &[
                ("current", "nope"),
                ("new", "x-y-z-1234"),
                ("confirm", "x-y-z-1234"),
            ],
        )
        .await;
    assert_eq!((s, &b["code"]), (422, &json!("wrong_password")), "{b}");
    assert_eq!(me(&laptop).await, 200);

    // An admin resets it from the command line: every session ends.
    let out = server.cli(
        &["user", "password", "dora"],
        &[("ENVLINE_PASSWORD", "reset-by-admin")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(me(&laptop).await, 401);
    assert_eq!(laptop.sign_in("dora", "new-dora-secret").await.0, 401);
    assert_eq!(laptop.sign_in("dora", "reset-by-admin").await.0, 200);
    let short = server.cli(
        &["user", "password", "dora"],
        &[("ENVLINE_PASSWORD", "short")],
    );
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));

    // Removing dora ends her session and her token.
    let token = server.user("dora", &["promoter"]);
    let api = Api::new(&server);
    assert_eq!(api.get("/api/v1/me", Some(&token)).await.0, 200);
    let admin = Browser::new(&server);
    assert_eq!(admin.sign_in("root", "root-secret").await.0, 200);
    let (s, b) = admin.call("remove_person", &[("name", "dora")]).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(me(&laptop).await, 401);
    let mut status = 200;
    for _ in 0..60 {
        status = api.get("/api/v1/me", Some(&token)).await.0;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "a removed person's token stops within 5 s");
    // The last admin stays.
    let (s, b) = admin.call("remove_person", &[("name", "root")]).await;
    assert_eq!(s, 409, "{b}");
    let out = server.cli(&["user", "remove", "root"], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = server.user("val", &["viewer"]);
    let (_, audit) = api.get("/api/v1/audit?actor=root", Some(&viewer)).await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user_removed"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_closes_its_live_stream_and_expired_sessions_are_pruned() {
    let mut server = TestServer::new();
    person(&server, "dora", &["viewer"], "dora-secret");
    let token = server.user("cid", &["viewer"]);
    server.start();
    let pool = server.open_database().await;
    sqlx::query(
        "INSERT INTO sessions (digest, user_id, created_at, expires_at)
         SELECT 'stale', id, '2026-01-01T00:00:00.000Z', '2026-01-01T12:00:00.000Z' FROM users WHERE name = 'dora'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let browser = Browser::new(&server);
    assert_eq!(browser.sign_in("dora", "dora-secret").await.0, 200);
    let (stale,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE digest = 'stale'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stale, 0, "expired sessions are pruned");

    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("http://{}/api/v1/events", server.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let list = server.cli(&["token", "list", "--user", "cid"], &[]);
    let id = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let revoked_at = Instant::now();
    let out = server.cli(&["token", "revoke", &id], &[]);
    assert!(out.status.success());
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => break true,
            Err(_) => break false,
        }
    };
    assert!(ended, "the stream of a revoked token ends");
    assert!(
        revoked_at.elapsed() < Duration::from_secs(5) + Duration::from_millis(500),
        "within 5 s: {:?}",
        revoked_at.elapsed()
    );
}

/// With `auth.passwords = false`, the sign-in page offers single sign-on
/// only and a password is refused, saying what to use; a provider that
/// cannot be reached, or an answer this browser did not ask for, brings the
/// person back to the sign-in page with the reason's code. (Signing in
/// through a real provider is `end2end/tests/sso.spec.ts`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_passwords_the_sign_in_page_offers_only_single_sign_on() {
    let mut server = TestServer::new();
    person(&server, "ada", &["admin"], "correct horse");
    // Nothing listens on this port: the provider is unreachable.
    let issuer = format!("http://127.0.0.1:{}", common::free_port());
    server.start_with(&[
        ("ENVLINE_AUTH_PASSWORDS", "false"),
        ("ENVLINE_AUTH_OIDC_ISSUER", &issuer),
        ("ENVLINE_AUTH_OIDC_CLIENT_ID", "envline"),
        ("ENVLINE_AUTH_OIDC_CLIENT_SECRET", "not-a-real-secret"),
        ("ENVLINE_AUTH_OIDC_NAME", "Acme SSO"),
        ("ENVLINE_AUTH_OIDC_ROLES", r#"{ "admins" = ["admin"] }"#),
    ]);
    let browser = Browser::new(&server);

    let (status, body) = browser.sign_in("ada", "correct horse").await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("turned off") && message.contains("Sign in with Acme SSO"),
        "{body}"
    );

    let page = browser
        .client
        .get(format!("{}/login", browser.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Acme SSO"), "{page}");
    assert!(!page.contains("name=\"password\""), "{page}");

    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let start = browser
        .client
        .get(format!("{}/auth/oidc/start?next=/approvals", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&start), "/login?sso_error=unreachable");

    let forged = browser
        .client
        .get(format!(
            "{}/auth/oidc/callback?code=x&state=y",
            browser.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&forged), "/login?sso_error=other_browser");
    let (_, me) = Api::new(&server).get("/api/v1/me", None).await;
    assert_ne!(me["signed_in"], json!(true), "{me}");
}

/// Sign-in throttling holds across replicas: a guesser who spreads wrong
/// passwords over two replicas behind a load balancer is slowed down as on
/// one, and the owner still signs in from their own address on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_counts_the_wrong_passwords_of_every_replica() {
    if std::env::var("POSTGRES_TEST_URL").is_err() {
        eprintln!("no POSTGRES_TEST_URL: replicas need PostgreSQL; run under .ci/with-postgres");
        return;
    }
    let mut first = TestServer::new();
    person(&first, "erin", &["viewer"], "erin-secret");
    first.start();
    let mut second = first.replica();
    second.start();
    let on_first = Browser::from_address(&first, loopback(2));
    let on_second = Browser::from_address(&second, loopback(2));
    let mut statuses = Vec::new();
    for i in 0..8 {
        let browser = if i % 2 == 0 { &on_first } else { &on_second };
        statuses.push(attempt(browser, "erin", "wrong", None).await.0);
    }
    // Four wrong passwords on each: the fifth in the run (on either) earns a wait.
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    for server in [&first, &second] {
        let owner = Browser::from_address(server, loopback(3));
        assert_eq!(attempt(&owner, "erin", "erin-secret", None).await.0, 200);
    }
    second.stop();
    first.stop();
}
