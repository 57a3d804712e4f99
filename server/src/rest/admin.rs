//! People and tokens (admin role): list, add, grant and remove roles,
//! create (the token is in the answer, once) and revoke tokens.

use app::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::PersonView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller, parse_id};

/// People, roles and tokens, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_user, users))
        .routes(routes!(remove_user))
        .routes(routes!(set_password))
        .routes(routes!(grant))
        .routes(routes!(remove_role))
        .routes(routes!(create_token))
        .routes(routes!(revoke_token))
}

/// `POST /api/v1/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "dora", "roles": ["approver:prod-*"], "password": "correct horse battery"}))]
struct NewUser {
    /// 1 to 64 letters, digits, `-`, `_`, `.` or `@` (not `envline` or `anonymous`).
    #[schema(pattern = "^[A-Za-z0-9._@-]+$", max_length = 64)]
    name: String,
    /// `role` or `role:glob`.
    #[schema(min_items = 1)]
    roles: Vec<String>,
    /// For signing in to the pages (8 characters or more); none for a
    /// token-only user.
    #[schema(min_length = 8)]
    password: Option<String>,
}

/// `PUT /api/v1/users/{name}/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery"}))]
struct NewPassword {
    /// The new password (8 characters or more).
    #[schema(min_length = 8)]
    password: String,
}

/// `POST /api/v1/users/{name}/roles`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "approver:prod-*"}))]
struct NewRole {
    /// `role` or `role:glob`.
    #[schema(
        pattern = "^(viewer|promoter|tester|approver|incident-commander|admin)(:[A-Za-z0-9._*?-]+)?$"
    )]
    role: String,
}

/// `POST /api/v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "dora", "label": "ci-pipeline"}))]
struct NewToken {
    user: String,
    /// Where the token is used (like `ci-pipeline`).
    #[schema(pattern = "\\S", max_length = 200)]
    label: String,
}

/// The answer of `GET /api/v1/users`.
#[derive(Serialize, ToSchema)]
struct UserList {
    users: Vec<PersonView>,
}

/// The answer of `POST /api/v1/users`.
#[derive(Serialize, ToSchema)]
struct AddedUser {
    name: String,
    roles: Vec<String>,
}

/// The answer of `POST /api/v1/tokens`: the only time the token is shown.
#[derive(Serialize, ToSchema)]
struct CreatedToken {
    token: String,
    user: String,
    label: String,
}

/// People with their roles and tokens (never the tokens themselves).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "admin",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The people", body = UserList),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin", body = ErrorBody),
    ),
)]
async fn users(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let people = state.engine.people().list(&caller.0).await?;
    Ok(Json(UserList { users: people }).into_response())
}

/// Adds a person with roles (and a password to sign in with, if given).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "admin",
    request_body = NewUser,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Added", body = AddedUser),
        (status = 400, description = "The body is not a user, a role cannot be read, or the password is too short", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 409, description = "There is already a user by that name", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: NewUser = body.json()?;
    state
        .engine
        .people()
        .add_person(
            &caller.0,
            &input.name,
            &input.roles,
            input.password.as_deref(),
        )
        .await?;
    let added = AddedUser {
        name: input.name.trim().to_owned(),
        roles: input.roles,
    };
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

/// Removes a person: their roles, tokens and sessions go, their approvals of
/// requests still waiting are withdrawn, and their live streams close.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "The user's name")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is the only admin, or the caller themselves", body = ErrorBody),
    ),
)]
async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    state
        .engine
        .people()
        .remove_person(&caller.0, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sets (resets) a user's password: every session of theirs ends.
#[utoipa::path(
    put,
    path = "/api/v1/users/{name}/password",
    tag = "admin",
    params(("name" = String, Path, description = "The user's name")),
    request_body = NewPassword,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Set; the user's sessions are ended"),
        (status = 400, description = "The body is not a password, or it is too short", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let input: NewPassword = body.json()?;
    state
        .engine
        .people()
        .reset_password(&caller.0, &name, &input.password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Grants a role (`ROLE` or `ROLE:GLOB`) to a user.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/roles",
    tag = "admin",
    params(("name" = String, Path, description = "The user's name")),
    request_body = NewRole,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Granted"),
        (status = 400, description = "The body is not a role, or the role cannot be read", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let input: NewRole = body.json()?;
    state
        .engine
        .people()
        .grant_role(&caller.0, &name, &input.role)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Takes a role away from a user.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}/roles/{role}",
    tag = "admin",
    params(
        ("name" = String, Path, description = "The user's name"),
        ("role" = String, Path, pattern = "^(viewer|promoter|tester|approver|incident-commander|admin)(:[A-Za-z0-9._*?-]+)?$", description = "`ROLE` or `ROLE:GLOB`, as granted"),
    ),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Taken away"),
        (status = 400, description = "The role cannot be read", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is the only admin", body = ErrorBody),
    ),
)]
async fn remove_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, role)): Path<(String, String)>,
) -> ApiResult<Response> {
    state
        .engine
        .people()
        .remove_role(&caller.0, &name, &role)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Creates an API token for a user; the answer holds it, this once.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "admin",
    request_body = NewToken,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 400, description = "The body is not a token request, or the label is empty", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: NewToken = body.json()?;
    let token = state
        .engine
        .people()
        .create_token(&caller.0, &input.user, &input.label)
        .await?;
    let created = CreatedToken {
        token,
        label: input.label.trim().to_owned(),
        user: input.user,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a token at once.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "admin",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The token's id (as listed, not the token)")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "The token is already revoked", body = ErrorBody),
    ),
)]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    state.engine.people().revoke_token(&caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
