//! The error the server functions answer with: the API's [`ErrorReply`]
//! (`{status, code, message, details}`), which the pages get typed so they
//! can list the unmet gates or name the missing permission instead of
//! showing a string. This wrapper only adds what Leptos needs of it.

use std::ops::{Deref, DerefMut};

use envline_api::{ErrorCode, ErrorReply};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Why something did not happen. Nothing moved when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct AppError(pub ErrorReply);

impl AppError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError(ErrorReply::new(status, code, message))
    }

    /// 400: the input is wrong.
    pub fn bad_input(message: impl Into<String>) -> AppError {
        AppError(ErrorReply::bad_input(message))
    }

    /// 401: nobody is signed in, or the token is unknown.
    pub fn unauthenticated(message: impl Into<String>) -> AppError {
        AppError(ErrorReply::unauthenticated(message))
    }
}

impl Deref for AppError {
    type Target = ErrorReply;

    fn deref(&self) -> &ErrorReply {
        &self.0
    }
}

impl DerefMut for AppError {
    fn deref_mut(&mut self) -> &mut ErrorReply {
        &mut self.0
    }
}

impl From<ErrorReply> for AppError {
    fn from(e: ErrorReply) -> Self {
        AppError(e)
    }
}

impl From<AppError> for ErrorReply {
    fn from(e: AppError) -> Self {
        e.0
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
                ErrorCode::Unreachable,
                format!("Envline cannot be reached: {m}; check the connection and try again"),
            ),
            other => AppError::new(500, ErrorCode::Internal, other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<envline_engine::EngineError> for AppError {
    /// Answered as the engine words it; an internal fault only by reference.
    fn from(e: envline_engine::EngineError) -> Self {
        AppError(ErrorReply::from(e))
    }
}
