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
//! asked again with back-off (a refusal can be a passing "cannot lock
//! ref"); one that keeps refusing is reported as a standing problem.
//! Envline remembers the last anchor it pushed: a remote anchor that does
//! not descend from it was rewound, is reported, and is never built upon.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::Pool;
use envline_api::ErrorCode;
use gix::ObjectId;

use super::git::{AUDIT_REF, GitRepo, RefChange};
use super::{Engine, EngineError, audit, store};

/// Refusals in a row after which the remote's refusal is a standing problem.
const STANDING_AFTER: u32 = 3;
/// The first wait after a refusal; it doubles up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long the anchorer waits for the changes of a burst to end.
const ANCHOR_QUIET: Duration = Duration::from_millis(500);
/// The longest a change waits for its anchor while changes keep coming.
const ANCHOR_AT_MOST_AFTER: Duration = Duration::from_secs(5);

/// Refusals of the anchor ref in a row.
#[derive(Debug)]
struct Refusals {
    count: u32,
    since: String,
    last: String,
    retry_at: Instant,
}

/// Whether anchoring works with this remote, and what stops it.
#[derive(Debug, Default)]
pub struct Anchoring {
    /// The remote refused the anchor ref: when to ask again, and why.
    refusals: Mutex<Option<Refusals>>,
    /// The remote's anchor does not descend from the last one Envline
    /// pushed: what was found, until the remote's anchor descends again.
    rewound: RwLock<Option<String>>,
    /// An anchor push's outcome is not known (it timed out): the clone's
    /// anchor may be behind the remote's until the next fetch, and a push
    /// leased on it would be refused, so none is made until then.
    unsure: AtomicBool,
    /// Wakes the anchorer: a change moved branches and recorded its events.
    wanted: tokio::sync::Notify,
}

impl Anchoring {
    /// Why anchoring is not happening now, if it is not: the remote refused
    /// the ref (once, or as a standing problem), or its anchor was rewound.
    pub fn unavailable(&self) -> Option<String> {
        if let Some(r) = self.rewound.read().expect("lock").clone() {
            return Some(r);
        }
        let refusals = self.refusals.lock().expect("lock");
        refusals.as_ref().map(|r| {
            let next = r.retry_at.saturating_duration_since(Instant::now()).as_secs();
            if r.count >= STANDING_AFTER {
                format!(
                    "the remote refuses {AUDIT_REF} ({}): a standing problem, refused {} times in a row since {}; asked again in {next} s. Allow the ref on the remote (for example in its receive hooks)",
                    r.last, r.count, r.since
                )
            } else {
                format!(
                    "the remote refuses {AUDIT_REF} ({}); asked again in {next} s",
                    r.last
                )
            }
        })
    }

    /// A problem people must act on (rewound, or refused for good), for the
    /// Admin page; a single refusal being retried is not one yet.
    pub fn problem(&self) -> Option<String> {
        if let Some(r) = self.rewound.read().expect("lock").clone() {
            return Some(r);
        }
        let standing = self
            .refusals
            .lock()
            .expect("lock")
            .as_ref()
            .is_some_and(|r| r.count >= STANDING_AFTER);
        if standing { self.unavailable() } else { None }
    }

    /// The anchor may differ on the remote: fetch before anchoring again.
    pub fn set_unsure(&self) {
        self.unsure.store(true, Ordering::SeqCst);
    }

    /// A fetch brought the remote's anchor into the clone.
    pub fn fetched(&self) {
        self.unsure.store(false, Ordering::SeqCst);
    }

    /// Whether an anchor may be attempted now.
    fn may_try(&self) -> bool {
        !self.unsure.load(Ordering::SeqCst)
            && self
                .refusals
                .lock()
                .expect("lock")
                .as_ref()
                .is_none_or(|r| Instant::now() >= r.retry_at)
    }

    /// The remote refused the anchor: wait longer each time, never for good.
    fn refused(&self, why: String) {
        let mut refusals = self.refusals.lock().expect("lock");
        let count = refusals.as_ref().map_or(0, |r| r.count) + 1;
        let wait =
            (FIRST_WAIT * 2u32.saturating_pow(count.saturating_sub(1).min(20))).min(LONGEST_WAIT);
        let since = refusals
            .as_ref()
            .map(|r| r.since.clone())
            .unwrap_or_else(store::now);
        tracing::warn!(
            "the remote refused {AUDIT_REF} ({why}); the audit log is anchored again in {} s; everything else keeps working",
            wait.as_secs()
        );
        *refusals = Some(Refusals {
            count,
            since,
            last: why,
            retry_at: Instant::now() + wait,
        });
    }

    /// An anchor landed: any run of refusals is over.
    fn landed(&self) {
        *self.refusals.lock().expect("lock") = None;
    }

