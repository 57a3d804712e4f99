//! The one error the REST API and the server functions answer with:
//! `{code, message, details}` plus the HTTP status that fits. The pages get
//! it typed, so they can list the unmet gates or name the missing permission
//! instead of showing a string.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::model::GateCheck;

/// Why something did not happen. Nothing moved when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct AppError {
    /// The HTTP status: 400 bad input, 401/403 who and which permission, 404,
    /// 409 the move itself is wrong, 422 gates not met, 503 remote unreachable.
    pub status: u16,
    /// A stable, machine-readable code (`gates_not_met`, `forbidden`, …).
    pub code: String,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// Structured details: the unmet gates, the missing permission.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl AppError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// 400: the input is wrong.
    pub fn bad_input(message: impl Into<String>) -> AppError {
        AppError::new(400, "bad_input", message)
    }

    /// 401: nobody is signed in, or the token is unknown.
    pub fn unauthenticated(message: impl Into<String>) -> AppError {
        AppError::new(401, "unauthenticated", message)
    }

    /// The gates listed in `details`, when the refusal is about gates (422).
    pub fn unmet_gates(&self) -> Vec<GateCheck> {
        if self.code != "gates_not_met" {
            return Vec::new();
        }
        serde_json::from_value(self.details.clone()).unwrap_or_default()
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m)
            | ServerFnErrorErr::MissingArg(m)
            | ServerFnErrorErr::Deserialization(m) => AppError::bad_input(format!(
                "the form's values are not what Envline expects: {m}"
            )),
            ServerFnErrorErr::Request(m) => AppError::new(
                503,
                "unreachable",
                format!("Envline cannot be reached: {m}; check the connection and try again"),
            ),
            other => AppError::new(500, "internal", other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::engine::EngineError> for AppError {
    /// A fault inside Envline (a database error, a broken clone) is logged
    /// with its cause and a reference, and answered with the reference only:
    /// its text is for the operator, not for every client.
    fn from(e: crate::engine::EngineError) -> Self {
        if let crate::engine::EngineError::Internal(cause) = &e {
            use rand::RngCore;
            let reference = format!("{:08x}", rand::rng().next_u32());
            tracing::error!(reference = %reference, "internal error: {cause}");
            return AppError {
                status: 500,
                code: "internal".into(),
                message: format!(
                    "something went wrong inside Envline; the server's log has the cause under reference {reference}"
                ),
                details: serde_json::json!({ "reference": reference }),
            };
        }
        AppError {
            status: e.status(),
            code: e.code().to_owned(),
            message: e.to_string(),
            details: e.details(),
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::AppError;
    use crate::engine::EngineError;

    #[test]
    fn an_internal_fault_is_answered_with_a_reference_not_its_cause() {
        let e = AppError::from(EngineError::Internal(
            "database: no such table: secrets_of_the_operator".into(),
        ));
        assert_eq!((e.status, e.code.as_str()), (500, "internal"));
        assert!(
            !e.message.contains("secrets_of_the_operator"),
            "{}",
            e.message
        );
        let reference = e.details["reference"].as_str().unwrap();
        assert_eq!(reference.len(), 8);
        assert!(e.message.contains(reference), "{}", e.message);
        // Other refusals keep their words.
        let e = AppError::from(EngineError::BadInput("give a reason".into()));
        assert_eq!(e.message, "give a reason");
    }
}
