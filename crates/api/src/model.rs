//! Types shared by the server, the REST API and the browser. Plain data:
//! nothing here needs git or SQL, so it compiles to wasm too. The engine's
//! store decodes its rows into row types of its own and turns them into
//! these, so each thing Envline stores is seen the same way everywhere.

use serde::{Deserialize, Serialize};

use crate::{AuditAction, choice};

/// A role as granted: the role, optionally with a glob of the environments
/// it covers (`approver:prod-*`).
pub const ROLE_PATTERN: &str =
    "^(viewer|promoter|tester|approver|incident-commander|admin)(:[A-Za-z0-9._*?-]+)?$";

choice! {
    /// What a promotion request moves.
    pub enum RequestKind {
        /// A fast-forward (S1, S6).
        Promote,
        /// A move back or sideways (S6 onto an environment that is ahead, realign).
        Reset,
        /// An out-of-order promotion of one commit (S5).
        CherryPick,
    }
}

choice! {
    /// Where a promotion request stands.
    pub enum RequestState {
        AwaitingApproval,
        /// Approved; its push is on the way (decisions are closed).
        Executing,
        Done,
        Rejected,
        Failed,
        Cancelled,
    }
}

choice! {
    /// An approver's answer to a request (I4).
    pub enum Decision { Approve, Reject }
}

choice! {
    /// The outcome of testing exactly one commit in one environment (I3).
    pub enum VerificationStatus { Passed, Failed, Pending }
}

choice! {
    /// What a hold stops.
    pub enum HoldKind {
        /// Every promotion into the environment.
        Promotion,
        /// Only automatic promotions (placed by rollbacks, S3).
        AutoPromotion,
    }
}

choice! {
    /// Where an incident's hotfix mode stands (S4).
    pub enum IncidentState {
        /// The root is the hotfix branch; the fix is on its way to production.
        Active,
        /// The fix is in production; main still has to take it (merge back).
        Resolved,
        /// Main has the fix: hotfix mode is over.
        Merged,
    }
}

choice! {
    /// Where a notification to one target stands.
    pub enum NotificationState {
        /// Queued, not tried yet.
        Pending,
        /// Tried and refused (or unreachable); retried with back-off.
        Failing,
        /// The receiver took it (2xx).
        Delivered,
        /// Its target left the configuration before it was delivered.
        Dropped,
    }
}

choice! {
    /// A gate a promotion must pass.
    pub enum GateKind {
        /// I3: the exact commit passed in a required environment.
        Verified,
        /// No hold or freeze is in force.
        Hold,
        /// I4: distinct approvers other than the requester.
        Approvals,
    }
}

/// Text that is already JSON (an audit event's details), kept byte for byte
/// as stored so the audit chain can be checked against exactly what was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Sent as the JSON it holds, so its schema is any JSON value, not a string.
#[cfg_attr(feature = "openapi", schema(value_type = Value))]
pub struct JsonText(pub String);

impl JsonText {
    /// The JSON as a value (`Null` if the text is not JSON).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(v: serde_json::Value) -> Self {
        JsonText(v.to_string())
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.clone()) {
            Ok(raw) => raw.serialize(s),
            Err(_) => serde_json::Value::Null.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(JsonText(raw.get().to_owned()))
    }
}

/// A commit as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitView {
    pub id: String,
    pub short: String,
    pub subject: String,
    pub author: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
}

/// A verification of exactly one commit in one environment (I3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationView {
    pub id: i64,
    pub environment: String,
    pub commit: String,
    pub status: VerificationStatus,
    pub url: Option<String>,
    pub summary: Option<String>,
    pub recorded_by: String,
    pub at: String,
}

/// A hold or freeze on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldView {
    pub id: i64,
    pub environment: String,
    pub kind: HoldKind,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// What placed it, which decides who may release it: `hold` (a person's
    /// hold or freeze) or `reset` (the auto-promotion hold of a rollback).
    #[serde(default)]
    pub placed_by: String,
}

