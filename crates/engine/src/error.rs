//! The one error type operations return, with the HTTP status and code the
//! API answers with.

use envline_api::{ErrorCode, ErrorReply, GateCheck};

use super::git::GitError;
use super::roles::Forbidden;
use super::rules::Refusal;

/// Why an operation did not happen. Nothing moved when any of these is returned.
/// Faults inside Envline keep their cause (`source()`), which is logged and
/// never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    BadInput(String),
    /// Nobody is signed in, or the token or session is unknown.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(#[from] Forbidden),
    /// A browser's change that does not come from Envline's own pages.
    #[error("{0}")]
    CrossOrigin(String),
    #[error("{0}")]
    NotFound(String),
    /// Too many attempts (sign-in); the message says how long to wait, and
    /// `retry_after` (seconds) is answered as `Retry-After`.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// Well-formed but not acceptable (HTTP 422), e.g. a test result for a
    /// commit the environment never held.
    #[error("{message}")]
    Unprocessable { code: ErrorCode, message: String },
    #[error("gates not met: {}", .0.iter().map(|g| g.message.as_str()).collect::<Vec<_>>().join("; "))]
    GatesUnmet(Vec<GateCheck>),
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
    /// Merging a hotfix back stopped on conflicts: nothing moved (HTTP 409).
    #[error("{message}")]
    MergeBackConflict {
        message: String,
        conflicts: Vec<envline_api::MergeConflict>,
        /// What a person runs to do it by hand.
        commands: Vec<String>,
    },
    /// Something that cannot happen did (a row vanished inside its transaction).
    #[error("internal error: {0}")]
    Internal(String),
    /// The repository could not be read or written.
    #[error("repository: {0}")]
    Git(#[source] GitError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A task Envline runs an operation in failed.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl EngineError {
    /// A fault inside Envline rather than a refusal: answered as 500 with a
    /// reference, its cause kept for the log.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            EngineError::Internal(_)
                | EngineError::Git(_)
                | EngineError::Database(_)
                | EngineError::Task(_)
        )
    }

    /// The error and each of its causes, for the log (a cause whose words
    /// the message already carries is not repeated).
    pub fn with_causes(&self) -> String {
        with_causes(self)
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::BadInput(_) => 400,
            EngineError::Unauthenticated(_) => 401,
            EngineError::Forbidden(_) => 403,
            EngineError::CrossOrigin(_) => 403,
            EngineError::NotFound(_) => 404,
            EngineError::RateLimited { .. } => 429,
            EngineError::Conflict { .. } | EngineError::MergeBackConflict { .. } => 409,
            EngineError::GatesUnmet(_) | EngineError::Unprocessable { .. } => 422,
            EngineError::Remote { .. } => 503,
            EngineError::Internal(_)
            | EngineError::Git(_)
            | EngineError::Database(_)
            | EngineError::Task(_) => 500,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::BadInput(_) => ErrorCode::BadInput,
            EngineError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::CrossOrigin(_) => ErrorCode::CrossOrigin,
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::RateLimited { .. } => ErrorCode::RateLimited,
            EngineError::Conflict { code, .. } => *code,
            EngineError::MergeBackConflict { .. } => ErrorCode::MergeBackConflict,
            EngineError::GatesUnmet(_) => ErrorCode::GatesNotMet,
            EngineError::Unprocessable { code, .. } => *code,
            EngineError::Remote { code, .. } => *code,
            EngineError::Internal(_)
            | EngineError::Git(_)
            | EngineError::Database(_)
            | EngineError::Task(_) => ErrorCode::Internal,
        }
    }

    /// Structured details (the unmet gates).
    pub fn details(&self) -> serde_json::Value {
        match self {
            EngineError::GatesUnmet(gates) => serde_json::to_value(gates).unwrap_or_default(),
            EngineError::MergeBackConflict {
                conflicts,
                commands,
                ..
            } => serde_json::json!({ "conflicts": conflicts, "commands": commands }),
            EngineError::Forbidden(f) => serde_json::json!({
                "permission": f.permission.name(),
                "environment": f.environment,
                "roles": f.permission.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "only": f.only,
            }),
            EngineError::RateLimited { retry_after, .. } => {
                serde_json::json!({ "retry_after_seconds": retry_after })
            }
            _ => serde_json::Value::Null,
        }
    }
}

