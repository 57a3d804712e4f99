//! The audit log (I5) and its table: appending events in the caller's
//! transaction, reading them back, and the hash chain. Each event's hash
//! covers its canonical content and the hash of the event before, so editing
//! or deleting any row breaks every hash after it.

use envline_api::{AuditAction, AuditEventView, JsonText};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{self, Tx};
pub use crate::store::{
    AuditFilter, RefMove, actions, after, all_events as all, audit_head as head, events_by_id,
    events_page, moves_of, parse_time,
};

/// The hash the first event chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append: everything but its id and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub actor: String,
    pub action: AuditAction,
    pub environment: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub details: serde_json::Value,
}

pub use envline_api::ChainCheck;

fn event_hash(
    prev_hash: &str,
    id: i64,
    at: &str,
    draft_fields: (
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        &str,
        &str,
    ),
) -> String {
    let (actor, action, environment, old, new, reason, details) = draft_fields;
    // A canonical JSON array: field order and escaping are fixed.
    let canonical = serde_json::json!([
        prev_hash,
        id,
        at,
        actor,
        action,
        environment,
        old,
        new,
        reason,
        details
    ])
    .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Appends events in the caller's transaction, chaining each to the last,
/// and queues their notifications in the same transaction.
pub async fn append(tx: &mut Tx<'_>, drafts: &[AuditDraft]) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(drafts.len());
    if drafts.is_empty() {
        return Ok(ids);
    }
    let last = store::chain_head(tx).await?;
    let (mut prev_id, mut prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
    for draft in drafts {
        let id = prev_id + 1;
        let at = store::now();
        let details = draft.details.to_string();
        let hash = event_hash(
            &prev_hash,
            id,
            &at,
            (
                &draft.actor,
                draft.action.as_str(),
                draft.environment.as_deref(),
                draft.old.as_deref(),
                draft.new.as_deref(),
                &draft.reason,
                &details,
            ),
        );
        store::insert_event(
            tx,
            &AuditEventView {
                id,
                at: at.clone(),
                actor: draft.actor.clone(),
                action: draft.action,
                environment: draft.environment.clone(),
                old: draft.old.clone(),
                new: draft.new.clone(),
                reason: draft.reason.clone(),
                details: JsonText(details),
                prev_hash: prev_hash.clone(),
                hash: hash.clone(),
            },
        )
        .await?;
        if let Some(event) = draft.action.notifies() {
            store::outbox::enqueue(tx, id, event, &at).await?;
        }
        ids.push(id);
        (prev_id, prev_hash) = (id, hash);
    }
    Ok(ids)
}

/// Recomputes every hash and reports the first event that does not match.
/// Pure CPU work over the rows: callers run it off the async threads.
pub fn check_chain(rows: &[AuditEventView]) -> ChainCheck {
    let mut prev = GENESIS.to_string();
    for (expected_id, row) in (1_i64..).zip(rows.iter()) {
        let recomputed = event_hash(
            &prev,
            row.id,
            &row.at,
            (
                &row.actor,
                row.action.as_str(),
                row.environment.as_deref(),
                row.old.as_deref(),
                row.new.as_deref(),
                &row.reason,
                row.details.as_str(),
            ),
        );
        let problem = if row.id != expected_id {
            Some(format!(
                "event {expected_id} is missing (next is {})",
                row.id
            ))
        } else if row.prev_hash != prev {
            Some(format!(
                "event {} does not chain to the event before it",
                row.id
            ))
        } else if row.hash != recomputed {
            Some(format!("event {} was changed after it was written", row.id))
        } else {
            None
        };
        if let Some(message) = problem {
            return ChainCheck {
                intact: false,
                events: rows.len() as i64,
                first_broken: Some(expected_id.min(row.id)),
                message,
                problems: Vec::new(),
                anchor: None,
            };
        }
        prev = row.hash.clone();
    }
    ChainCheck {
        intact: true,
        events: rows.len() as i64,
        first_broken: None,
        message: format!("all {} events are intact", rows.len()),
        problems: Vec::new(),
        anchor: None,
    }
}
