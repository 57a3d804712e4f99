//! The operations, called on the engine directly (no HTTP): the seed's
//! scenarios on the demo repository, a real bare remote and a real SQLite
//! file (or a real PostgreSQL database, under `.ci/with-postgres`).

#[path = "support/postgres.rs"]
mod postgres;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use envline_api::{
    AuditAction, Decision, DecisionInput, ErrorCode, GateKind, HoldInput, HoldKind, PromoteInput,
    RequestKind, RequestState, RollbackInput, VerificationStatus, VerifyInput,
};
use envline_engine::auth::{self, Grant, Principal};
use envline_engine::caller::Access;
use envline_engine::config::Config;
use envline_engine::{Engine, EngineError, demo, ops};

struct World {
    engine: Arc<Engine>,
    remote: PathBuf,
    _dir: tempfile::TempDir,
    _database: Option<postgres::TestDatabase>,
}

/// The demo with nothing changed. No background task runs here: qa keeps
/// `auto_promote` (its holds matter) but nothing promotes it behind the
/// tests' back.
async fn world() -> World {
    world_with(&[]).await
}

impl World {
    fn tip(&self, branch: &str) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["rev-parse", &format!("refs/heads/{branch}")])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn all_tips(&self) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["for-each-ref", "--format=%(refname) %(objectname)"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    async fn audit_len(&self) -> usize {
        self.engine
            .audit_page(&Default::default(), None, i64::MAX)
            .await
            .unwrap()
            .len()
    }

    async fn pass(&self, env: &str, commit: &str) {
        ops::verify(
            &self.engine,
            &person("tess", &["tester"]),
            VerifyInput {
                environment: env.into(),
                commit: commit.into(),
                status: VerificationStatus::Passed,
                url: Some("https://ci.example.com/run/1".into()),
                summary: None,
            },
        )
        .await
        .unwrap();
    }
}

fn person(user: &str, roles: &[&str]) -> Principal {
    Principal {
        user: user.into(),
        grants: roles.iter().map(|r| Grant::parse(r).unwrap()).collect(),
        system: false,
    }
}

/// A person who exists in the database with their roles: approvals count
/// only for approvers who hold the role when the move executes (I4).
async fn registered(w: &World, user: &str, roles: &[&str]) -> Principal {
    let who = person(user, roles);
    envline_engine::auth::add_user(&w.engine.pool, "test", user, &who.grants, None)
        .await
        .unwrap();
    who
}

