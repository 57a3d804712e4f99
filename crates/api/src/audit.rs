//! What the audit log records and what notifications tell: closed lists,
//! spelled on the wire and in the database as snake_case text.

use crate::choice;
use crate::model::{Decision, RequestKind};

choice! {
    /// What an audit event records (I5).
    pub enum AuditAction {
        /// A promotion was asked for and waits for approvals.
        Request,
        /// A fast-forward landed (S1, S6).
        Promote,
        /// A move back or sideways landed (S6 onto an environment ahead).
        Reset,
        /// One commit was promoted out of order (S5).
        CherryPick,
        /// An approver signed a request off (I4).
        Approve,
        /// An approver turned a request down.
        Reject,
        /// An approval stopped counting: its approver lost the role.
        ApprovalWithdrawn,
        /// An environment went back to an earlier position (S3).
        Rollback,
        /// An environment off the line was brought back to it (I1).
        Realign,
        /// A test result for one commit in one environment (I3).
        Verify,
        /// A hold or freeze was placed.
        Hold,
        /// A hold or freeze was lifted.
        Release,
        /// A branch moved outside Envline.
        OutOfBand,
        /// Envline took note of a branch's position (first sight, settled crash).
        Observed,
        /// Hotfix mode started (S4).
        HotfixStart,
        /// A branch was reset to the fork when hotfix mode started.
        HotfixReset,
        /// An environment's auto-promotion paused for hotfix mode.
        HotfixPaused,
        /// The fix reached production.
        HotfixResolved,
        /// Main took the fix: hotfix mode is over.
        MergeBack,
        /// A notification was given up on.
        NotificationDropped,
        /// A person was created.
        UserCreated,
        /// A person's password was set by an admin.
        PasswordSet,
        /// A person changed their own password.
        PasswordChanged,
        /// A person was given a role.
        RoleGranted,
        /// A person lost a role.
        RoleRemoved,
        /// A person was removed.
        UserRemoved,
        /// An API token was created.
        TokenCreated,
        /// An API token was revoked.
        TokenRevoked,
    }
}

choice! {
    /// What a notification tells its receivers; `[[notify]] events` lists these.
    pub enum NotifyEvent {
        /// A request waits for approvals.
        ApprovalNeeded,
        /// A commit landed in an environment.
        Promoted,
        /// A request was turned down.
        Rejected,
        /// An environment was rolled back.
        RolledBack,
        /// A branch moved outside Envline.
        OutOfBand,
        /// A hold or freeze was placed.
        Held,
        /// A hold or freeze was lifted.
        Released,
        /// Hotfix mode started.
        HotfixStarted,
        /// The fix reached production.
        HotfixResolved,
        /// Main took the fix.
        HotfixMerged,
    }
}

impl AuditAction {
    /// The notification this action raises, if any.
    pub fn notifies(self) -> Option<NotifyEvent> {
        use AuditAction as A;
        Some(match self {
            A::Request => NotifyEvent::ApprovalNeeded,
            A::Promote | A::Reset | A::CherryPick => NotifyEvent::Promoted,
            A::Reject => NotifyEvent::Rejected,
            A::Rollback => NotifyEvent::RolledBack,
            A::OutOfBand => NotifyEvent::OutOfBand,
            A::Hold => NotifyEvent::Held,
            A::Release => NotifyEvent::Released,
            A::HotfixStart => NotifyEvent::HotfixStarted,
            A::HotfixResolved => NotifyEvent::HotfixResolved,
            A::MergeBack => NotifyEvent::HotfixMerged,
            _ => return None,
        })
    }

    /// A forward move that landed: what a rollback may go back behind.
    pub fn is_forward_move(self) -> bool {
        matches!(self, AuditAction::Promote | AuditAction::CherryPick)
    }

    /// A move that passed the gates: a position a rollback may return to.
    pub fn is_gated_move(self) -> bool {
        matches!(
            self,
            AuditAction::Promote
                | AuditAction::CherryPick
                | AuditAction::Realign
                | AuditAction::Reset
        )
    }
}

impl From<RequestKind> for AuditAction {
    /// The action that records a request of this kind landing.
    fn from(kind: RequestKind) -> Self {
        match kind {
            RequestKind::Promote => AuditAction::Promote,
            RequestKind::Reset => AuditAction::Reset,
            RequestKind::CherryPick => AuditAction::CherryPick,
        }
    }
}

impl From<Decision> for AuditAction {
    /// The action that records an approver's decision.
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Approve => AuditAction::Approve,
            Decision::Reject => AuditAction::Reject,
        }
    }
}