impl HoldView {
    /// Whether `user`, who may do `can` on the hold's environment, may lift
    /// it: whoever placed it (while they may still place it), an admin, or,
    /// for a rollback's hold, anyone who may reset the environment. The
    /// engine decides with this, and the pages show the button by it.
    pub fn releasable_by(&self, user: &str, can: &Abilities) -> bool {
        let by_reset = self.placed_by == "reset";
        let placer_may = if by_reset { can.reset } else { can.hold };
        can.admin || (user == self.created_by && placer_may) || (by_reset && can.reset)
    }
}

/// One approver's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalView {
    pub approver: String,
    pub decision: Decision,
    pub comment: String,
    pub at: String,
    /// Why this approval no longer counts, when it does not (I4): its
    /// approver lost the role for this environment, or was removed.
    #[serde(default)]
    pub withdrawn: Option<String>,
}

/// A promotion (or reset, or out-of-order cherry-pick) and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionView {
    pub id: i64,
    pub kind: RequestKind,
    pub environment: String,
    pub source: String,
    pub from_commit: Option<String>,
    /// The candidate (for a cherry-pick: the picked commit).
    pub to_commit: String,
    pub requested_by: String,
    pub reason: String,
    pub required_approvals: u32,
    pub state: RequestState,
    pub state_reason: Option<String>,
    /// The environment's head after the promotion (differs from `to_commit` for a cherry-pick).
    pub result_commit: Option<String>,
    pub approvals: Vec<ApprovalView>,
    /// I4: the approvers who count (distinct, never the requester), as the
    /// engine's rules decide.
    #[serde(default)]
    pub counted_approvers: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One audit event, as stored (I5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: AuditAction,
    pub environment: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub details: JsonText,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainCheck {
    pub intact: bool,
    pub events: i64,
    /// The first event whose stored hash does not match its content or predecessor.
    pub first_broken: Option<i64>,
    pub message: String,
    /// Everything else found wrong: anchors on the remote that disagree,
    /// branches the log does not explain, evidence rows edited.
    #[serde(default)]
    pub problems: Vec<String>,
    /// What the remote's anchor vouches for, or why there is none.
    #[serde(default)]
    pub anchor: Option<String>,
}

/// A user as the Admin page and `GET /api/v1/users` list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonView {
    pub name: String,
    /// `role` or `role:glob`.
    pub roles: Vec<String>,
    pub tokens: Vec<TokenView>,
}

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: i64,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One environment (or the root branch) on the pipeline page and in `GET /api/v1/environments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Its automatic promotion keeps failing to push, if so.
    #[serde(default)]
    pub auto_promotion_failure: Option<AutoPromotionFailure>,
}

/// An automatic promotion whose push failed, and when it is tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoPromotionFailure {
    pub candidate: String,
    pub message: String,
    /// Failures in a row for this candidate.
    pub failures: u32,
    pub at: String,
    pub retry_at: String,
}

/// Merge commits on the part of the root's line that not every environment
/// has reached yet (the line should be straight). Older merges, already in
/// every environment, are history nobody can act on, so they are not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeSummary {
    pub count: usize,
    /// The newest few, newest first.
    pub newest: Vec<CommitView>,
}

/// What the pipeline page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineView {
    pub root: String,
    pub environments: Vec<EnvironmentView>,
    pub merges: MergeSummary,
    /// When the remote was last fetched (RFC 3339), if ever.
    pub refreshed_at: Option<String>,
    /// The last refresh's error, if it failed.
    pub refresh_error: Option<String>,
}

/// One commit on the line, for `GET /api/v1/timeline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// One page of the line, for `GET /api/v1/timeline` and the Line page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelinePage {
    /// Newest first.
    pub commits: Vec<TimelineEntry>,
    /// Commits on the whole line (positions run from 0 to `total - 1`).
    pub total: usize,
    /// Environments whose head is off the line (I1 broken), drawn beside it.
    pub off_line: Vec<OffLineEnvironment>,
}

/// An environment off the root's line: the commits only it has, and where
/// it left the line. Realigning it brings it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OffLineEnvironment {
    pub environment: String,
    pub head: CommitView,
    /// Its commits the line does not have, newest first (at most 20).
    pub stray: Vec<CommitView>,
    /// How many such commits there are in all.
    pub stray_total: usize,
    /// The last commit it shares with the line, and its position there.
    pub left_at: Option<CommitView>,
    pub left_at_position: Option<usize>,
}

