//! Types shared by the server, the REST API and the browser. Plain data:
//! nothing here needs git or SQL, so it compiles to wasm too.

use serde::{Deserialize, Serialize};

/// A commit as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitView {
    pub id: String,
    pub short: String,
    pub subject: String,
    pub author: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
}

/// The latest verification of an environment's head in that environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationView {
    pub environment: String,
    pub commit: String,
    /// `passed`, `failed` or `pending`.
    pub status: String,
    pub url: Option<String>,
    pub summary: Option<String>,
    pub recorded_by: String,
    pub at: String,
}

/// A hold or freeze on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    pub id: i64,
    pub environment: String,
    /// `promotion` blocks every promotion; `auto_promotion` only automatic ones.
    pub kind: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
}

/// One approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    pub comment: String,
    pub at: String,
}

/// A promotion (or out-of-order cherry-pick) and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionView {
    pub id: i64,
    /// `promote` or `cherry_pick`.
    pub kind: String,
    pub environment: String,
    pub source: String,
    pub from_commit: Option<String>,
    pub to_commit: String,
    pub requested_by: String,
    pub reason: String,
    pub required_approvals: u32,
    /// `done`, `awaiting_approval`, `rejected`, `failed`, `cancelled`.
    pub state: String,
    pub state_reason: Option<String>,
    /// The environment's head after the promotion (differs from `to_commit` for a cherry-pick).
    pub result_commit: Option<String>,
    pub approvals: Vec<ApprovalView>,
    pub created_at: String,
    pub updated_at: String,
}

/// One environment (or the root branch) on the pipeline page and in `GET /api/v1/environments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentView {
    pub name: String,
    pub branch: String,
    /// Where its commits come from; `None` for the root branch.
    pub from: Option<String>,
    pub requires: Vec<String>,
    pub approvals: u32,
    pub protected: bool,
    pub auto_promote: bool,
    /// 0 for the root branch, 1 for environments it feeds, and so on.
    pub stage: usize,
    pub is_root: bool,
    /// `None` when the branch does not exist.
    pub head: Option<CommitView>,
    /// Position on the root's first-parent line (0 = first commit).
    pub position: Option<usize>,
    /// I1: the head is on the root's line.
    pub on_line: bool,
    pub behind_from: Option<usize>,
    pub ahead_of_from: Option<usize>,
    pub behind_root: Option<usize>,
    pub verification: Option<VerificationView>,
    pub holds: Vec<HoldView>,
    pub open_request: Option<PromotionView>,
}

/// What the pipeline page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineView {
    pub root: String,
    pub environments: Vec<EnvironmentView>,
    /// Merge commits on the root's first-parent line (the line should be straight).
    pub merge_commits: Vec<String>,
    /// When the remote was last fetched (RFC 3339), if ever.
    pub refreshed_at: Option<String>,
    /// The last refresh's error, if it failed.
    pub refresh_error: Option<String>,
}

/// One commit on the line, for `GET /api/v1/timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    #[serde(flatten)]
    pub commit: CommitView,
    pub position: usize,
    /// Environments whose head is this commit.
    pub environments: Vec<String>,
    /// Environments this commit's changes affect (S2).
    pub affects: Vec<String>,
    pub verifications: Vec<VerificationView>,
    pub is_merge: bool,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEventView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub environment: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub details: serde_json::Value,
    pub hash: String,
}

/// Turns an age in seconds into "5 min ago" style text.
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => "just now".to_string(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}