    fn set_rewound(&self, problem: Option<String>) {
        if let Some(p) = &problem
            && self.rewound.read().expect("lock").as_ref() != Some(p)
        {
            tracing::error!("{p}");
        }
        *self.rewound.write().expect("lock") = problem;
    }
}

/// The last anchor Envline pushed: its commit and the event it vouches for.
pub async fn last_pushed(pool: &Pool) -> Result<Option<(ObjectId, i64)>, sqlx::Error> {
    let row = store::anchors::last_pushed(pool).await?;
    Ok(row.and_then(|(c, e)| Some((ObjectId::from_hex(c.as_bytes()).ok()?, e))))
}

/// I5: whether the remote's anchor `tip` keeps the last anchor Envline
/// pushed; the problem, with both ids, when it does not.
pub fn rewound_problem(
    git: &GitRepo,
    tip: Option<ObjectId>,
    last: Option<(ObjectId, i64)>,
) -> Option<String> {
    let (last, event) = last?;
    let short = |id: ObjectId| id.to_string()[..10].to_owned();
    let restore = format!(
        "restore it with `git push --force origin {last}:{AUDIT_REF}` from a clone that has it (Envline's clone in data_dir does)"
    );
    match tip {
        None => Some(format!(
            "the remote has no {AUDIT_REF}, but Envline pushed anchor {} (vouching for event {event}): the anchor was deleted; {restore}",
            short(last)
        )),
        Some(tip) if tip == last => None,
        Some(tip) => match git.is_ancestor(last, tip) {
            Ok(true) => None,
            _ => Some(format!(
                "the remote's anchor {} does not descend from {}, the last anchor Envline pushed (vouching for event {event}): the anchor was rewound; Envline does not anchor on top of it; {restore}",
                short(tip),
                short(last)
            )),
        },
    }
}

/// The digest an anchor keeps of an intent's payload (SHA-256, hex).
pub fn intent_digest(payload: &str) -> String {
    super::auth::digest(payload)
}

/// What an anchor's `intent` file says: a line `<intent id> <payload
/// digest>` per change whose events the anchor carries.
pub fn parse_intents(text: &str) -> Vec<(i64, String)> {
    text.lines().filter_map(parse_head).collect()
}

/// The intents the remote's anchors vouch for, against the database: a
/// journal entry deleted or edited, or a change recorded as done whose
/// events are missing from the log, shows.
pub fn check_intents(
    anchored: &[(ObjectId, i64, String)],
    intents: &std::collections::HashMap<i64, (String, String)>,
    events_of_intent: &std::collections::HashMap<i64, usize>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (commit, id, digest) in anchored {
        let short = &commit.to_string()[..10];
        match intents.get(id) {
            None => problems.push(format!(
                "change {id} is anchored on the remote (anchor {short}) but its journal entry is missing from the database: it was deleted"
            )),
            Some((payload, _)) if intent_digest(payload) != *digest => problems.push(format!(
                "change {id} in the database differs from what the remote's anchor {short} vouches for: its journal entry was edited"
            )),
            Some((_, state)) if state == "done" && !events_of_intent.contains_key(id) => {
                problems.push(format!(
                    "change {id} is done and anchored (anchor {short}), but the audit log has none of its events: they were deleted"
                ))
            }
            Some(_) => {}
        }
    }
    problems
}

/// What an anchor's `head` file says: `<id> <hash>`.
pub fn parse_head(text: &str) -> Option<(i64, String)> {
    let (id, hash) = text.trim().split_once(' ')?;
    Some((id.parse().ok()?, hash.to_owned()))
}

