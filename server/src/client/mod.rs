//! The client commands (`envline status`, `promote`, `approve`, …): a CI
//! pipeline's or a person's way to the HTTP API of a running server, with
//! tables for people, the API's JSON for scripts, and exit codes a pipeline
//! can branch on.

/// `println!` that does not panic when stdout is closed (`envline audit | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod commands;
mod render;
pub mod settings;

use envline_api::{ErrorBody, ErrorCode, ErrorReply};
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use settings::Target;

/// How a client command ended: the process exit code a pipeline branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// 0: done.
    Done,
    /// 3: waiting for approvals.
    AwaitingApproval,
    /// 1: anything else (bad input, the server unreachable, a failed push…).
    Failed,
    /// 2: refused by a gate or a rule; the reasons are printed.
    Refused,
    /// 4: not allowed (401/403).
    NotAllowed,
}

impl Outcome {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Failed => 1,
            Outcome::Refused => 2,
            Outcome::AwaitingApproval => 3,
            Outcome::NotAllowed => 4,
        }
    }

    /// What an API error answer means for the exit code.
    pub fn of_error(status: u16) -> Outcome {
        match status {
            401 | 403 => Outcome::NotAllowed,
            409 | 422 => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }
}

/// The exit codes, for `--help` and the README.
pub const EXIT_CODES: &str = "Exit codes of the client commands:\n  \
    0  done\n  \
    1  anything else (bad input, server unreachable, a failed push)\n  \
    2  refused by a gate or a rule (the reasons are printed)\n  \
    3  awaiting approval (a promotion that needs approvers; `--wait` to wait for them)\n  \
    4  not allowed (no token, a revoked one, or a role missing)";

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    Table,
    /// The API's JSON as it came, for scripts.
    Json,
}

/// An answer from the API: its status and body.
pub struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`, or a message saying the server answered something else.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.text).map_err(|e| {
            format!(
                "the server's answer is not what this envline expects ({e}); \
                 is it an Envline server of the same version?"
            )
        })
    }

    /// The API's error, or one made from a body that is not the API's.
    pub fn error(&self) -> ErrorReply {
        serde_json::from_str::<ErrorBody>(&self.text)
            .map(|body| body.into_reply(self.status))
            .unwrap_or_else(|_| {
                ErrorReply::new(
                    self.status,
                    ErrorCode::Unexpected,
                    format!(
                        "the server answered {} without an Envline error: {}",
                        self.status,
                        self.text.chars().take(200).collect::<String>()
                    ),
                )
            })
    }
}

/// A connection to one Envline server.
pub struct Client {
    target: Target,
    http: reqwest::Client,
    pub output: Output,
}

impl Client {
    pub fn new(target: Target, output: Output) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A promotion pushes to the git remote; leave it time.
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("envline-cli/", env!("CARGO_PKG_VERSION")))
            // A followed redirect turns a POST into a GET (and drops the
            // token): say where the server is instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        Ok(Client {
            target,
            http,
            output,
        })
    }

    pub fn server(&self) -> &str {
        &self.target.server
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.target.server));
        if let Some(token) = &self.target.token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_redirection() {
            return Err(self.redirected(&response));
        }
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("the answer from {} broke off: {e}", self.server()))?;
        Ok(Answer { status, text })
    }

    /// Sends a GET and copies the answer to `out` as it arrives (long exports).
    pub async fn stream_to(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
    ) -> Result<Result<(), Answer>, String> {
        let mut response = self
            .request(Method::GET, path)
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status().is_redirection() {
            return Err(self.redirected(&response));
        }
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let text = response.text().await.unwrap_or_default();
            return Ok(Err(Answer { status, text }));
        }
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the answer from {} broke off: {e}", self.server()))?
        {
            out.write_all(&chunk)
                .map_err(|e| format!("cannot write the output: {e}"))?;
        }
        out.flush().map_err(|e| e.to_string())?;
        Ok(Ok(()))
    }

    fn redirected(&self, response: &reqwest::Response) -> String {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("elsewhere");
        format!(
            "{} answered {} and sends clients to {to}: give the server's own address with --server (or ENVLINE_SERVER); nothing was done",
            self.server(),
            response.status()
        )
    }

    fn unreachable(&self, e: reqwest::Error) -> String {
        let why = if e.is_timeout() {
            "it did not answer in time".to_string()
        } else if e.is_connect() {
            format!("cannot connect ({})", root_cause(&e))
        } else {
            root_cause(&e)
        };
        format!(
            "cannot reach the Envline server at {}: {why}; check --server or ENVLINE_SERVER",
            self.server()
        )
    }
}

/// The innermost error's message (reqwest wraps hyper wraps io).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
