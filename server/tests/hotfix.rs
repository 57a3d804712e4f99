//! The seed's hardest scenario (S4) on a real remote: production is behind
//! staging, which is behind qa and main, and production breaks. Hotfix mode
//! resets every branch to production, the fix goes through the normal
//! gates, and merging back replays main's commits on the fix.

mod common;

use std::path::PathBuf;

use common::{Api, TestServer, git, git_in};
use serde_json::{Value, json};

struct World {
    server: TestServer,
    api: Api,
    pat: String,
    ann: String,
    bob: String,
    ida: String,
}

async fn world() -> World {
    let mut server = TestServer::new();
    let pat = server.user("pat", &["promoter", "tester"]);
    let ann = server.user("ann", &["approver:prod-*"]);
    let bob = server.user("bob", &["approver:prod-*"]);
    let ida = server.user("ida", &["incident-commander"]);
    server.start();
    let api = Api::new(&server);
    World {
        server,
        api,
        pat,
        ann,
        bob,
        ida,
    }
}

impl World {
    /// A work tree of the remote, as a developer has one.
    fn work(&self, name: &str) -> PathBuf {
        let work = self.server.dir.path().join(name);
        let out = std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(&self.server.remote)
            .arg(&work)
            .output()
            .unwrap();
        assert!(out.status.success());
        work
    }

    /// A developer pushes a fix to the hotfix branch with git.
    fn push_fix(&self, branch: &str, path: &str, content: &str) -> String {
        let work = self.work(&format!("fix-{}", branch.replace('/', "-")));
        git_in(&work, &["checkout", "-q", branch]);
        std::fs::write(work.join(path), content).unwrap();
        git_in(&work, &["commit", "-qam", "fix: the checkout timeout"]);
        git_in(&work, &["push", "-q", "origin", branch]);
        git_in(&work, &["rev-parse", "HEAD"])
    }

    async fn refresh(&self) {
        let (s, b) = self
            .api
            .post("/api/v1/refresh", Some(&self.pat), json!({}))
            .await;
        assert_eq!(s, 200, "{b}");
    }

    async fn promote(&self, env: &str) -> Value {
        let (s, b) = self
            .api
            .promote(&self.pat, json!({"environment": env}))
            .await;
        assert_eq!(s, 201, "{env}: {b}");
        b
    }

    async fn pass(&self, env: &str, commit: &str) {
        let (s, b) = self.api.verify(&self.pat, env, commit, "passed").await;
        assert_eq!(s, 201, "{env}: {b}");
    }

    /// The fix goes the normal way: qa, integration and loadtest, staging-eu,
    /// prod-eu with two approvals, each tested where it ran.
    async fn fix_to_prod_eu(&self, fix: &str) {
        self.refresh().await;
        self.promote("qa").await;
        self.pass("qa", fix).await;
        self.promote("integration").await;
        self.promote("loadtest").await;
        self.pass("integration", fix).await;
        self.pass("loadtest", fix).await;
        self.promote("staging-eu").await;
        self.pass("staging-eu", fix).await;
        let request = self.promote("prod-eu").await;
        assert_eq!(request["state"], "awaiting_approval");
        let path = format!("/api/v1/promotions/{}/approvals", request["id"]);
        for approver in [&self.ann, &self.bob] {
            let (s, b) = self
                .api
                .post(&path, Some(approver), json!({"decision": "approve"}))
                .await;
            assert_eq!(s, 200, "{b}");
        }
        assert_eq!(self.server.remote_tip("prod-eu"), fix);
    }

    async fn hotfixes(&self) -> Value {
        self.api.get("/api/v1/hotfixes", Some(&self.pat)).await.1
    }