impl From<GitError> for EngineError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::UnknownCommit(_) => EngineError::NotFound(e.to_string()),
            GitError::AmbiguousId { .. } => EngineError::BadInput(e.to_string()),
            GitError::Conflict { .. } => EngineError::Conflict {
                code: ErrorCode::RefMoved,
                message: e.to_string(),
            },
            GitError::RemoteMoved(_) => EngineError::Conflict {
                code: ErrorCode::RemoteMoved,
                message: format!("{e}; refresh and try again"),
            },
            GitError::MergeConflict(_) => EngineError::Conflict {
                code: ErrorCode::MergeConflict,
                message: e.to_string(),
            },
            GitError::AlreadyApplied(_) => EngineError::Conflict {
                code: ErrorCode::AlreadyThere,
                message: e.to_string(),
            },
            GitError::RebaseConflict {
                ref commit,
                ref subject,
                ref paths,
            } => EngineError::MergeBackConflict {
                message: e.to_string(),
                conflicts: vec![envline_api::MergeConflict {
                    commit: commit.to_string(),
                    subject: subject.clone(),
                    paths: paths.clone(),
                }],
                commands: Vec::new(),
            },
            GitError::Timeout(_) => EngineError::Remote {
                code: ErrorCode::RemoteTimeout,
                message: format!("the remote did not answer in time: {e}"),
            },
            GitError::NotConnected(_) => EngineError::Remote {
                code: ErrorCode::RemoteUnreachable,
                message: format!("{e}; nothing was changed"),
            },
            GitError::RemoteUnreachable(_) => EngineError::Remote {
                code: ErrorCode::ConnectionLost,
                message: format!("{e}; nothing was changed"),
            },
            GitError::RemoteRejected(_) => EngineError::Remote {
                code: ErrorCode::RemoteRejected,
                message: format!("{e}; nothing was changed"),
            },
            GitError::Repository(_) | GitError::Spawn(_) => EngineError::Git(e),
        }
    }
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Conflict { code, message } => EngineError::Conflict { code, message },
            Refusal::Gates(g) => EngineError::GatesUnmet(g),
        }
    }
}

impl From<EngineError> for ErrorReply {
    /// A fault inside Envline (a database error, a broken clone) is logged
    /// with its cause and a reference, and answered with the reference only:
    /// its text is for the operator, not for every client.
    fn from(e: EngineError) -> Self {
        if e.is_fault() {
            use rand::RngCore;
            let reference = format!("{:08x}", rand::rng().next_u32());
            tracing::error!(reference = %reference, "internal error: {}", e.with_causes());
            return ErrorReply {
                status: 500,
                code: ErrorCode::Internal,
                message: format!(
                    "something went wrong inside Envline; the server's log has the cause under reference {reference}"
                ),
                details: serde_json::json!({ "reference": reference }),
            };
        }
        ErrorReply {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
            details: e.details(),
        }
    }
}

/// Any error and each of its causes, for the log (a cause whose words the
/// text already carries is not repeated): libraries' errors often say only
/// "request failed" and keep the reason in their source.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let words = c.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_keeps_its_cause_for_the_log() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no git on the PATH");
        let e = EngineError::from(GitError::from(io));
        assert!(e.is_fault());
        assert!(std::error::Error::source(&e).is_some());
        assert!(
            e.with_causes().contains("no git on the PATH"),
            "{}",
            e.with_causes()
        );
        let reply = ErrorReply::from(e);
        assert_eq!((reply.status, reply.code), (500, ErrorCode::Internal));
        assert!(!reply.message.contains("no git"), "{}", reply.message);
    }

    #[test]
    fn an_internal_fault_is_answered_with_a_reference_not_its_cause() {
        let e = ErrorReply::from(EngineError::Internal(
            "database: no such table: secrets_of_the_operator".into(),
        ));
        assert_eq!((e.status, e.code), (500, ErrorCode::Internal));
        assert!(
            !e.message.contains("secrets_of_the_operator"),
            "{}",
            e.message
        );
        let reference = e.details["reference"].as_str().unwrap();
        assert_eq!(reference.len(), 8);
        assert!(e.message.contains(reference), "{}", e.message);
        // Other refusals keep their words.
        let e = ErrorReply::from(EngineError::BadInput("give a reason".into()));
        assert_eq!(e.message, "give a reason");
    }
}
