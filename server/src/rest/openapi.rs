//! The OpenAPI 3.1 description of the API, served at
//! `GET /api/v1/openapi.json`. It is generated, not written: each handler's
//! `#[utoipa::path]` says its method, path, input and answers, the model
//! types derive their schemas, and every module registers its handlers with
//! `routes!()`, which routes and documents them in one step.

use std::sync::{Arc, OnceLock};

use app::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use envline_api::ROLE_PATTERN;
use envline_engine::pipeline::Pipeline;
use envline_engine::session::SESSION_COOKIE;
use serde_json::{Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the document says about the API as a whole; the paths and schemas
/// are added by the modules' routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Envline",
        version = env!("CARGO_PKG_VERSION"),
        description = "Branch-per-environment, fast-forward-only GitOps promotions. \
Errors are `{\"error\": {code, message, details}}` (`ErrorBody`); nothing moves when one is returned. \
Callers send `Authorization: Bearer <token>` (`envline token create --user NAME`) or, from Envline's own pages, \
the session cookie; reads need neither when `auth.anonymous_read` is on.",
    ),
    servers((url = "/", description = "The Envline server this document was loaded from")),
    modifiers(&SecuritySchemes),
    tags(
        (name = "environments", description = "Where every environment stands, and the root's line"),
        (name = "promotions", description = "Promotions, their previews, and approvers' decisions"),
        (name = "verifications", description = "Test results of exactly one commit in one environment"),
        (name = "resets", description = "Rollbacks, realignments and out-of-order cherry-picks"),
        (name = "holds", description = "Holds and freezes on environments"),
        (name = "hotfixes", description = "Hotfix mode: plan, start, resolve, merge back"),
        (name = "audit", description = "The audit log and its integrity check"),
        (name = "insights", description = "Delivery figures per environment, from the audit log"),
        (name = "admin", description = "People, roles and API tokens (admin role); who the caller is"),
        (name = "system", description = "Liveness, metrics, fetching the remote, change notices"),
        (name = "webhooks", description = "Pushes announced by GitHub or GitLab, signed with `[webhooks] secret`"),
        (name = "openapi", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Declares the ways to be a caller, which the operations' `security` lists
/// name: `bearer` (an API token) and `session` (a signed-in browser); and the
/// git hosts' proofs that a webhook delivery is theirs: `github_signature`
/// and `gitlab_token`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token: `envline token create --user NAME` or `POST /api/v1/tokens`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The cookie signing in sets; changes sent with it must come from Envline's own pages",
            ))),
        );
        components.add_security_scheme(
            "github_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Hub-Signature-256",
                "`sha256=` and the hex HMAC-SHA256 of the raw body keyed with `[webhooks] secret` (GitHub computes it)",
            ))),
        );
        components.add_security_scheme(
            "gitlab_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Gitlab-Token",
                "The webhook's secret token, equal to `[webhooks] secret`",
            ))),
        );
    }
}

/// The document as generated from the handlers, which the served one
/// completes with what only the configuration knows.
#[derive(Clone)]
pub struct Document {
    generated: Arc<Value>,
    /// The served document, completed once: the configured pipeline does
    /// not change while the server runs.
    served: Arc<OnceLock<Bytes>>,
}

