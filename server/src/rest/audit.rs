//! The audit log: filtered reads as JSON or CSV, and the chain check.

use app::engine::audit::AuditFilter;
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/audit/verify", get(audit_verify))
}

#[derive(Deserialize)]
struct AuditQuery {
    format: Option<String>,
    environment: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
}

async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    let since = match &q.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                })
                .map_err(|e| {
                    ApiError::bad_input(format!(
                        "`since` must be an RFC 3339 time like 2026-11-01T00:00:00Z: {e}"
                    ))
                })?,
        ),
        None => None,
    };
    let filter = AuditFilter {
        environment: q.environment.clone(),
        since,
        limit: q.limit,
    };
    let events = state.engine.audit_events(&filter).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({ "events": events })).into_response()),
        "csv" => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            let _ = writer.write_record([
                "id",
                "at",
                "actor",
                "action",
                "environment",
                "old",
                "new",
                "reason",
                "details",
                "hash",
            ]);
            for e in &events {
                let _ = writer.write_record([
                    e.id.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.environment.clone().unwrap_or_default(),
                    e.old.clone().unwrap_or_default(),
                    e.new.clone().unwrap_or_default(),
                    e.reason.clone(),
                    e.details.as_str().to_owned(),
                    e.hash.clone(),
                ]);
            }
            let body = writer.into_inner().unwrap_or_default();
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"envline-audit.csv\""),
            );
            Ok((headers, body).into_response())
        }
        other => Err(ApiError::bad_input(format!(
            "`format` must be json or csv, not `{other}`"
        ))),
    }
}

async fn audit_verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let check = state.engine.audit_check().await?;
    Ok(Json(check).into_response())
}