    fn start(&self, incident: &str, keep: &[&str]) -> Value {
        json!({"incident": incident, "from": "prod-eu", "reason": "checkout times out in production", "keep": keep})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotfix_mode_from_incident_to_merge_back() {
    let mut w = world().await;
    let main_before = w.server.remote_tip("main");
    let fork = w.server.remote_tip("prod-eu");
    assert_ne!(
        w.server.remote_tip("staging-eu"),
        fork,
        "staging is ahead of prod"
    );
    assert_ne!(w.server.remote_tip("qa"), fork);
    // An open request elsewhere, cancelled by hotfix mode.
    let staging_us = w.server.remote_tip("staging-us");
    w.pass("staging-us", &staging_us).await;
    let waiting = w.promote("prod-us").await;
    assert_eq!(waiting["state"], "awaiting_approval");

    // Only an incident commander starts hotfix mode.
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes", Some(&w.pat), w.start("INC-1", &[]))
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("incident-commander")
    );

    // The plan: every other branch to production's commit; production
    // environments elsewhere are shown, and the commander chooses.
    let (s, plan) = w
        .api
        .post(
            "/api/v1/hotfixes/plan",
            Some(&w.ida),
            json!({"incident": "INC-1", "from": "prod-eu"}),
        )
        .await;
    assert_eq!(s, 200, "{plan}");
    assert_eq!(plan["fork"]["id"], fork);
    assert_eq!(plan["branch"], "hotfix/INC-1");
    let asia = plan["resets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == "prod-asia")
        .unwrap();
    assert_eq!(asia["protected"], true);
    assert_eq!(asia["at_fork"], false, "prod-asia is at another commit");
    assert_eq!(plan["cancels"][0]["id"], waiting["id"]);

    // Hotfix mode starts from production only: from qa, resets would carry
    // qa's untested commits into production past every gate.
    let (s, b) = w
        .api
        .post(
            "/api/v1/hotfixes",
            Some(&w.ida),
            json!({"incident": "INC-1", "from": "qa", "reason": "broken"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prod-eu, prod-us, prod-asia"),
        "{b}"
    );

    let before = w.server.all_remote_tips();
    let (s, incident) = w
        .api
        .post(
            "/api/v1/hotfixes",
            Some(&w.ida),
            w.start("INC-1", &["prod-us", "prod-asia"]),
        )
        .await;
    assert_eq!(s, 201, "{incident}");
    assert_eq!(incident["state"], "active");
    // Every branch on the remote (git CLI): at production's commit, but main
    // and the one kept aside.
    assert_eq!(w.server.remote_tip("hotfix/INC-1"), fork);
    for env in [
        "qa",
        "integration",
        "loadtest",
        "staging-eu",
        "staging-us",
        "staging-asia",
        "prod-eu",
        "prod-us",
    ] {
        assert_eq!(w.server.remote_tip(env), fork, "{env} reset");
    }
    assert_eq!(w.server.remote_tip("main"), main_before);
    assert_ne!(w.server.remote_tip("prod-asia"), fork, "kept where it was");
    assert_ne!(w.server.all_remote_tips(), before);
    let (_, cancelled) = w
        .api
        .get(
            &format!("/api/v1/promotions/{}", waiting["id"]),
            Some(&w.pat),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");

    // The root is the hotfix branch; promotions from main are refused.
    let (_, envs) = w.api.get("/api/v1/environments", Some(&w.pat)).await;
    assert_eq!(envs["root"], "hotfix/INC-1");
    let (s, b) = w
        .api
        .promote(&w.pat, json!({"environment": "qa", "from": "main"}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "hotfix_mode");

    // It survives a restart.
    w.server.stop();
    w.server.start();
    let status = w.hotfixes().await;
    assert_eq!(
        status["current"]["incident"]["incident"], "INC-1",
        "{status}"
    );

    // Not resolvable before the fix is in production.
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes/INC-1/resolve", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "no_fix");

    // A developer pushes the fix; it goes through the gates to prod-eu.
    let fix = w.push_fix("hotfix/INC-1", "base/service.yml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop-api\n  annotations:\n    timeout: 30s\nspec:\n  type: ClusterIP\n  selector:\n    app: shop-api\n  ports:\n  - protocol: TCP\n    port: 80\n    targetPort: 8080\n");
    w.fix_to_prod_eu(&fix).await;
    let status = w.hotfixes().await;
    let eu = status["current"]["progress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["environment"] == "prod-eu")
        .unwrap()
        .clone();
    assert_eq!(eu["has_fix"], true, "{status}");
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes/INC-1/resolve", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "resolved");
    assert_eq!(b["resolved_by"], "ida");

    // Someone force-pushes the hotfix branch back to the fork after the
    // resolve: the merge back still folds in the fix that was resolved.
    git(
        &w.server.remote,
        &["update-ref", "refs/heads/hotfix/INC-1", &fork],
    );

    // Work on main went on meanwhile: a feature branch merged with a merge commit.
    let dev = w.work("feature");
    git_in(&dev, &["checkout", "-q", "-b", "feature", "origin/main"]);
    std::fs::write(dev.join("base/feature-flags.yml"), "checkout_v2: true\n").unwrap();
    git_in(&dev, &["add", "base/feature-flags.yml"]);
    git_in(&dev, &["commit", "-qm", "feature: checkout v2 flag"]);
    git_in(&dev, &["checkout", "-q", "main"]);
    git_in(
        &dev,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge feature/checkout-v2",
            "feature",
        ],
    );
    git_in(&dev, &["push", "-q", "origin", "main"]);
    let main_before = w.server.remote_tip("main");

    // Merge back: main keeps its own changes and gets the fix, linear.
    let (s, merged) = w
        .api
        .post("/api/v1/hotfixes/INC-1/merge-back", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 200, "{merged}");
    assert_eq!(merged["state"], "merged");
    let main = w.server.remote_tip("main");
    let contains = |a: &str, b: &str| {
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&w.server.remote)
            .args(["merge-base", "--is-ancestor", a, b])
            .status()
            .unwrap()
            .success()
    };
    assert!(contains(&fix, &main), "main contains the fix");
    assert_eq!(
        git(
            &w.server.remote,
            &[
                "rev-list",
                "--merges",
                "--count",
                &format!("{fork}..{main}")
            ]
        ),
        "0",
        "no merge commits"
    );
    let replayed = merged["mapping"].as_array().unwrap();
    let ahead: usize = git(
        &w.server.remote,
        &[
            "rev-list",
            "--count",
            "--first-parent",
            &format!("{fork}..{main_before}"),
        ],
    )
    .parse()
    .unwrap();
    assert_eq!(
        replayed.len(),
        ahead,
        "every commit of main since the fork, mapped"
    );
    assert_eq!(
        git(
            &w.server.remote,
            &["show", &format!("{main}:base/deployment.yml")]
        ),
        git(
            &w.server.remote,
            &["show", &format!("{main_before}:base/deployment.yml")]
        ),
        "main keeps its newest version"
    );
    assert!(
        git(
            &w.server.remote,
            &["show", &format!("{main}:base/service.yml")]
        )
        .contains("timeout: 30s")
    );
    assert_eq!(
        git(
            &w.server.remote,
            &["show", &format!("{main}:base/feature-flags.yml")]
        ),
        "checkout_v2: true",
        "the merged feature is kept"
    );
    // The author of a replayed commit is kept.
    let first = &replayed[0];
    assert_eq!(
        git(
            &w.server.remote,
            &[
                "log",
                "-1",
                "--format=%an %at %s",
                first["old"].as_str().unwrap()
            ]
        ),
        git(
            &w.server.remote,
            &[
                "log",
                "-1",
                "--format=%an %at %s",
                first["new"].as_str().unwrap()
            ]
        )
    );
    // Hotfix mode is over: main is the root, every environment on its line.
    let (_, envs) = w.api.get("/api/v1/environments", Some(&w.pat)).await;
    assert_eq!(envs["root"], "main");
    for env in envs["environments"].as_array().unwrap() {
        if env["name"] != "prod-asia" {
            assert_eq!(env["on_line"], true, "{}", env["name"]);
        }
    }
    // The past incident lists its steps (the audit events of the incident).
    let status = w.hotfixes().await;
    assert!(status["current"].is_null());
    let past = &status["incidents"][0];
    assert_eq!(past["incident"], "INC-1", "{status}");
    assert_eq!(past["state"], "merged");
    let steps: Vec<String> = past["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for step in [
        "hotfix_start",
        "hotfix_paused",
        "hotfix_reset",
        "hotfix_resolved",
        "merge_back",
    ] {
        assert!(steps.iter().any(|s| s == step), "{step}: {steps:?}");
    }
    let (_, check) = w.api.get("/api/v1/audit/verify", Some(&w.pat)).await;
    assert_eq!(check["intact"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_that_conflicts_with_main_is_merged_back_by_hand() {
    let w = world().await;
    let (s, b) = w
        .api
        .post(
            "/api/v1/hotfixes",
            Some(&w.ida),
            w.start("INC-2", &["prod-us", "prod-asia"]),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // The fix changes the image line that main's later versions change too.
    let fork = w.server.remote_tip("prod-eu");
    let deployment = git(
        &w.server.remote,
        &["show", &format!("{fork}:base/deployment.yml")],
    );
    let patched = deployment
        .lines()
        .map(|l| {
            if l.contains("image:") {
                "        image: ghcr.io/acme/shop-api:hotfix-2".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let fix = w.push_fix("hotfix/INC-2", "base/deployment.yml", &patched);
    w.fix_to_prod_eu(&fix).await;
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes/INC-2/resolve", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    let main_before = w.server.remote_tip("main");
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes/INC-2/merge-back", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "merge_back_conflict");
    let conflict = &b["error"]["details"]["conflicts"][0];
    assert_eq!(conflict["paths"], json!(["base/deployment.yml"]), "{b}");
    assert!(conflict["commit"].as_str().unwrap().len() == 40);
    assert!(
        b["error"]["details"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains(&format!("git rebase {fix}"))),
        "{b}"
    );
    assert_eq!(w.server.remote_tip("main"), main_before, "nothing moved");

    // A person rebases by hand (keeping main's versions) and pushes.
    let work = w.work("by-hand");
    git_in(&work, &["checkout", "-q", "main"]);
    git_in(
        &work,
        &["rebase", "-q", "-X", "theirs", "origin/hotfix/INC-2"],
    );
    git_in(
        &work,
        &["push", "-q", "--force-with-lease", "origin", "main"],
    );
    // Merging back right after the push sees it (no refresh in between).
    let (s, merged) = w
        .api
        .post("/api/v1/hotfixes/INC-2/merge-back", Some(&w.ida), json!({}))
        .await;
    assert_eq!(s, 200, "{merged}");
    assert_eq!(merged["state"], "merged");
    let (_, envs) = w.api.get("/api/v1/environments", Some(&w.pat)).await;
    assert_eq!(envs["root"], "main");

    // An incident id names one incident: reusing it, even with its branch
    // deleted, is refused before anything moves.
    git(
        &w.server.remote,
        &["update-ref", "-d", "refs/heads/hotfix/INC-2"],
    );
    w.refresh().await;
    let before = w.server.all_remote_tips();
    let (s, b) = w
        .api
        .post("/api/v1/hotfixes", Some(&w.ida), w.start("INC-2", &[]))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "incident_used");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("INC-2-2"),
        "{b}"
    );
    assert_eq!(w.server.all_remote_tips(), before, "nothing moved");
    assert!(w.hotfixes().await["current"].is_null());
}