impl Document {
    /// Keeps the document the routers collected.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Document {
        Document {
            generated: Arc::new(
                serde_json::to_value(openapi).expect("an OpenAPI document always serializes"),
            ),
            served: Arc::default(),
        }
    }

    /// The served document, completed at the first request.
    fn served(&self, pipeline: &Pipeline) -> Bytes {
        self.served
            .get_or_init(|| self.for_pipeline(pipeline))
            .clone()
    }

    /// The document for this server: where a request names an environment,
    /// the schema lists the configured ones (a promotion's `from` also the
    /// root branch; hotfix mode's `from` and `keep` the protected ones), so
    /// a client, or a generator of requests, knows exactly which names are
    /// taken.
    fn for_pipeline(&self, pipeline: &Pipeline) -> Bytes {
        let mut doc = (*self.generated).clone();
        let names: Vec<Value> = pipeline.names().into_iter().map(Value::from).collect();
        let mut sources = names.clone();
        sources.push(Value::from(pipeline.root()));
        let protected: Vec<Value> = pipeline
            .environments()
            .iter()
            .filter(|e| e.protected)
            .map(|e| Value::from(e.name.as_str()))
            .collect();
        let schemas = &mut doc["components"]["schemas"];
        for (schema, property) in [
            ("PromoteInput", "environment"),
            ("VerifyInput", "environment"),
            ("RealignInput", "environment"),
            ("CherryPickInput", "environment"),
        ] {
            name_the_choices(&mut schemas[schema]["properties"][property], &names);
        }
        for schema in ["PromoteInput", "RollbackInput", "HoldInput"] {
            name_the_choices(
                &mut schemas[schema]["properties"]["environments"]["items"],
                &names,
            );
        }
        name_the_choices(&mut schemas["PromoteInput"]["properties"]["from"], &sources);
        for schema in ["HotfixInput", "PlanInput"] {
            name_the_choices(&mut schemas[schema]["properties"]["from"], &protected);
        }
        name_the_choices(
            &mut schemas["HotfixInput"]["properties"]["keep"]["items"],
            &protected,
        );
        // One environment or several, never neither nor both.
        schemas["PromoteInput"]["oneOf"] = json!([
            {
                "required": ["environment"],
                "properties": { "environment": { "type": "string" }, "environments": { "type": "null" } },
            },
            {
                "required": ["environments"],
                "properties": { "environments": { "type": "array" }, "environment": { "type": "null" } },
            },
        ]);
        schemas["NewUser"]["properties"]["roles"]["items"]["pattern"] = Value::from(ROLE_PATTERN);
        link_creators_to_users(&mut doc);
        Bytes::from(serde_json::to_vec(&doc).expect("JSON always serializes"))
    }
}

/// The operations that create something, linked to those that take its id
/// (OpenAPI links), so a client, or a generator of request sequences,
/// follows a promotion to its approvals, a hold to its release, a person to
/// their password and roles, an incident to its resolution.
fn link_creators_to_users(doc: &mut Value) {
    const LINKS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
        // (created by, method, status, link, used by, method, parameter = value)
        (
            "/api/v1/promotions",
            "post",
            "201",
            "decide",
            "/api/v1/promotions/{id}/approvals",
            "post",
            "id=$response.body#/id",
        ),
        (
            "/api/v1/promotions",
            "post",
            "201",
            "read",
            "/api/v1/promotions/{id}",
            "get",
            "id=$response.body#/id",
        ),
        (
            "/api/v1/holds",
            "post",
            "201",
            "release",
            "/api/v1/holds/{id}",
            "delete",
            "id=$response.body#/holds/0/id",
        ),
        (
            "/api/v1/users",
            "post",
            "201",
            "set_password",
            "/api/v1/users/{name}/password",
            "put",
            "name=$response.body#/name",
        ),
        (
            "/api/v1/users",
            "post",
            "201",
            "grant_role",
            "/api/v1/users/{name}/roles",
            "post",
            "name=$response.body#/name",
        ),
        (
            "/api/v1/users",
            "post",
            "201",
            "remove",
            "/api/v1/users/{name}",
            "delete",
            "name=$response.body#/name",
        ),
        (
            "/api/v1/hotfixes",
            "post",
            "201",
            "resolve",
            "/api/v1/hotfixes/{incident}/resolve",
            "post",
            "incident=$response.body#/incident",
        ),
        (
            "/api/v1/hotfixes",
            "post",
            "201",
            "merge_back",
            "/api/v1/hotfixes/{incident}/merge-back",
            "post",
            "incident=$response.body#/incident",
        ),
    ];
    for (from, method, status, name, to, to_method, parameter) in LINKS {
        let Some(operation_id) = doc["paths"][*to][*to_method]["operationId"].as_str() else {
            continue;
        };
        let operation_id = operation_id.to_owned();
        let (key, value) = parameter.split_once('=').expect("name=value");
        let response = &mut doc["paths"][*from][*method]["responses"][*status];
        if response.is_object() {
            response["links"][*name] = json!({
                "operationId": operation_id,
                "parameters": { key: value },
            });
        }
    }
}

/// Makes a string schema (or a nullable one) one of `choices`.
fn name_the_choices(schema: &mut Value, choices: &[Value]) {
    let Some(fields) = schema.as_object_mut() else {
        return;
    };
    let mut allowed = choices.to_vec();
    let nullable = match fields.get("type") {
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => false,
    };
    if nullable {
        allowed.push(Value::Null);
    }
    fields.insert("enum".into(), Value::Array(allowed));
}

/// The route serving the document (documented like every other).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document: the API's paths, inputs, answers and errors.
///
/// Load it in any OpenAPI viewer or client generator.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
async fn openapi_json(
    State(state): State<AppState>,
    Extension(document): Extension<Document>,
) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.served(&state.engine.config.pipeline),
    )
        .into_response()
}