/// Where a page of the line starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimelineStart {
    /// At the root's tip.
    Tip,
    /// Just below this commit (the last one of the previous page).
    Before(String),
    /// At this position (0 = the oldest commit).
    At(usize),
}

/// One gate of a promotion, met or not, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateCheck {
    pub gate: GateKind,
    /// The environment the gate is about (the required one for `verified`).
    pub environment: String,
    pub met: bool,
    pub message: String,
    /// For `verified`: the verification that decides it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<VerificationView>,
}

/// How a file changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileChange {
    pub path: String,
    /// `added`, `deleted` or `modified`.
    pub change: String,
    /// Unified diff of the text (absent for binary or very large files).
    pub diff: Option<String>,
    /// The diff was cut to keep the preview readable.
    pub truncated: bool,
}

/// A commit that would move, with the environments its changes affect (S2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovingCommit {
    pub commit: CommitView,
    pub affects: Vec<String>,
}

/// What a promotion would do, shown before anything moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionPreview {
    pub environment: String,
    pub source: String,
    pub kind: RequestKind,
    pub head: Option<CommitView>,
    pub candidate: Option<CommitView>,
    /// Newest first; `commits_total` may be larger than the list.
    pub commits: Vec<MovingCommit>,
    pub commits_total: usize,
    pub files: Vec<FileChange>,
    pub files_total: usize,
    /// Every gate, met or not.
    pub gates: Vec<GateCheck>,
    /// Distinct approvers the promotion will need before it runs (I4).
    pub approvals_needed: u32,
    /// Why it cannot run at all (not a fast-forward, already there, …), if so.
    pub blocked: Option<crate::ErrorReply>,
}

/// What a rollback of one environment would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackPlan {
    pub environment: String,
    pub head: CommitView,
    pub target: CommitView,
    /// Commits that leave the environment, newest first.
    pub leaving: Vec<CommitView>,
    pub leaving_total: usize,
    /// The rollback holds the environment's auto-promotion until someone releases it.
    pub places_hold: bool,
}

/// Who is signed in and what they may do, for the header and the action buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Viewer {
    pub user: String,
    /// `role` or `role:glob`.
    pub roles: Vec<String>,
    pub signed_in: bool,
    /// Per environment, what this person may do there.
    pub abilities: Vec<Abilities>,
    pub can_refresh: bool,
}

/// The actions one person may take on one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Abilities {
    pub environment: String,
    pub promote: bool,
    pub verify: bool,
    pub approve: bool,
    pub reset: bool,
    pub hold: bool,
    /// Administers this environment (releases anyone's holds).
    #[serde(default)]
    pub admin: bool,
}

impl Viewer {
    /// What the viewer may do on `environment` (nothing when unknown).
    pub fn on(&self, environment: &str) -> Abilities {
        self.abilities
            .iter()
            .find(|a| a.environment == environment)
            .cloned()
            .unwrap_or_default()
    }
}

/// `POST /api/v1/promotions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environment": "staging-eu", "commit": "fc8fcb4", "reason": "shop-api 1.6.21 passed integration"}))
)]
pub struct PromoteInput {
    /// One environment…
    pub environment: Option<String>,
    /// …or several (names or globs) promoted together.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub environments: Option<Vec<String>>,
    /// The candidate (7 to 40 hex digits); the source's head when not given.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{7,40}$"))]
    pub commit: Option<String>,
    /// Where the commit comes from (S6); the environment's `from` when not given.
    pub from: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub reason: Option<String>,
}

/// `POST /api/v1/rollbacks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environments": ["prod-eu"], "reason": "checkout errors since 1.6.21"}))
)]
pub struct RollbackInput {
    /// Names or globs.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub environments: Vec<String>,
    /// The commit to go back to (7 to 40 hex digits); the previous position when not given.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{7,40}$"))]
    pub to: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub reason: Option<String>,
}

