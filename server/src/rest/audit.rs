//! The audit log: filtered reads as JSON or CSV, streamed page by page (a
//! long log is never held in memory whole), and the whole-log check.

use app::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use envline_api::{AuditEventView, AuditEvents, ChainCheck};
use envline_engine::audit::{self, AuditFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Caller, query};

/// The largest integer a JSON number carries exactly (2^53 - 1): the
/// largest id or count the API takes.
const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// Events read from the database at a time while streaming an export.
const PAGE: i64 = 500;

/// The audit log and its check, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_log))
        .routes(routes!(audit_verify))
}

/// Which events to export, and how.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// `json` (the default) or `csv`.
    #[param(value_type = Option<ExportFormat>, inline)]
    format: Option<String>,
    /// Only events about this environment.
    environment: Option<String>,
    /// Only events by this user.
    actor: Option<String>,
    /// Only events of this action (`promote`, `hold`, …).
    action: Option<String>,
    /// Only events at or after this time (RFC 3339; a UTC date or a time
    /// without an offset is read as UTC).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only events before this time (RFC 3339; a UTC date or a time without
    /// an offset is read as UTC).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Events older than this event id (the last id of the previous page).
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    before: Option<i64>,
    /// At most this many events, newest first.
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    limit: Option<i64>,
}

/// How the log is exported.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(
    dead_code,
    reason = "describes the `format` parameter; the handler reads it as text"
)]
enum ExportFormat {
    Json,
    Csv,
}

/// How an export writes events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// The audit log, newest first, filtered, as JSON or CSV, streamed.
///
/// CSV cells that a spreadsheet would run are prefixed with `'`.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The events", content(
            (AuditEvents = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An unknown `format`, a `limit` below 1, or a time that cannot be read", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    let format = match q.format.as_deref().unwrap_or("json") {
        "json" => Format::Json,
        "csv" => Format::Csv,
        other => {
            return Err(ApiError::bad_input(format!(
                "`format` must be json or csv, not `{other}`"
            )));
        }
    };
    for (field, value) in [("limit", q.limit), ("before", q.before)] {
        if value.is_some_and(|v| !(1..=MAX_SAFE_INTEGER).contains(&v)) {
            return Err(ApiError::bad_input(format!(
                "`{field}` must be between 1 and {MAX_SAFE_INTEGER}"
            )));
        }
    }
    for (field, value) in [("since", &q.since), ("until", &q.until)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ApiError::bad_input(format!(
                "`{field}` is empty: give a time (RFC 3339, like 2026-11-01T09:30:00Z) or leave it out"
            )));
        }
    }
    let filter = AuditFilter {
        limit: q.limit,
        ..AuditFilter::given(q.environment, q.actor, q.action, q.since, q.until)
            .map_err(ApiError::bad_input)?
    };
    let pool = state.engine.pool.clone();
    // State: (events still allowed, the id to read below, first chunk written, done).
    let start = (filter.limit.unwrap_or(i64::MAX), q.before, false, false);
    let stream = futures::stream::unfold(start, move |(left, before, opened, done)| {
        let (pool, filter) = (pool.clone(), filter.clone());
        async move {
            if done {
                return None;
            }
            let mut out = Vec::new();
            if !opened {
                out.extend_from_slice(match format {
                    Format::Json => b"{\"events\":[".as_slice(),
                    Format::Csv => {
                        b"id,at,actor,action,environment,old,new,reason,details,hash\n".as_slice()
                    }
                });
            }
            let rows = if left > 0 {
                match audit::events_page(&pool, &filter, before, left.min(PAGE)).await {
                    Ok(rows) => rows,
                    Err(e) => return Some((Err(std::io::Error::other(e)), (0, None, true, true))),
                }
            } else {
                Vec::new()
            };
            let last = rows.len() < left.min(PAGE) as usize || rows.is_empty();
            for (i, e) in rows.iter().enumerate() {
                write_event(&mut out, format, e, opened || i > 0);
            }
            if last && format == Format::Json {
                out.extend_from_slice(b"]}");
            }
            let next_before = rows.last().map(|e| e.id).or(before);
            let left = left - rows.len() as i64;
            Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(out)),
                (left, next_before, true, last),
            ))
        }
    });
    let (content_type, disposition) = match format {
        Format::Json => ("application/json", None),
        Format::Csv => (
            "text/csv; charset=utf-8",
            Some("attachment; filename=\"envline-audit.csv\""),
        ),
    };
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(d) = disposition {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(d));
    }
    Ok(response)
}

/// Appends one event: a JSON array element (after a comma when not the
/// first), or a CSV row.
fn write_event(out: &mut Vec<u8>, format: Format, e: &AuditEventView, after_another: bool) {
    match format {
        Format::Json => {
            if after_another {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut *out, e);
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            let _ = writer.write_record([
                e.id.to_string(),
                csv_cell(&e.at),
                csv_cell(&e.actor),
                csv_cell(e.action.as_str()),
                csv_cell(e.environment.as_deref().unwrap_or_default()),
                csv_cell(e.old.as_deref().unwrap_or_default()),
                csv_cell(e.new.as_deref().unwrap_or_default()),
                csv_cell(&e.reason),
                csv_cell(e.details.as_str()),
                csv_cell(&e.hash),
            ]);
            let _ = writer.flush();
        }
    }
}

/// A cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`
/// (or a tab or carriage return) is prefixed with `'`.
fn csv_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Checks the hash chain, the remote's anchors, the branches and the
/// evidence rows (`envline audit verify` does too).
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The check, intact or not", body = ChainCheck),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn audit_verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let check = state.engine.audit_check().await?;
    Ok(Json(check).into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn spreadsheet_formulas_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("weekly release"), "weekly release");
    }
}
