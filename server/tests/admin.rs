//! People and tokens over the API (admin role), against a real server.

mod common;

use common::{Api, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_people_grants_and_removes_roles_and_revokes_tokens() {
    let mut server = TestServer::new();
    let root = server.user("root", &["admin"]);
    let pat = server.user("pat", &["promoter"]);
    server.start();
    let api = Api::new(&server);

    // Only an admin manages people.
    let (s, b) = api.get("/api/v1/users", Some(&pat)).await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = api
        .post(
            "/api/v1/users",
            Some(&pat),
            json!({"name": "cal", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(s, 403);

    let (s, b) = api
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"name": "cal", "roles": ["tester"], "password": "long enough"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // Refusals say what was wrong, and change nothing.
    for (body, status, says) in [
        (
            json!({"name": "cal", "roles": ["tester"]}),
            409,
            "already a user",
        ),
        (json!({"name": "dee", "roles": ["wizard"]}), 400, "wizard"),
        (json!({"name": "dee", "roles": []}), 400, "at least one"),
        (
            json!({"name": "dee", "roles": ["tester"], "password": "short"}),
            400,
            "8 characters",
        ),
    ] {
        let (s, b) = api.post("/api/v1/users", Some(&root), body).await;
        assert_eq!(s, status, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{b}"
        );
    }
    let (s, b) = api
        .post(
            "/api/v1/users/cal/roles",
            Some(&root),
            json!({"role": "approver:prod-*"}),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = api
        .post(
            "/api/v1/users/nobody/roles",
            Some(&root),
            json!({"role": "tester"}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = api
        .delete("/api/v1/users/cal/roles/tester", Some(&root))
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = api
        .delete("/api/v1/users/cal/roles/tester", Some(&root))
        .await;
    assert_eq!(s, 404, "a role the person no longer has is not there: {b}");
    // The only admin cannot be left without the role.
    let (s, b) = api
        .delete("/api/v1/users/root/roles/admin", Some(&root))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "last_admin");
    let (_, b) = api.get("/api/v1/users", Some(&root)).await;
    let cal = b["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "cal")
        .unwrap()
        .clone();
    assert_eq!(cal["roles"], json!(["approver:prod-*"]));

    // A token, shown once; it works until it is revoked, then gets 401 at once.
    let (s, b) = api
        .post(
            "/api/v1/tokens",
            Some(&root),
            json!({"user": "cal", "label": "ci-pipeline"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    let (s, _) = api.get("/api/v1/environments", Some(&token)).await;
    assert_eq!(s, 200);
    let (_, b) = api.get("/api/v1/users", Some(&root)).await;
    assert!(!b.to_string().contains(&token), "tokens are never listed");
    let id = b["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "cal")
        .unwrap()["tokens"][0]["id"]
        .as_i64()
        .unwrap();
    let (s, _) = api
        .delete(&format!("/api/v1/tokens/{id}"), Some(&root))
        .await;
    assert_eq!(s, 204);
    let (s, _) = api.get("/api/v1/environments", Some(&token)).await;
    assert_eq!(s, 401);

    // Every change is in the audit log, by the admin who made it.
    let (_, audit) = api.get("/api/v1/audit", Some(&root)).await;
    let actions: Vec<(String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for action in [
        "user_created",
        "role_granted",
        "role_removed",
        "token_created",
        "token_revoked",
    ] {
        assert!(
            actions.contains(&("root".to_owned(), action.to_owned())),
            "{action}: {actions:?}"
        );
    }
}
