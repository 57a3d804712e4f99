//! What a browser talks to, over real HTTP against a real server: signing
//! in, the server functions behind the pages (who may call them, and only
//! from Envline's own pages), pages that need a session, and the live stream.

mod common;

use std::time::Duration;

use common::{Browser, TestServer, person};

fn started() -> TestServer {
    let mut server = TestServer::new();
    person(&server, "pat", &["promoter", "tester"], "pat-secret");
    person(&server, "vic", &["viewer"], "vic-secret");
    server.start();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_answers_like_an_unknown_user_and_a_session_is_a_safe_cookie() {
    let server = started();
    let browser = Browser::new(&server);
    let (s1, wrong) = browser.sign_in("pat", "nope").await;
    let (s2, unknown) = browser.sign_in("nobody", "nope").await;
    assert_eq!((s1, wrong["code"].clone()), (s2, unknown["code"].clone()));
    assert_eq!(wrong["message"], unknown["message"], "{wrong} vs {unknown}");
    assert_eq!(wrong["code"], "unauthenticated");

    let response = reqwest::Client::new()
        .post(format!("http://{}/fn/sign_in", server.addr))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", server.addr))
        .form(&[("user", "pat"), ("password", "pat-secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("envline_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // Behind an https proxy the cookie is Secure.
    let response = reqwest::Client::new()
        .post(format!("http://{}/fn/sign_in", server.addr))
        .header("accept", "application/json")
        .header("origin", format!("http://{}", server.addr))
        .header("x-forwarded-proto", "https")
        .form(&[("user", "pat"), ("password", "pat-secret")])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_session_cannot_promote_and_nothing_moves() {
    let server = started();
    let browser = Browser::new(&server);
    assert_eq!(browser.sign_in("vic", "vic-secret").await.0, 200);
    let before = server.all_remote_tips();
    let (status, error) = browser.call("promote", &[("environments", "qa")]).await;
    assert_eq!(status, 403, "the refusal's own status, not 500: {error}");
    assert_eq!(error["code"], "forbidden", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("vic may not promote"),
        "{error}"
    );
    assert_eq!(server.all_remote_tips(), before);
    // Reading is allowed, and says what vic may do: nothing but read.
    let (status, page) = browser.call("pipeline", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["viewer"]["user"], "vic");
    let qa = page["viewer"]["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["environment"] == "qa")
        .unwrap();
    assert_eq!(qa["promote"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_from_another_origin_or_without_one_is_refused() {
    let server = started();
    let browser = Browser::new(&server);
    assert_eq!(browser.sign_in("pat", "pat-secret").await.0, 200);
    let before = server.all_remote_tips();
    let (_, missing) = browser
        .call_from("promote", &[("environments", "qa")], None)
        .await;
    assert_eq!(missing["code"], "cross_origin", "{missing}");
    let (_, evil) = browser
        .call_from(
            "promote",
            &[("environments", "qa")],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(evil["code"], "cross_origin", "{evil}");
    assert_eq!(server.all_remote_tips(), before, "nothing moved");
    // Signing in from another site is refused too (login CSRF).
    let other = Browser::new(&server);
    let (_, forged) = other
        .call_from(
            "sign_in",
            &[("user", "pat"), ("password", "pat-secret")],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(forged["code"], "cross_origin", "{forged}");
    // From our own page it works.
    let (status, done) = browser.call("promote", &[("environments", "qa")]).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done[0]["state"], "done");
    assert_eq!(server.remote_tip("qa"), server.remote_tip("main"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_promotion_lists_its_gates_for_the_page() {
    let server = started();
    let browser = Browser::new(&server);
    browser.sign_in("pat", "pat-secret").await;
    let (status, error) = browser
        .call("promote", &[("environments", "integration")])
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "gates_not_met", "{error}");
    assert_eq!(error["status"], 422);
    let gates = error["details"].as_array().unwrap();
    assert_eq!(gates[0]["gate"], "verified");
    assert_eq!(gates[0]["environment"], "qa");
    assert_eq!(gates[0]["met"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_when_anonymous_reading_is_off() {
    let server = started();
    let browser = Browser::new(&server);
    let response = browser
        .client
        .get(format!("{}/approvals?x=1", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?next=%2Fapprovals%3Fx%3D1"
    );
    let login = browser
        .client
        .get(format!("{}/login", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let (status, error) = browser.call("pipeline", &[]).await;
    assert_eq!(error["code"], "unauthenticated", "{status} {error}");
    browser.sign_in("vic", "vic-secret").await;
    let page = browser
        .client
        .get(format!("{}/", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"data-env="qa""#),
        "the cards are server-rendered"
    );
    // Signing out ends the session: the page redirects again.
    browser.call("sign_out", &[]).await;
    let again = browser
        .client
        .get(format!("{}/", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_says_when_something_changed() {
    let server = started();
    let token = server.user("cid", &["promoter"]);
    let mut stream = reqwest::Client::new()
        .get(format!("http://{}/api/v1/events", server.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.headers()["content-type"],
        "text/event-stream",
        "server-sent events"
    );
    let mut seen = String::new();
    let read_until = async |seen: &mut String, stream: &mut reqwest::Response, what: &str| {
        while !seen.contains(what) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until(&mut seen, &mut stream, "event: hello").await;
    let api = common::Api::new(&server);
    let (status, _) = api
        .promote(&token, serde_json::json!({"environment": "qa"}))
        .await;
    assert_eq!(status, 201);
    read_until(&mut seen, &mut stream, "event: change").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_again_hears_at_once_of_what_it_missed() {
    let server = started();
    let token = server.user("cid", &["promoter"]);
    let open = async |last_seen: Option<&str>| {
        let mut request = reqwest::Client::new()
            .get(format!("http://{}/api/v1/events", server.addr))
            .bearer_auth(&token);
        if let Some(id) = last_seen {
            request = request.header("last-event-id", id);
        }
        request.send().await.unwrap()
    };
    // What a stream says within `wait`, as text.
    let read_for = async |stream: &mut reqwest::Response, wait: Duration| {
        let mut seen = String::new();
        let until = tokio::time::Instant::now() + wait;
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, stream.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        seen
    };
    let hello = read_for(&mut open(None).await, Duration::from_millis(300)).await;
    let id = hello
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("the hello carries the last change's number")
        .to_owned();
    // Nothing happened: coming back says hello only.
    let quiet = read_for(&mut open(Some(&id)).await, Duration::from_millis(300)).await;
    assert!(quiet.contains("event: hello"), "{quiet}");
    assert!(!quiet.contains("event: change"), "{quiet}");
    // A change while away: coming back hears of it at once.
    let (status, _) = common::Api::new(&server)
        .promote(&token, serde_json::json!({"environment": "qa"}))
        .await;
    assert_eq!(status, 201);
    let missed = read_for(&mut open(Some(&id)).await, Duration::from_millis(300)).await;
    assert!(missed.contains("event: change"), "{missed}");
}