/// `POST /api/v1/holds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environments": ["prod-eu", "prod-us"], "reason": "Black Friday freeze", "kind": "promotion", "ends_at": "2030-11-30T23:00:00Z"}))
)]
pub struct HoldInput {
    /// Names or globs.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub environments: Vec<String>,
    /// Why: everyone sees it.
    #[cfg_attr(feature = "openapi", schema(pattern = "\\S", max_length = 2000))]
    pub reason: String,
    #[serde(default = "default_hold_kind")]
    pub kind: HoldKind,
    /// When a freeze starts (RFC 3339); now when not given.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub starts_at: Option<String>,
    /// When it ends (RFC 3339, later than now and than `starts_at`); never when not given.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub ends_at: Option<String>,
}

fn default_hold_kind() -> HoldKind {
    HoldKind::Promotion
}

/// `POST /api/v1/verifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environment": "integration", "commit": "fc8fcb4", "status": "passed", "url": "https://ci.example.com/runs/4711", "summary": "312 tests passed"}))
)]
pub struct VerifyInput {
    pub environment: String,
    /// The commit tested (7 to 40 hex digits).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{7,40}$"))]
    pub commit: String,
    pub status: VerificationStatus,
    /// A link to the test run.
    #[cfg_attr(feature = "openapi", schema(pattern = "^https?://", max_length = 2000))]
    pub url: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub summary: Option<String>,
}

/// `POST /api/v1/promotions/{id}/approvals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"decision": "approve", "comment": "change ticket CHG-1042 is approved"}))
)]
pub struct DecisionInput {
    pub decision: Decision,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub comment: Option<String>,
}

/// `POST /api/v1/realignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environment": "loadtest", "reason": "bring it back onto the line"}))
)]
pub struct RealignInput {
    pub environment: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub reason: Option<String>,
}

/// `POST /api/v1/cherry-picks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"environment": "prod-eu", "commit": "656c104", "reason": "the cache fix alone, ahead of the release"}))
)]
pub struct CherryPickInput {
    pub environment: String,
    /// The commit to pick (7 to 40 hex digits).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{7,40}$"))]
    pub commit: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub reason: Option<String>,
}

/// One of main's commits rebased onto the hotfix: the equivalent commit,
/// so a flow cancelled by the incident can be restarted from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitMapping {
    pub old: String,
    pub new: String,
    pub subject: String,
}

/// An incident and its hotfix mode (S4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentView {
    pub id: i64,
    pub incident: String,
    /// `hotfix/<incident>`: the pipeline's root while hotfix mode is on.
    pub branch: String,
    /// The production environment it started from.
    pub production: String,
    /// That environment's commit when it started: where every branch was reset to.
    pub fork: String,
    pub reason: String,
    pub state: IncidentState,
    pub started_by: String,
    pub started_at: String,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    /// The fix that was in production when it was resolved: what merge-back folds into main.
    pub fix: Option<String>,
    pub merged_by: Option<String>,
    pub merged_at: Option<String>,
    /// Production environments the commander left where they were.
    pub kept: Vec<String>,
    pub mapping: Vec<CommitMapping>,
}

/// An incident with its audit events: what `GET /api/v1/hotfixes` and the
/// Incident page list, so a past incident's steps stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentRecord {
    #[serde(flatten)]
    pub incident: IncidentView,
    /// Its audit events, oldest first.
    pub steps: Vec<AuditEventView>,
}

/// One branch's reset when hotfix mode starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedReset {
    pub environment: String,
    pub branch: String,
    pub old: Option<CommitView>,
    /// Already at the fork: nothing to do.
    pub at_fork: bool,
    /// A protected (production) environment: the commander may keep it where it is.
    pub protected: bool,
}

/// What starting hotfix mode from a production environment would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HotfixPlan {
    pub incident: String,
    pub branch: String,
    pub production: String,
    pub fork: CommitView,
    pub resets: Vec<PlannedReset>,
    /// Open requests that will be cancelled.
    pub cancels: Vec<PromotionView>,
    /// Environments whose auto-promotion pauses.
    pub paused: Vec<String>,
}

