//! The audit log: filtered reads as JSON or CSV, streamed page by page (a
//! long log is never held in memory whole), and the whole-log check.

use app::engine::audit::{self, AuditFilter};
use app::model::AuditEventView;
use app::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, query};

/// Events read from the database at a time while streaming an export.
const PAGE: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/audit/verify", get(audit_verify))
}

#[derive(Deserialize)]
struct AuditQuery {
    format: Option<String>,
    environment: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Events older than this event id (the last id of the previous page).
    before: Option<i64>,
    limit: Option<i64>,
}

/// How an export writes events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

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
    if q.limit.is_some_and(|l| l < 1) {
        return Err(ApiError::bad_input("`limit` must be 1 or more"));
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
                csv_cell(&e.action),
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
