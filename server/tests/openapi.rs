//! The OpenAPI document against the code and the running server: every route
//! the REST modules register is in the document, and every operation the
//! document lists is answered by a real handler (not the API's "no API
//! endpoint" fallback, not a wrong-method answer).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TestServer;
use serde_json::Value;

/// An operation: upper-case HTTP method and path template (`/api/v1/holds/{id}`).
type Operation = (String, String);

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_there_are() {
    let mut server = TestServer::new();
    // Every endpoint on: without a secret the webhooks answer 503.
    server.start_with(&[("ENVLINE_WEBHOOKS_SECRET", "openapi-test-webhook-secret")]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let answer = client
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "served without credentials");
    assert_eq!(
        answer.headers()["content-type"],
        "application/json",
        "served as JSON"
    );
    let text = answer.text().await.unwrap();
    let document: Value = serde_json::from_str(&text).expect("the document is valid JSON");
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3.1"),
        "an OpenAPI 3.1 document, not `{version}`"
    );
    assert_eq!(document["info"]["title"], "Envline");

    let documented = documented_operations(&document);

    // A route registered in the source is in the document.
    let registered = registered_routes();
    assert!(
        registered.contains(&("POST".into(), "/api/v1/promotions".into())),
        "the source scan finds the routes: {registered:?}"
    );
    let missing: Vec<&Operation> = registered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes registered in server/src/rest but missing from the OpenAPI document \
         (register handlers with `routes!()` and a `#[utoipa::path]`, not `.route()`): {missing:?}"
    );

    // An operation in the document is answered by its handler. Requests go
    // without credentials (no token, no webhook signature), so nothing
    // changes: a handler answers 401, or 2xx when the operation needs none.
    let mut wrong = Vec::new();
    for (method, path) in &documented {
        let operation = &document["paths"][path][method.to_lowercase()];
        let url = server.url(&fill_path(path, operation));
        let request = client
            .request(method.parse().unwrap(), &url)
            .header("content-type", "application/json")
            .body("{}");
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let body: Value = if status == 404 || status == 405 {
            serde_json::from_str(&answer.text().await.unwrap()).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let fallback =
            status == 404 && (code != "not_found" || message.starts_with("no API endpoint"));
        if fallback || status == 405 {
            wrong.push(format!(
                "{method} {path}: {status} {code}: {message} (the route does not exist)"
            ));
            continue;
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if secured && status != 401 {
            wrong.push(format!(
                "{method} {path}: {status} without credentials; the document says it needs a token or session"
            ));
        }
        if !secured && !(200..300).contains(&status) {
            wrong.push(format!(
                "{method} {path}: {status} without credentials; the document says it needs none"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "operations in the OpenAPI document the server does not answer as documented:\n{}",
        wrong.join("\n")
    );
}

/// Every method and path in the document's `paths`.
/// The document states what the server enforces: the configured
/// environments by name, commit ids by pattern, limits by range, the error
/// body of each status, and links from what creates an id to what takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_names_the_configured_environments_and_the_constraints() {
    let mut server = TestServer::new();
    server.start();
    let document: Value = reqwest::get(server.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &document["components"]["schemas"];
    let promote = &schemas["PromoteInput"]["properties"];
    let names: Vec<&str> = promote["environment"]["enum"]
        .as_array()
        .expect("environment is one of the configured names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"qa") && names.contains(&"prod-eu"),
        "{names:?}"
    );
    assert!(
        promote["from"]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::from("main")),
        "a promotion's source may be the root"
    );
    let protected: Vec<&Value> = schemas["HotfixInput"]["properties"]["from"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        protected.contains(&&Value::from("prod-eu")) && !protected.contains(&&Value::from("qa")),
        "hotfix mode starts from production only: {protected:?}"
    );
    assert_eq!(promote["commit"]["pattern"], "^[0-9a-fA-F]{7,40}$");
    assert_eq!(
        schemas["PromoteInput"]["oneOf"].as_array().map(Vec::len),
        Some(2),
        "one environment or several"
    );
    let timeline = document["paths"]["/api/v1/timeline"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = timeline.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&Value::from(1), &Value::from(500))
    );
    let created = &document["paths"]["/api/v1/promotions"]["post"]["responses"]["201"];
    assert_eq!(
        created["links"]["decide"]["parameters"]["id"], "$response.body#/id",
        "a promotion links to its approvals"
    );
    let hold = &document["paths"]["/api/v1/holds"]["post"]["responses"]["201"];
    assert!(
        hold["links"]["release"].is_object(),
        "a hold links to its release"
    );
    let refused = &document["paths"]["/api/v1/holds"]["post"]["responses"]["422"];
    assert!(
        refused["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/ErrorBody")),
        "each error status names its body: {refused}"
    );
    assert!(
        schemas["HotfixInput"]["example"].is_object(),
        "inputs carry an example"
    );
}

fn documented_operations(document: &Value) -> BTreeSet<Operation> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A concrete path for a template: integer path parameters become `1`,
/// the others `qa`.
fn fill_path(template: &str, operation: &Value) -> String {
    let mut path = template.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap();
        let value = if parameter["schema"]["type"] == "integer" {
            "1"
        } else {
            "qa"
        };
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(
        !path.contains('{'),
        "{template}: a path parameter is not documented"
    );
    path
}

/// Every route the REST modules (`server/src/rest/*.rs`) register: the path
/// and method of each `#[utoipa::path(...)]` (which `routes!()` routes), and
/// of each `.route("…", …)` given a router directly. The `{*rest}` wildcard
/// (the JSON 404 for unknown paths) is not an endpoint.
fn registered_routes() -> BTreeSet<Operation> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rest");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = code_only(&std::fs::read_to_string(&file).unwrap());
        for args in calls(&source, "#[utoipa::path(") {
            let methods = match args.first().map(String::as_str) {
                Some(m) if m.starts_with("method(") => {
                    words(&m["method(".len()..m.len() - 1]).collect::<Vec<_>>()
                }
                Some(m) => vec![m.to_owned()],
                None => vec![],
            };
            let path = args
                .iter()
                .find_map(|a| a.strip_prefix("path"))
                .and_then(|rest| string_literal(rest.trim_start().strip_prefix('=')?))
                .unwrap_or_else(|| panic!("{}: a #[utoipa::path] without a path", file.display()));
            for method in methods {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
        for args in calls(&source, ".route(") {
            let Some(path) = args.first().and_then(|a| string_literal(a)) else {
                continue;
            };
            if path.contains("{*") {
                continue;
            }
            let handlers = args.get(1).map(String::as_str).unwrap_or_default();
            for method in METHODS.iter().chain(&["any"]) {
                let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                    !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    routes.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    routes
}

/// The source without its comments (lines whose code starts with `//`), so
/// examples in doc comments are not taken for routes.
fn code_only(source: &str) -> String {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The arguments of every call that starts with `opening` (which ends with
/// its `(`), split on the commas outside nested brackets and strings, trimmed.
fn calls(source: &str, opening: &str) -> Vec<Vec<String>> {
    source
        .match_indices(opening)
        .map(|(i, _)| arguments(&source[i + opening.len()..]))
        .collect()
}

/// The arguments up to the `)` closing an already opened call.
fn arguments(text: &str) -> Vec<String> {
    let (mut args, mut current) = (Vec::new(), String::new());
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for c in text.chars() {
        if in_string {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        args.push(current.trim().to_owned());
    }
    args
}

/// The text of a string literal that `text` starts with (no escapes expected in paths).
fn string_literal(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The identifiers in a comma-separated list.
fn words(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
}