fn one(env: &str) -> PromoteInput {
    PromoteInput {
        environment: Some(env.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_fast_forwards_and_records_one_event() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    let main = w.tip("main");
    let before = w.audit_len().await;
    let done = ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
    assert_eq!(done[0].state, RequestState::Done);
    assert_eq!(done[0].kind, RequestKind::Promote);
    assert_eq!(w.tip("qa"), main, "qa fast-forwarded to main");
    let events = w
        .engine
        .audit_page(&Default::default(), None, i64::MAX)
        .await
        .unwrap();
    assert_eq!(events.len(), before + 1);
    assert_eq!(events[0].action, AuditAction::Promote);
    assert_eq!(events[0].actor, "pat");
    assert_eq!(events[0].new.as_deref(), Some(main.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_requires_exact_commit_verified_upstream_and_refusals_move_nothing() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    let before = w.all_tips();
    let err = ops::promote(&w.engine, &pat, one("integration"))
        .await
        .unwrap_err();
    let EngineError::GatesUnmet(gates) = err else {
        panic!("{err:?}")
    };
    assert_eq!(gates.len(), 1);
    assert_eq!(gates[0].gate, GateKind::Verified);
    assert_eq!(gates[0].environment, "qa");
    assert_eq!(w.all_tips(), before, "nothing moved");
    // qa moves on; a verification of the commit it held before does not
    // count for the one it holds now, one of exactly that commit does.
    let older = w.tip("qa");
    ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
    w.pass("qa", &older).await;
    assert!(
        ops::promote(&w.engine, &pat, one("integration"))
            .await
            .is_err()
    );
    w.pass("qa", &w.tip("qa")).await;
    ops::promote(&w.engine, &pat, one("integration"))
        .await
        .unwrap();
    assert_eq!(w.tip("integration"), w.tip("qa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_cannot_pass_where_the_commit_never_ran() {
    let w = world().await;
    let tess = person("tess", &["tester"]);
    let main = w.tip("main");
    let events = w.audit_len().await;
    let err = ops::verify(
        &w.engine,
        &tess,
        VerifyInput {
            environment: "qa".into(),
            commit: main.clone(),
            status: VerificationStatus::Passed,
            url: None,
            summary: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), 422, "{err}");
    assert_eq!(err.code(), ErrorCode::NeverHeld);
    assert!(
        err.to_string().contains(&w.tip("qa")[..10]),
        "lists what qa held: {err}"
    );
    assert_eq!(w.audit_len().await, events, "nothing recorded");
    // A failure may be recorded anywhere: it only ever revokes.
    ops::verify(
        &w.engine,
        &tess,
        VerifyInput {
            environment: "qa".into(),
            commit: main,
            status: VerificationStatus::Failed,
            url: None,
            summary: None,
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_needs_two_approvers_other_than_the_requester() {
    let w = world().await;
    let pat = person("pat", &["promoter", "approver"]);
    let staging = w.tip("staging-eu");
    w.pass("staging-eu", &staging).await;
    let asked = ops::promote(&w.engine, &pat, one("prod-eu")).await.unwrap();
    let request = &asked[0];
    assert_eq!(request.state, RequestState::AwaitingApproval);
    assert_eq!(request.required_approvals, 2);
    let approve = || DecisionInput {
        decision: Decision::Approve,
        comment: Some("looks right".into()),
    };
    let own = ops::decide(&w.engine, &pat, request.id, approve())
        .await
        .unwrap_err();
    assert!(matches!(own, EngineError::Forbidden(_)), "{own:?}");
    assert!(own.to_string().contains("needs another approver"), "{own}");
    let ann = registered(&w, "ann", &["approver:prod-*"]).await;
    let after_one = ops::decide(&w.engine, &ann, request.id, approve())
        .await
        .unwrap();
    assert_eq!(after_one.state, RequestState::AwaitingApproval);
    assert_ne!(w.tip("prod-eu"), staging);
    let bob = registered(&w, "bob", &["approver:prod-*"]).await;
    let after_two = ops::decide(&w.engine, &bob, request.id, approve())
        .await
        .unwrap();
    assert_eq!(after_two.state, RequestState::Done);
    assert_eq!(w.tip("prod-eu"), staging);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_commits_files_gates_and_moves_nothing() {
    let w = world().await;
    let vic = person("vic", &["viewer"]);
    let before = w.all_tips();
    let events = w.audit_len().await;
    let previews = ops::preview_promotion(
        &w.engine,
        &vic,
        PromoteInput {
            environments: Some(vec!["staging-*".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(previews.len(), 3);
    let eu = &previews[0];
    assert_eq!(eu.environment, "staging-eu");
    assert_eq!(eu.commits_total, 5, "staging-eu is 5 behind integration");
    assert_eq!(eu.commits.len(), 5);
    assert!(!eu.files.is_empty());
    assert!(
        eu.files
            .iter()
            .any(|f| f.diff.as_deref().is_some_and(|d| d.contains("@@"))),
        "{:?}",
        eu.files
    );
    let verified: Vec<_> = eu
        .gates
        .iter()
        .filter(|g| g.gate == GateKind::Verified)
        .collect();
    assert_eq!(verified.len(), 2, "integration and loadtest");
    assert!(verified.iter().all(|g| !g.met));
    assert!(eu.blocked.is_none(), "a fast-forward; only gates are unmet");
    assert_eq!(w.all_tips(), before);
    assert_eq!(w.audit_len().await, events, "a preview records nothing");
    // Each commit says which environments it affects (S2).
    assert!(eu.commits.iter().all(|c| !c.affects.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_environments_move_together_or_not_at_all() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    // integration and loadtest both get qa's head, and it is tested in qa.
    let qa = w.tip("qa");
    w.pass("qa", &qa).await;
    for env in ["integration", "loadtest"] {
        ops::promote(&w.engine, &pat, one(env)).await.unwrap();
    }
    w.pass("integration", &qa).await;
    let before = w.all_tips();
    let staging = || PromoteInput {
        environments: Some(vec!["staging-*".into()]),
        ..Default::default()
    };
    // loadtest has not passed: nothing moves, and the gate is named.
    let err = ops::promote(&w.engine, &pat, staging()).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::GatesUnmet(g) if g.iter().all(|g| g.environment == "loadtest")),
        "{err:?}"
    );
    assert_eq!(w.all_tips(), before);
    w.pass("loadtest", &qa).await;
    let done = ops::promote(&w.engine, &pat, staging()).await.unwrap();
    assert_eq!(done.len(), 3);
    for env in ["staging-eu", "staging-us", "staging-asia"] {
        assert_eq!(w.tip(env), qa, "{env}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_plan_then_rollback_goes_back_and_holds_auto_promotion() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    let old = w.tip("qa");
    ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
    let new = w.tip("qa");
    let input = RollbackInput {
        environments: vec!["qa".into()],
        to: None,
        reason: Some("checkout broke".into()),
    };
    let plans = ops::preview_rollback(&w.engine, &pat, input.clone())
        .await
        .unwrap();
    assert_eq!(plans[0].head.id, new);
    assert_eq!(plans[0].target.id, old);
    assert_eq!(plans[0].leaving_total, 1);
    assert!(plans[0].places_hold);
    assert_eq!(w.tip("qa"), new, "the plan moved nothing");
    ops::rollback(&w.engine, &pat, input).await.unwrap();
    assert_eq!(w.tip("qa"), old);
    let holds = w.engine.holds().await.unwrap();
    assert!(
        holds
            .iter()
            .any(|h| h.environment == "qa" && h.kind == HoldKind::AutoPromotion)
    );
    // Protected environments need the incident commander.
    let err = ops::preview_rollback(
        &w.engine,
        &pat,
        RollbackInput {
            environments: vec!["prod-*".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("incident-commander"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_blocks_promotions_until_released() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    let held = ops::hold(
        &w.engine,
        &pat,
        HoldInput {
            environments: vec!["qa".into()],
            reason: "demo to the customer at 3pm".into(),
            kind: HoldKind::Promotion,
            starts_at: None,
            ends_at: None,
        },
    )
    .await
    .unwrap();
    let err = ops::promote(&w.engine, &pat, one("qa")).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::GatesUnmet(g) if g[0].gate == GateKind::Hold && g[0].message.contains("demo to the customer")),
        "{err:?}"
    );
    let vic = person("vic", &["viewer"]);
    assert!(
        ops::release(&w.engine, &vic, held[0].id, None)
            .await
            .is_err()
    );
    ops::release(&w.engine, &pat, held[0].id, None)
        .await
        .unwrap();
    ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_sees_what_each_person_may_do() {
    let w = world().await;
    let ann = w
        .engine
        .viewer(&person("ann", &["approver:prod-*", "tester"]));
    assert!(ann.signed_in);
    assert!(ann.on("prod-eu").approve);
    assert!(!ann.on("staging-eu").approve);
    assert!(ann.on("qa").verify);
    assert!(!ann.on("qa").promote);
    let anon = w.engine.viewer(&Principal::anonymous());
    assert!(!anon.signed_in);
    assert!(!anon.on("qa").promote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_answers_alike_for_a_wrong_password_and_an_unknown_user_and_is_rate_limited() {
    let w = world().await;
    auth::add_user(
        &w.engine.pool,
        "test",
        "pat",
        &[Grant::parse("promoter").unwrap()],
        Some("correct horse"),
    )
    .await
    .unwrap();
    let ip = Some("10.0.0.1".parse().unwrap());
    let signed = w
        .engine
        .people()
        .sign_in("pat", "correct horse", ip)
        .await
        .unwrap();
    assert_eq!(signed.principal.user, "pat");
    let wrong = w
        .engine
        .people()
        .sign_in("pat", "wrong", ip)
        .await
        .err()
        .unwrap()
        .to_string();
    let unknown = w
        .engine
        .people()
        .sign_in("nobody", "wrong", ip)
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(wrong, unknown);
    // Five wrong passwords in a row from one address: the next attempt from
    // there waits, even with the right password; pat elsewhere does not.
    for _ in 0..4 {
        let _ = w.engine.people().sign_in("pat", "wrong", ip).await;
    }
    let limited = w
        .engine
        .people()
        .sign_in("pat", "correct horse", ip)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            limited,
            EngineError::RateLimited {
                retry_after: 1..,
                ..
            }
        ),
        "{limited:?}"
    );
    let elsewhere = Some("10.0.0.2".parse().unwrap());
    assert!(
        w.engine
            .people()
            .sign_in("pat", "correct horse", elsewhere)
            .await
            .is_ok()
    );
    // The session cookie names the person, and a change with it needs our origin.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        format!("envline_session={}", signed.secret)
            .parse()
            .unwrap(),
    );
    headers.insert(http::header::HOST, "envline.test:3000".parse().unwrap());
    let who = w
        .engine
        .people()
        .caller(&headers, Access::Read)
        .await
        .unwrap();
    assert_eq!(who.user, "pat");
    let cross = w
        .engine
        .people()
        .caller(&headers, Access::Change)
        .await
        .unwrap_err();
    assert!(matches!(cross, EngineError::CrossOrigin(_)), "{cross:?}");
    headers.insert(
        http::header::ORIGIN,
        "https://evil.example".parse().unwrap(),
    );
    assert!(
        w.engine
            .people()
            .caller(&headers, Access::Change)
            .await
            .is_err()
    );
    headers.insert(
        http::header::ORIGIN,
        "http://envline.test:3000".parse().unwrap(),
    );
    assert_eq!(
        w.engine
            .people()
            .caller(&headers, Access::Change)
            .await
            .unwrap()
            .user,
        "pat"
    );
}

/// The demo with these `ENVLINE_*` overrides.
async fn world_with(vars: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let file = demo::create(dir.path()).unwrap();
    let mut vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let database = postgres::TestDatabase::new();
    if let Some(database) = &database {
        vars.insert("ENVLINE_DATABASE_URL".into(), database.url.clone());
    }
    let config = Config::load(&file, &vars).unwrap();
    let engine = Engine::start(config).await.unwrap();
    World {
        engine,
        remote: dir.path().join("remote.git"),
        _dir: dir,
        _database: database,
    }
}

fn back(env: &str, to: Option<&str>) -> RollbackInput {
    RollbackInput {
        environments: vec![env.into()],
        to: to.map(str::to_owned),
        reason: Some("incident".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_only_goes_back_never_to_where_a_reset_came_from() {
    let w = world().await;
    let pat = person("pat", &["promoter", "tester"]);
    let first = w.tip("qa");
    ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
    let ahead = w.tip("qa");
    // S6: qa is reset onto loadtest, which is behind it.
    let loadtest = w.tip("loadtest");
    let from_loadtest = || PromoteInput {
        environment: Some("qa".into()),
        from: Some("loadtest".into()),
        ..Default::default()
    };
    let reset = ops::promote(&w.engine, &pat, from_loadtest())
        .await
        .unwrap();
    assert_eq!(reset[0].kind, RequestKind::Reset);
    assert_eq!(w.tip("qa"), loadtest);
    // "Roll back" must not bring qa forward to where the reset came from.
    let err = ops::rollback(&w.engine, &pat, back("qa", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoPreviousPosition, "{err}");
    let err = ops::rollback(&w.engine, &pat, back("qa", Some(&ahead)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotBack, "{err}");
    // An explicit position must have been reached through a gated move:
    // `first` was only ever observed.
    let err = ops::rollback(&w.engine, &pat, back("qa", Some(&first)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NeverHeld, "{err}");
    assert_eq!(w.tip("qa"), loadtest);
    // Forward again; loadtest's commit then fails its tests in qa: no
    // rolling back onto it.
    ops::promote(&w.engine, &pat, one("qa")).await.unwrap();
    ops::verify(
        &w.engine,
        &pat,
        VerifyInput {
            environment: "qa".into(),
            commit: loadtest.clone(),
            status: VerificationStatus::Failed,
            url: None,
            summary: Some("checkout broken".into()),
        },
    )
    .await
    .unwrap();
    let err = ops::rollback(&w.engine, &pat, back("qa", Some(&loadtest)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FailedThere, "{err}");
    assert_eq!(w.tip("qa"), ahead, "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_a_rollbacks_hold_needs_the_role_that_could_roll_back() {
    let w = world_with(&[("ENVLINE_ENVIRONMENT_PROD_EU_AUTO_PROMOTE", "true")]).await;
    let pat = person("pat", &["promoter", "tester"]);
    let ida = person("ida", &["incident-commander"]);
    let staging = w.tip("staging-eu");
    w.pass("staging-eu", &staging).await;
    let asked = ops::promote(&w.engine, &pat, one("prod-eu")).await.unwrap();
    for approver in ["ann", "bob"] {
        ops::decide(
            &w.engine,
            &registered(&w, approver, &["approver"]).await,
            asked[0].id,
            DecisionInput {
                decision: Decision::Approve,
                comment: None,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(w.tip("prod-eu"), staging);
    ops::rollback(&w.engine, &ida, back("prod-eu", None))
        .await
        .unwrap();
    let holds = w.engine.holds().await.unwrap();
    let hold = holds.iter().find(|h| h.environment == "prod-eu").unwrap();
    // A promoter may hold and release holds, but not this one: prod-eu is protected.
    let err = ops::release(&w.engine, &pat, hold.id, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("incident-commander"), "{err}");
    ops::release(&w.engine, &ida, hold.id, None).await.unwrap();
    // Released: no hold is left on prod-eu.
    assert!(
        w.engine
            .holds()
            .await
            .unwrap()
            .iter()
            .all(|h| h.environment != "prod-eu")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_id_names_a_commit_never_a_branch_of_that_name() {
    let w = world().await;
    let pat = person("pat", &["promoter"]);
    let main = w.tip("main");
    // A branch whose name looks like a short id, pointing at main.
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&w.remote)
        .args(["update-ref", "refs/heads/deadbee", &main])
        .output()
        .unwrap();
    assert!(out.status.success());
    w.engine.refresh().await.unwrap();
    let err = ops::promote(
        &w.engine,
        &pat,
        PromoteInput {
            environment: Some("qa".into()),
            commit: Some("deadbee".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    // A real short id works.
    let done = ops::promote(
        &w.engine,
        &pat,
        PromoteInput {
            environment: Some("qa".into()),
            commit: Some(main[..8].to_string()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(done[0].to_commit, main);
}
