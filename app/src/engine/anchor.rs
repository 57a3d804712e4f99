//! The audit log anchored in the repository itself (I5): a ref on the remote,
//! `refs/envline/audit`, whose commits each vouch for the audit log's head at
//! the time (the newest event's id and hash) and carry the events since the
//! anchor before. Deleting the newest rows, or recomputing the whole chain
//! after editing a row, no longer goes unnoticed: the anchors on the remote
//! disagree with the database.
//!
//! Every push that moves a branch also moves the anchor (atomically), and a
//! refresh anchors events that moved no branch (verifications, approvals,
//! holds) with a push of the anchor alone. A remote that refuses the ref is
//! said so, once, and Envline keeps working without anchoring.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use gix::ObjectId;

use super::git::{AUDIT_REF, RefChange};
use super::{Engine, EngineError, audit};

/// Whether anchoring works with this remote.
#[derive(Debug, Default)]
pub struct Anchoring {
    /// Why the remote cannot hold the anchor, once it said so.
    unavailable: RwLock<Option<String>>,
    /// An anchor push's outcome is not known (it timed out): the clone's
    /// anchor may be behind the remote's until the next fetch, and a push
    /// leased on it would be refused, so none is made until then.
    unsure: AtomicBool,
}

impl Anchoring {
    /// Why anchoring is off, if it is.
    pub fn unavailable(&self) -> Option<String> {
        self.unavailable.read().expect("lock").clone()
    }

    /// The anchor may differ on the remote: fetch before anchoring again.
    pub fn set_unsure(&self) {
        self.unsure.store(true, Ordering::SeqCst);
    }

    /// A fetch brought the remote's anchor into the clone.
    pub fn fetched(&self) {
        self.unsure.store(false, Ordering::SeqCst);
    }

    fn disable(&self, why: String) {
        tracing::warn!(
            "the remote refuses {AUDIT_REF} ({why}): the audit log is not anchored in the repository; everything else keeps working"
        );
        *self.unavailable.write().expect("lock") = Some(why);
    }
}

/// What an anchor's `head` file says: `<id> <hash>`.
pub fn parse_head(text: &str) -> Option<(i64, String)> {
    let (id, hash) = text.trim().split_once(' ')?;
    Some((id.parse().ok()?, hash.to_owned()))
}

impl Engine {
    /// The change that anchors the audit log's current head, if anything is
    /// not anchored yet and the remote takes anchors. The anchor commit is
    /// written; no ref moves.
    pub(crate) async fn anchor_change(&self) -> Result<Option<RefChange>, EngineError> {
        if self.anchoring.unavailable().is_some() || self.anchoring.unsure.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let Some((id, hash)) = audit::head(&self.pool).await? else {
            return Ok(None);
        };
        let tip = self.git(|git| git.branch_tip(AUDIT_REF)).await?;
        let anchored = match tip {
            Some(t) => self
                .git(move |git| git.read_file(t, "head"))
                .await?
                .and_then(|h| parse_head(&h)),
            None => None,
        };
        if anchored
            .as_ref()
            .is_some_and(|(i, h)| *i == id && *h == hash)
        {
            return Ok(None);
        }
        let since = anchored.map(|(i, _)| i).unwrap_or(0);
        let lines: Vec<String> = audit::after(&self.pool, since)
            .await?
            .iter()
            .map(|e| serde_json::to_string(e).unwrap_or_default())
            .collect();
        let events = lines.join("\n") + "\n";
        let head = format!("{id} {hash}\n");
        let message = format!("envline audit anchor: events {} to {id}", since + 1);
        let new = self
            .git(move |git| git.write_anchor(tip, &head, &events, &message))
            .await?;
        Ok(Some(RefChange {
            branch: AUDIT_REF.into(),
            old: tip,
            new,
        }))
    }

    /// Moves the clone's anchor ref after a push that took it (git's push
    /// usually has: the fetch refspec maps the ref onto itself).
    pub(crate) async fn anchored(&self, change: RefChange) {
        let result = self
            .git(move |git| {
                if git.branch_tip(AUDIT_REF)? == Some(change.new) {
                    return Ok(());
                }
                git.update_refs(&[change], "envline", "envline audit anchor")
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(
                "the clone's {AUDIT_REF} was not updated ({e}); the next fetch brings it"
            );
        }
    }

    /// Notes that the remote refused the anchor ref.
    pub(crate) fn anchor_refused(&self, why: String) {
        self.anchoring.disable(why);
    }

    /// Anchors the events not anchored yet, with a push of the anchor alone
    /// (events that moved no branch: verifications, approvals, holds).
    /// The caller holds the ref lock.
    pub(crate) async fn anchor_now(&self) -> Result<(), EngineError> {
        let Some(change) = self.anchor_change().await? else {
            return Ok(());
        };
        let push = vec![change.clone()];
        match self.git(move |git| git.push(&push)).await {
            Ok(()) => {
                self.anchored(change).await;
                Ok(())
            }
            Err(EngineError::Remote {
                code: "remote_rejected",
                message,
            }) => {
                self.anchor_refused(message);
                Ok(())
            }
            Err(e) => {
                self.anchoring.set_unsure();
                Err(e)
            }
        }
    }
}

/// What the anchors say about the database's chain: problems, if any.
pub fn check_anchors(
    anchors: &[(ObjectId, String)],
    hash_of: impl Fn(i64) -> Option<String>,
    events: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (commit, head) in anchors {
        let Some((id, hash)) = parse_head(head) else {
            problems.push(format!("anchor {commit} is unreadable"));
            continue;
        };
        match hash_of(id) {
            None => problems.push(format!(
                "event {id} is anchored on the remote (anchor {}) but missing from the database ({events} events): events were deleted",
                &commit.to_string()[..10]
            )),
            Some(h) if h != hash => problems.push(format!(
                "event {id} in the database differs from what the remote's anchor {} vouches for: the log was rewritten",
                &commit.to_string()[..10]
            )),
            Some(_) => {}
        }
    }
    problems
}
