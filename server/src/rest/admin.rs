//! People and tokens (admin role): list, add, grant and remove roles,
//! create (the token is in the answer, once) and revoke tokens.

use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Body, Caller, parse_id};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", post(add_user).get(users))
        .route("/api/v1/users/{name}/roles", post(grant))
        .route("/api/v1/users/{name}/roles/{role}", delete(remove_role))
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    roles: Vec<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    user: String,
    label: String,
}

async fn users(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let people = state.engine.people(&caller.0).await?;
    Ok(Json(json!({ "users": people })).into_response())
}

async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: NewUser = body.json()?;
    state
        .engine
        .add_person(
            &caller.0,
            &input.name,
            &input.roles,
            input.password.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": input.name.trim(), "roles": input.roles })),
    )
        .into_response())
}

async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let input: NewRole = body.json()?;
    state
        .engine
        .grant_role(&caller.0, &name, &input.role)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, role)): Path<(String, String)>,
) -> ApiResult<Response> {
    state.engine.remove_role(&caller.0, &name, &role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: NewToken = body.json()?;
    let token = state
        .engine
        .create_token(&caller.0, &input.user, &input.label)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "user": input.user, "label": input.label.trim() })),
    )
        .into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    state.engine.revoke_token(&caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