/// `POST /api/v1/hotfixes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"incident": "INC-42", "from": "prod-eu", "reason": "checkout returns 500 for every card payment"}))
)]
pub struct HotfixInput {
    /// The incident's name (like `INC-42`).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9_]+([.-][A-Za-z0-9_]+)*$", max_length = 64)
    )]
    pub incident: String,
    /// The production environment whose commit the fix starts from.
    pub from: String,
    /// What broke: everyone sees it while hotfix mode is on.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, required = true, pattern = "\\S", max_length = 2000)
    )]
    pub reason: Option<String>,
    /// Environments to leave where they are (production ones at another commit).
    #[serde(default)]
    pub keep: Vec<String>,
}

/// One environment on the way of the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FixProgress {
    pub environment: String,
    /// It holds the hotfix branch's tip.
    pub has_fix: bool,
    pub head: Option<CommitView>,
}

/// Hotfix mode as the Incident page and the banner show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HotfixStatus {
    pub incident: IncidentView,
    /// The hotfix branch's tip (the fix, once pushed).
    pub tip: Option<CommitView>,
    /// Commits on the hotfix branch since the fork, newest first.
    pub fix_commits: Vec<CommitView>,
    /// Environments and whether each holds the fix.
    pub progress: Vec<FixProgress>,
    /// main's commits since the fork, which merging back replays on the fix.
    pub main_ahead: usize,
    /// Audit events of the incident, oldest first.
    pub steps: Vec<AuditEventView>,
}

/// A merge-back that stopped on a conflict: what a person needs to do it by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeConflict {
    pub commit: String,
    pub subject: String,
    pub paths: Vec<String>,
}

/// One notification to one target, for `GET /api/v1/notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    /// The id every attempt sends (receivers de-duplicate on it).
    pub id: String,
    /// The audit event it tells of.
    pub audit_id: i64,
    pub event: String,
    /// The receiver, without its path (chat hook paths are secrets).
    pub target: String,
    pub state: NotificationState,
    pub attempts: i64,
    pub next_attempt_at: String,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
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

/// One dependency `GET /readyz` looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessCheck {
    /// Whether it works now.
    pub ok: bool,
    /// What is wrong and what to do, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The answer of `GET /readyz`: whether this server can do its work, for a
/// load balancer or an orchestrator to route by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// `ready` (every check passes), `degraded` (the remote cannot be
    /// reached: pages and reads work, moves wait for it) or `unready` (the
    /// database or the clone fails: answered with 503).
    #[cfg_attr(feature = "openapi", schema(example = "ready"))]
    pub status: String,
    /// `leader` when this server runs the background work (timed refresh,
    /// auto-promotion, anchoring, notification delivery); one server alone
    /// always does.
    #[cfg_attr(feature = "openapi", schema(example = "leader"))]
    pub role: String,
    /// The database answers a query.
    pub database: ReadinessCheck,
    /// The bare clone in `data_dir` can be read.
    pub clone: ReadinessCheck,
    /// The last fetch of the remote succeeded.
    pub remote: ReadinessCheck,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_choice;

    #[test]
    fn choices_read_and_write_snake_case() {
        assert_eq!(RequestState::AwaitingApproval.as_str(), "awaiting_approval");
        assert_eq!(
            serde_json::to_string(&RequestKind::CherryPick).unwrap(),
            "\"cherry_pick\""
        );
        let parsed: HoldKind = parse_choice("kind", "auto_promotion").unwrap();
        assert_eq!(parsed, HoldKind::AutoPromotion);
        let err = parse_choice::<VerificationStatus>("status", "great").unwrap_err();
        assert_eq!(
            err,
            "`status` must be passed, failed or pending, not `great`"
        );
    }

    #[test]
    fn json_text_is_sent_as_the_json_it_holds() {
        let t = JsonText(r#"{"b":1,"a":[true]}"#.into());
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"b":1,"a":[true]}"#);
        let back: JsonText = serde_json::from_str(r#"{"b":1,"a":[true]}"#).unwrap();
        assert_eq!(back, t);
    }
}