impl Engine {
    /// The change that anchors the audit log's current head, if anything is
    /// not anchored yet and the remote takes anchors. The anchor commit is
    /// written; no ref moves. It also vouches for the journal entries of the
    /// changes whose events it carries, so deleting or editing those shows.
    pub(crate) async fn anchor_change(&self) -> Result<Option<RefChange>, EngineError> {
        if !self.anchoring.may_try() {
            return Ok(None);
        }
        let Some((id, hash)) = audit::head(&self.pool).await? else {
            return Ok(None);
        };
        let tip = self.git(|git| git.branch_tip(AUDIT_REF)).await?;
        // Never on top of an anchor that lost what Envline pushed (I5).
        let last = last_pushed(&self.pool).await?;
        let rewound = self
            .git(move |git| Ok(rewound_problem(git, tip, last)))
            .await?;
        let stop = rewound.is_some();
        self.anchoring.set_rewound(rewound);
        if stop {
            return Ok(None);
        }
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
        // Ids and hashes only, unless `[audit] anchor_events` asks for the
        // whole events: whoever can clone the repository reads the anchor.
        let whole = self.config.audit.anchor_events;
        // Only up to the head this anchor vouches for: changes recorded
        // meanwhile (they run beside the anchorer) go in the next one.
        let mut events = audit::after(&self.pool, since).await?;
        events.retain(|e| e.id <= id);
        let mut changes: Vec<i64> = events
            .iter()
            .filter(|e| e.details.as_str().contains("\"intent\""))
            .filter_map(|e| e.details.value().get("intent").and_then(|i| i.as_i64()))
            .collect();
        changes.sort_unstable();
        changes.dedup();
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                if whole {
                    serde_json::to_string(e).unwrap_or_default()
                } else {
                    serde_json::json!({ "id": e.id, "prev_hash": e.prev_hash, "hash": e.hash })
                        .to_string()
                }
            })
            .collect();
        let events = lines.join("\n") + "\n";
        let head = format!("{id} {hash}\n");
        let mut message = if since < id {
            format!("envline audit anchor: events {} to {id}", since + 1)
        } else {
            format!("envline audit anchor: events up to {id}")
        };
        let journal: String = store::intent_payloads(&self.pool, &changes)
            .await?
            .iter()
            .map(|(intent, payload)| format!("{intent} {}\n", intent_digest(payload)))
            .collect();
        if !changes.is_empty() {
            let listed: Vec<String> = changes.iter().map(i64::to_string).collect();
            message.push_str(&format!(", changes {}", listed.join(" ")));
        }
        let new = self
            .git(move |git| {
                let mut files = vec![("head", head.as_str()), ("events.jsonl", events.as_str())];
                if !journal.is_empty() {
                    files.push(("intent", journal.as_str()));
                }
                git.write_anchor(tip, &files, &message)
            })
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
        self.anchoring.landed();
        let new = change.new;
        let result = self
            .git(move |git| {
                if git.branch_tip(AUDIT_REF)? != Some(change.new) {
                    git.update_refs(&[change], "envline", "envline audit anchor")?;
                }
                Ok(git.read_file(new, "head")?.and_then(|h| parse_head(&h)))
            })
            .await;
        match result {
            // Remembered, so a rewound remote anchor is noticed.
            Ok(Some((event, _))) => {
                let kept =
                    store::anchors::remember_pushed(&self.pool, &new.to_string(), event).await;
                if let Err(e) = kept {
                    tracing::warn!("the pushed anchor {new} was not remembered: {e}");
                }
            }
            Ok(None) => tracing::warn!("the pushed anchor {new} has no readable head"),
            Err(e) => tracing::warn!(
                "the clone's {AUDIT_REF} was not updated ({e}); the next fetch brings it"
            ),
        }
    }

    /// Notes that the remote refused the anchor ref: asked again later.
    pub(crate) fn anchor_refused(&self, why: String) {
        self.anchoring.refused(why);
    }

    /// What keeps the audit log from being anchored, for the Admin page.
    pub fn anchor_problem(&self) -> Option<String> {
        self.anchoring.problem()
    }

    /// Asks for an anchor of the events just recorded (a change moved
    /// branches): [`Engine::run_anchorer`] pushes it.
    pub(crate) fn anchor_soon(&self) {
        self.anchoring.wanted.notify_one();
    }

    /// Anchors the changes branch moves record, in a push of the anchor
    /// alone that follows theirs: once no change came for [`ANCHOR_QUIET`]
    /// (a burst of promotions gets one anchor), and at most
    /// [`ANCHOR_AT_MOST_AFTER`] after the first one waiting. The branch
    /// push itself carries no new objects, so a promotion costs what `git
    /// push` costs. Until its anchor lands, a change is still vouched for
    /// by the remote's branches (I5: a branch at a commit the log does not
    /// explain is an out-of-band move), and a refresh anchors what is left.
    /// `envline serve` runs it; it runs until the process ends.
    pub async fn run_anchorer(self: std::sync::Arc<Self>) {
        loop {
            self.anchoring.wanted.notified().await;
            let first = Instant::now();
            loop {
                tokio::select! {
                    _ = self.anchoring.wanted.notified() => {
                        if first.elapsed() >= ANCHOR_AT_MOST_AFTER {
                            break;
                        }
                    }
                    _ = tokio::time::sleep(ANCHOR_QUIET) => break,
                }
            }
            let anchored = match self.lock_scope(crate::cluster::RefScope::anchor()).await {
                Ok(_refs) => self.anchor_now().await,
                Err(e) => Err(e),
            };
            if let Err(e) = anchored {
                tracing::warn!("the audit log could not be anchored on the remote: {e}");
            }
        }
    }

    /// Anchors the events not anchored yet, with a push of the anchor alone.
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
                code: ErrorCode::RemoteRejected,
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
