//! Why something did not happen, as every layer answers it: a status, a
//! stable code from a closed list, words for a person and structured details.

use serde::{Deserialize, Serialize};

use crate::choice;
use crate::model::GateCheck;

choice! {
    /// Every code an error answer can carry. Programs branch on these; the
    /// message beside them is for people and may change.
    pub enum ErrorCode {
        // The input and the caller.
        /// The input is wrong; the message says which field and why (400).
        BadInput,
        /// Nobody is signed in, or the token or session is unknown (401).
        Unauthenticated,
        /// The caller lacks the permission; `details` names it (403).
        Forbidden,
        /// A browser's change that does not come from Envline's own pages (403).
        CrossOrigin,
        /// No such environment, commit, request, hold, incident or person (404).
        NotFound,
        /// The method is not one the path takes (405).
        MethodNotAllowed,
        /// A request body arrived too slowly (408).
        TooSlow,
        /// A request body is over the endpoint's limit (413).
        BodyTooLarge,
        /// Too many attempts; `details.retry_after_seconds` says how long to wait (429).
        RateLimited,
        // The move itself (409).
        /// The environment already holds the candidate.
        AlreadyThere,
        /// The candidate is not on the source's branch.
        NotOnSource,
        /// The environment (or the candidate) is off the root's line (I1).
        OffLine,
        /// The move is not a fast-forward.
        NotFastForward,
        /// The branch moved while Envline was deciding; nothing was written.
        RefMoved,
        /// The remote's branch moved; refresh and try again.
        RemoteMoved,
        /// Picking or merging stopped on conflicting changes.
        MergeConflict,
        /// A hotfix's merge back stopped on conflicts; `details` lists them.
        MergeBackConflict,
        /// The environment's branch does not exist.
        BranchMissing,
        /// A branch of that name exists already.
        BranchExists,
        /// The request was decided, executed or cancelled already.
        RequestClosed,
        /// This approver decided on the request already.
        AlreadyDecided,
        /// The hold was released already.
        AlreadyReleased,
        /// A move of this environment is still being settled after a crash.
        Unsettled,
        /// The push's outcome is unknown until the next refresh settles it.
        OutcomeUnknown,
        /// The environment is already on the line: nothing to realign.
        OnLine,
        /// Ordinary promotions wait while hotfix mode is on (S4).
        HotfixMode,
        /// Hotfix mode is on for another incident already.
        HotfixRunning,
        /// The incident's name was used before.
        IncidentUsed,
        /// The hotfix is of another incident.
        OtherIncident,
        /// Hotfix mode is not on.
        NoHotfix,
        /// The incident was resolved already.
        AlreadyResolved,
        /// The hotfix branch has no fix on it yet.
        NoFix,
        /// The fix has not reached production yet.
        FixNotInProduction,
        /// The incident is not resolved yet, so it cannot be merged back.
        NotResolved,
        /// That person exists already.
        UserExists,
        /// The last admin cannot lose the role or be removed.
        LastAdmin,
        /// People cannot remove themselves.
        OwnAccount,
        /// The token was revoked already.
        AlreadyRevoked,
        // Well-formed but not acceptable (422).
        /// Gates are not met; `details` lists every gate.
        GatesNotMet,
        /// The commit was never held by the environment.
        NeverHeld,
        /// The commit failed in that environment.
        FailedThere,
        /// The rollback's target is not behind the environment.
        NotBack,
        /// The environment has no earlier position to go back to.
        NoPreviousPosition,
        /// An environment cannot be promoted from itself.
        SameEnvironment,
        /// A hold's window is empty or already over.
        BadWindow,
        /// Only protected environments that hotfix mode resets may be kept.
        CannotKeep,
        /// The current password given is not right.
        WrongPassword,
        /// The new password is the current one.
        SamePassword,
        /// Query parameters that exclude each other were both given.
        ConflictingParameters,
        // The remote and Envline itself.
        /// The remote refused the push.
        RemoteRejected,
        /// The remote cannot be reached (503).
        RemoteUnreachable,
        /// The remote did not answer in time (503).
        RemoteTimeout,
        /// The connection to the remote dropped mid-way (503).
        ConnectionLost,
        /// Webhooks are off until a secret is configured (503).
        WebhooksNotConfigured,
        /// A webhook delivery's signature or token is missing or wrong (401).
        BadSignature,
        /// The server is stopping (503).
        Stopping,
        /// Another replica held the ref lock for longer than any move takes
        /// (a push hanging?); nothing was changed (503).
        RefLockTimeout,
        /// The browser cannot reach Envline (503).
        Unreachable,
        /// A fault inside Envline; `details.reference` finds its cause in the log (500).
        Internal,
        /// An answer this client does not understand (a code from a newer server).
        #[serde(other)]
        Unexpected,
    }
}

/// Why something did not happen. Nothing moved when one of these is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ErrorReply {
    /// The HTTP status: 400 bad input, 401/403 who and which permission, 404,
    /// 409 the move itself is wrong, 422 gates not met, 503 remote unreachable.
    pub status: u16,
    /// A stable, machine-readable code.
    pub code: ErrorCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// Structured details: the unmet gates, the missing permission.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl ErrorReply {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// 400: the input is wrong.
    pub fn bad_input(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(400, ErrorCode::BadInput, message)
    }

    /// 401: nobody is signed in, or the token is unknown.
    pub fn unauthenticated(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(401, ErrorCode::Unauthenticated, message)
    }

    /// The gates listed in `details`, when the refusal is about gates (422).
    pub fn unmet_gates(&self) -> Vec<GateCheck> {
        if self.code != ErrorCode::GatesNotMet {
            return Vec::new();
        }
        serde_json::from_value(self.details.clone()).unwrap_or_default()
    }
}

/// The body of every error answer of the HTTP API: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
    /// Structured details when there are some: the unmet gates (422), the
    /// missing permission (403), a merge-back's conflicts (409); else `null`.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl ErrorBody {
    /// The reply this body carries, with the status it was answered with.
    pub fn into_reply(self, status: u16) -> ErrorReply {
        ErrorReply {
            status,
            code: self.error.code,
            message: self.error.message,
            details: self.error.details,
        }
    }
}

impl From<ErrorReply> for ErrorBody {
    fn from(e: ErrorReply) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: e.code,
                message: e.message,
                details: e.details,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sent_in_snake_case_and_unknown_ones_are_read_as_unexpected() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::GatesNotMet).unwrap(),
            "\"gates_not_met\""
        );
        assert_eq!(ErrorCode::RemoteUnreachable.as_str(), "remote_unreachable");
        let code: ErrorCode = serde_json::from_str("\"a_code_from_the_future\"").unwrap();
        assert_eq!(code, ErrorCode::Unexpected);
    }
}
