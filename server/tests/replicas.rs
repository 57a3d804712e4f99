//! Three replicas of Envline on one PostgreSQL and one remote, each with its
//! own clone, as behind a load balancer: concurrent promotions spread across
//! them move each environment once, a change made on one shows on the
//! others, and when the elected replica is killed in the middle of a push
//! another takes over its background work, and remote, database and audit
//! log still agree. Runs under `.ci/with-postgres` (`make test` does); on
//! SQLite there is one server and nothing to test.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, TestServer, git, git_in};
use serde_json::{Value, json};

/// The change numbers a replica's live stream carried, as they came.
type Heard = Arc<Mutex<Vec<u64>>>;

/// Listens to a replica's live stream for the rest of the test.
fn listen(server: &TestServer, token: &str) -> Heard {
    let heard: Heard = Arc::default();
    let into = heard.clone();
    let url = server.url("/api/v1/events");
    let token = token.to_owned();
    tokio::spawn(async move {
        let Ok(mut stream) = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
        else {
            return;
        };
        let mut text = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                if let Some(id) = line.trim().strip_prefix("id:") {
                    into.lock().unwrap().push(id.trim().parse().unwrap());
                }
            }
        }
    });
    heard
}

/// Where each environment stands, as a replica shows it.
async fn heads(server: &TestServer, token: &str) -> BTreeMap<String, String> {
    let (status, pipeline) = Api::new(server)
        .get("/api/v1/environments", Some(token))
        .await;
    assert_eq!(status, 200, "{pipeline}");
    pipeline["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["head"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Which of `replicas` (the running ones) says it leads, once exactly one does.
async fn leader(replicas: &[&TestServer], token: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut leading = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            let (_, ready) = Api::new(r).get("/readyz", Some(token)).await;
            if ready["role"] == "leader" {
                leading.push(i);
            }
        }
        if let [one] = leading[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "leaders: {leading:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `check` to hold, up to `patience`; returns how long it took.
async fn within<F, Fut>(patience: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "{what}: not within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_promote_as_one_and_survive_losing_the_leader() {
    let first = TestServer::new();
    if first.database.is_none() {
        eprintln!("no POSTGRES_TEST_URL: replicas need PostgreSQL; run under .ci/with-postgres");
        return;
    }
    let pat = first.user("pat", &["promoter", "tester"]);
    let vic = first.user("vic", &["viewer"]);
    let eve = first.user("eve", &["viewer"]);
    let adm = first.user("adm", &["admin"]);
    // Pushes to staging-eu take 3 s on the remote, so a replica can be
    // killed while one is under way.
    let hook = first.remote.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  [ \"$ref\" = refs/heads/staging-eu ] && sleep 3\ndone\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut replicas = vec![first.replica(), first.replica()];
    replicas.insert(0, first);
    let logs = tempfile::tempdir().unwrap();
    for (i, r) in replicas.iter_mut().enumerate() {
        r.extra_env.extend([
            ("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE".into(), "true".into()),
            // The leader's timed refresh: a push to main shows within 1 s.
            ("ENVLINE_REPOSITORY_REFRESH_SECONDS".into(), "1".into()),
            ("ENVLINE_LOG".into(), "info".into()),
        ]);
        r.log = Some(logs.path().join(format!("replica-{i}.log")));
        r.start();
    }
    let heard: Vec<Heard> = replicas.iter().map(|r| listen(r, &eve)).collect();
    let all: Vec<&TestServer> = replicas.iter().collect();
    let lead = leader(&all, &pat).await;

    // The leader's auto-promotion brings qa to main (the demo leaves it one behind).
    let main = replicas[0].remote_tip("main");
    within(Duration::from_secs(20), "qa auto-promoted", || async {
        replicas[0].remote_tip("qa") == main
    })
    .await;

    // 32 promotions at once, spread over the three replicas: each
    // environment moves once, whichever replica each went to.
    let qa = main.clone();
    let (s, b) = Api::new(&replicas[1])
        .verify(&pat, "qa", &qa, "passed")
        .await;
    assert_eq!(s, 201, "{b}");
    let mut tasks = Vec::new();
    for i in 0..32 {
        let api = Api::new(&replicas[i % 3]);
        let env = if i % 2 == 0 {
            "integration"
        } else {
            "loadtest"
        };
        let token = pat.clone();
        tasks.push(tokio::spawn(async move {
            let (s, b) = api.promote(&token, json!({"environment": env})).await;
            (env, s, b)
        }));
    }
    let mut moved = BTreeMap::<&str, usize>::new();
    for t in tasks {
        let (env, s, b) = t.await.unwrap();
        assert!(s == 201 || s == 409, "{env}: {s} {b}");
        if s == 201 {
            *moved.entry(env).or_default() += 1;
        }
    }
    assert_eq!(moved, BTreeMap::from([("integration", 1), ("loadtest", 1)]));
    assert_eq!(replicas[2].remote_tip("integration"), qa);
    assert_eq!(replicas[2].remote_tip("loadtest"), qa);
    // Every replica shows it within a second.
    for r in &replicas {
        let seen = within(
            Duration::from_secs(1),
            "a replica shows the moves",
            || async {
                let h = heads(r, &vic).await;
                h["integration"] == qa && h["loadtest"] == qa
            },
        )
        .await;
        eprintln!("replicas: a move shows on {} after {seen:?}", r.addr);
    }

    // A role taken away on one replica is gone on the others at once.
    let other = (lead + 1) % 3;
    let (s, b) = Api::new(&replicas[lead])
        .delete("/api/v1/users/vic/roles/viewer", Some(&adm))
        .await;
    assert_eq!(s, 204, "{b}");
    within(
        Duration::from_secs(1),
        "the role is gone on another replica",
        || async {
            Api::new(&replicas[other])
                .get("/api/v1/environments", Some(&vic))
                .await
                .0
                == 403
        },
    )
    .await;

    // Kill the leader in the middle of a push to staging-eu.
    let api = Api::new(&replicas[1]);
    for env in ["integration", "loadtest"] {
        let (s, b) = api.verify(&pat, env, &qa, "passed").await;
        assert_eq!(s, 201, "{b}");
    }
    let before = replicas[0].remote_tip("staging-eu");
    let doomed = Api::new(&replicas[lead]);
    let token = pat.clone();
    let push = tokio::spawn(async move {
        doomed
            .post_and_die(
                "/api/v1/promotions",
                &token,
                json!({"environment": "staging-eu"}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    replicas[lead].stop();
    let killed = Instant::now();
    assert!(push.await.unwrap(), "the leader died before it answered");
    let survivors: Vec<&TestServer> = (0..3)
        .filter(|i| *i != lead)
        .map(|i| &replicas[i])
        .collect();
    let new_lead = leader(&survivors, &pat).await;
    eprintln!("replicas: a new leader after {:?}", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(10));
    // Each replica says in /metrics whether it leads, how long it waited
    // for the shared ref lock and how late it heard of changes.
    for (i, r) in survivors.iter().enumerate() {
        let metrics = Api::new(r).get_text("/metrics", &pat).await;
        let leads = if i == new_lead {
            "envline_leader 1"
        } else {
            "envline_leader 0"
        };
        assert!(metrics.contains(leads), "{metrics}");
        assert!(metrics.contains("envline_feed_lag_seconds"), "{metrics}");
    }
    let metrics = Api::new(survivors[new_lead])
        .get_text("/metrics", &pat)
        .await;
    assert!(
        metrics.contains("envline_ref_lock_wait_seconds"),
        "{metrics}"
    );

    // Auto-promotion runs again: a commit pushed to main reaches qa.
    let work = tempfile::tempdir().unwrap();
    let work = work.path().join("work");
    let remote = replicas[0].remote.to_string_lossy().into_owned();
    git_in(
        std::path::Path::new("/"),
        &["clone", "-q", &remote, work.to_str().unwrap()],
    );
    std::fs::write(work.join("CHANGELOG.md"), "failover\n").unwrap();
    git_in(&work, &["add", "CHANGELOG.md"]);
    git_in(&work, &["commit", "-q", "-m", "after the failover"]);
    git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
    let main = replicas[0].remote_tip("main");
    within(
        Duration::from_secs(20),
        "auto-promotion resumed",
        || async { replicas[0].remote_tip("qa") == main },
    )
    .await;
    eprintln!(
        "replicas: auto-promotion ran again {:?} after the leader was killed",
        killed.elapsed()
    );

    // The push the dead leader started has ended one way or the other; a
    // refresh settles its intent. Then remote, database and log agree.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let survivor = survivors[new_lead];
    let (s, b) = Api::new(survivor)
        .post("/api/v1/refresh", Some(&pat), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let pool = survivor.open_database().await;
    let (pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM intents WHERE state = 'pending'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pending, 0, "every intent is settled");
    let staging = replicas[0].remote_tip("staging-eu");
    let (_, log) = Api::new(survivor)
        .get("/api/v1/audit?environment=staging-eu", Some(&pat))
        .await;
    let moves: Vec<&Value> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "promote")
        .collect();
    if staging == before {
        assert!(moves.is_empty(), "the push never landed: {log:#}");
    } else {
        assert_eq!(staging, qa);
        assert_eq!(moves.len(), 1, "the push landed once: {log:#}");
        assert_eq!(moves[0]["new"], qa);
    }
    let (_, check) = Api::new(survivor)
        .get("/api/v1/audit/verify", Some(&pat))
        .await;
    assert_eq!(check["intact"], true, "{check:#}");
    let remote: BTreeMap<String, String> = git(
        &replicas[0].remote,
        &[
            "for-each-ref",
            "--format=%(refname:short) %(objectname)",
            "refs/heads",
        ],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(b, c)| (b.to_owned(), c.to_owned()))
    .collect();
    for r in &survivors {
        within(
            Duration::from_secs(2),
            "a survivor shows the remote",
            || async {
                heads(r, &pat)
                    .await
                    .iter()
                    .all(|(env, head)| remote.get(env) == Some(head))
            },
        )
        .await;
    }

    // The survivors' live streams carried the changes up to the same last one.
    let last = |h: &Heard| h.lock().unwrap().last().copied();
    let survivors_heard: Vec<&Heard> = (0..3).filter(|i| *i != lead).map(|i| &heard[i]).collect();
    within(Duration::from_secs(2), "live streams agree", || async {
        last(survivors_heard[0]).is_some() && last(survivors_heard[0]) == last(survivors_heard[1])
    })
    .await;
    for h in &survivors_heard {
        let numbers = h.lock().unwrap().clone();
        assert!(numbers.len() >= 5, "{numbers:?}");
        assert!(
            numbers.windows(2).all(|w| w[0] <= w[1]),
            "numbers only grow: {numbers:?}"
        );
    }
}

/// A replica stuck holding the ref lock (a push hanging past its timeout)
/// does not leave the others waiting for ever: their moves are refused
/// once the wait is longer than any move takes, saying why, and nothing
/// moves; once the lock is free, the same move goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_lock_held_too_long_refuses_the_move_and_changes_nothing() {
    let mut server = TestServer::new();
    if server.database.is_none() {
        eprintln!("no POSTGRES_TEST_URL: replicas need PostgreSQL; run under .ci/with-postgres");
        return;
    }
    let pat = server.user("pat", &["promoter"]);
    server.start_with(&[
        ("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "false"),
        // The wait is 3 × this + 10 s.
        ("ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS", "1"),
    ]);
    let work = server.work_clone("outsider");
    std::fs::write(work.join("stuck.txt"), "stuck\n").unwrap();
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-qm", "a change for qa"]);
    git_in(&work, &["push", "-q", "origin", "main"]);
    let api = Api::new(&server);
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200, "{b}");

    // Another replica, stuck: it holds the ref lock and does nothing.
    let pool = server.open_database().await;
    let mut stuck = pool.acquire().await.unwrap();
    sqlx::query("SELECT 1 FROM pg_advisory_lock($1)")
        .bind(envline_engine::cluster::REF_LOCK)
        .execute(&mut *stuck)
        .await
        .unwrap();
    let before = server.all_remote_tips();
    let asked = Instant::now();
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "ref_lock_timeout", "{b}");
    assert!(
        asked.elapsed() >= Duration::from_secs(12),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(server.all_remote_tips(), before, "nothing moved");

    sqlx::query("SELECT 1 FROM pg_advisory_unlock_all()")
        .execute(&mut *stuck)
        .await
        .ok();
    drop(stuck);
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["state"], "done", "{b}");
    server.stop();
}

/// Moves of different environments do not wait for each other: with the
/// lock of `qa`'s branch held by another replica, a rollback of
/// `integration` (which reads nothing of `qa`) goes through at once, while
/// a promotion into `integration` (whose source `qa` is) waits for it and
/// is refused once the wait is too long, nothing moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_locked_elsewhere_holds_up_only_the_moves_that_touch_it() {
    let mut server = TestServer::new();
    if server.database.is_none() {
        eprintln!("no POSTGRES_TEST_URL: replicas need PostgreSQL; run under .ci/with-postgres");
        return;
    }
    let pat = server.user("pat", &["promoter", "tester"]);
    server.start_with(&[
        ("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "false"),
        ("ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS", "1"),
    ]);
    let work = server.work_clone("outsider");
    std::fs::write(work.join("next.txt"), "next\n").unwrap();
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-qm", "a change for qa"]);
    git_in(&work, &["push", "-q", "origin", "main"]);
    let api = Api::new(&server);
    let (s, b) = api.post("/api/v1/refresh", Some(&pat), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = api.promote(&pat, json!({"environment": "qa"})).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = api
        .verify(&pat, "qa", &server.remote_tip("qa"), "passed")
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 201, "{b}");
    let integration_before = server.remote_tip("integration");

    let pool = server.open_database().await;
    let mut other = pool.acquire().await.unwrap();
    sqlx::query("SELECT 1 FROM pg_advisory_lock($1)")
        .bind(envline_engine::cluster::ref_lock_key("qa"))
        .execute(&mut *other)
        .await
        .unwrap();

    let asked = Instant::now();
    let (s, b) = api
        .post(
            "/api/v1/rollbacks",
            Some(&pat),
            json!({"environments": ["integration"], "reason": "bad build"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the rollback waited for qa's lock: {:?}",
        asked.elapsed()
    );
    assert_ne!(server.remote_tip("integration"), integration_before);

    let before = server.all_remote_tips();
    let (s, b) = api
        .promote(&pat, json!({"environment": "integration"}))
        .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "ref_lock_timeout", "{b}");
    assert_eq!(server.all_remote_tips(), before, "nothing moved");

    sqlx::query("SELECT 1 FROM pg_advisory_unlock_all()")
        .execute(&mut *other)
        .await
        .ok();
    drop(other);
    let (s, b) = api
        .post(
            "/api/v1/rollbacks",
            Some(&pat),
            json!({"environments": ["qa"], "reason": "also bad"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    server.stop();
}
