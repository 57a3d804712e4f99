//! The OpenAPI 3.1 description of the API, served at
//! `GET /api/v1/openapi.json`. It is generated, not written: each handler's
//! `#[utoipa::path]` says its method, path, input and answers, the model
//! types derive their schemas, and every module registers its handlers with
//! `routes!()`, which routes and documents them in one step.

use app::state::AppState;
use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use envline_engine::session::SESSION_COOKIE;
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

/// The document as served: serialized once, when the router is built.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    /// Serializes the document the routers collected.
    pub fn new(openapi: &utoipa::openapi::OpenApi) -> Document {
        Document(Bytes::from(
            openapi
                .to_json()
                .expect("an OpenAPI document always serializes"),
        ))
    }
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
async fn openapi_json(Extension(document): Extension<Document>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0,
    )
        .into_response()
}
