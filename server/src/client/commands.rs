//! One function per client command: build the API request, send it, print
//! the answer for people or as JSON, and say how it ended.

use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use clap::Args;
use envline_api::{
    AuditEvents, Decision, DecisionInput, EnvironmentView, HoldInput, HoldKind, HoldList, Insights,
    InsightsList, PreviewList, PromoteInput, Promoted, PromotionPreview, PromotionView,
    RequestState, RollbackInput, RollbackPlan, RollbackPlans, VerificationStatus, VerificationView,
    VerifyInput, Viewer,
};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::render::{self, short};
use super::settings::{self, SavedLogin};
use super::{Answer, Client, Outcome, Output};

/// `envline promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment(s) to promote: names or globs (prod-*), promoted together.
    #[arg(required = true, value_name = "ENV")]
    pub environments: Vec<String>,
    /// The commit to promote (default: the head of the environment it comes from).
    #[arg(long)]
    pub commit: Option<String>,
    /// Promote from this environment instead of the configured one.
    #[arg(long)]
    pub from: Option<String>,
    /// Why, for the audit log and the approvers.
    #[arg(long)]
    pub reason: Option<String>,
    /// Wait until the promotion executes or is rejected (after its approvals).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits (30s, 10m, 2h); then it exits 3 if still awaiting approval.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `envline verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub environment: String,
    pub commit: String,
    #[arg(long, value_parser = parse_status)]
    pub status: VerificationStatus,
    /// A link to the test run.
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
}

fn parse_status(text: &str) -> Result<VerificationStatus, String> {
    envline_api::parse_choice("--status", text)
}

/// `envline approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request's number (`envline status` shows open requests).
    pub id: i64,
    /// Reject the request instead of approving it.
    #[arg(long)]
    pub reject: bool,
    #[arg(long)]
    pub comment: Option<String>,
}

/// `envline rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Environments (names or globs) to move back.
    #[arg(required = true, value_name = "ENV_OR_GLOB")]
    pub environments: Vec<String>,
    /// The commit to go back to (default: where each environment was before its last change).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
}

/// `envline hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    #[arg(required = true, value_name = "ENV")]
    pub environments: Vec<String>,
    /// Why: the hold shows it to everyone it stops.
    #[arg(long, required = true)]
    pub reason: String,
    /// When the hold ends by itself: a time (2026-12-24T08:00:00Z) or a duration from now (2h, 3d).
    #[arg(long)]
    pub until: Option<String>,
}

/// `envline audit` (without a subcommand).
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub environment: Option<String>,
    #[arg(long)]
    pub actor: Option<String>,
    /// promote, approve, rollback, hold, … (`envline audit --action promote`).
    #[arg(long)]
    pub action: Option<String>,
    /// Events from: a time (2026-11-01, 2026-11-01T08:00:00Z) or a duration back from now (24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Events until: a time or a duration back from now.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many events, newest first (a table shows 50 unless told).
    #[arg(long)]
    pub limit: Option<i64>,
    /// table for people; csv or json stream every matching event as the API exports it.
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
}

/// `envline insights`.
#[derive(Debug, Args)]
pub struct InsightsArgs {
    /// One environment; every one when left out.
    #[arg(long)]
    pub environment: Option<String>,
    /// The window's start: a time (2026-11-01, 2026-11-01T08:00:00Z) or a span back from now (30d, 12w, 48h); 30 days before `--until` when left out.
    #[arg(long)]
    pub since: Option<String>,
    /// The window's end, in the same forms; now when left out.
    #[arg(long)]
    pub until: Option<String>,
}

/// How `envline audit` writes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Table,
    Csv,
    Json,
}

/// Prints the API's JSON as it came.
fn print_json(a: &Answer) {
    say!("{}", a.text.trim_end());
}

/// Prints an API refusal (its JSON on stdout for scripts, the reasons on
/// stderr for people) and says what it means for the exit code.
fn refused(c: &Client, a: &Answer) -> Outcome {
    match c.output {
        Output::Json => print_json(a),
        Output::Table => eprintln!("envline: {}", render::refusal(&a.error())),
    }
    Outcome::of_error(a.status)
}

/// What became of a request: its answer for a table, or already printed
/// (a refusal, or the API's JSON for a script) with how the command ends.
enum Reply<T> {
    ForTable(T),
    Printed(Outcome),
}

/// Sends one request; prints a refusal, or the JSON when scripts asked for
/// it, and otherwise hands back the answer for a table.
async fn call<T: DeserializeOwned>(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Reply<T>, String> {
    let a = c.send(method, path, body).await?;
    if !a.ok() {
        return Ok(Reply::Printed(refused(c, &a)));
    }
    if c.output == Output::Json {
        print_json(&a);
        return Ok(Reply::Printed(Outcome::Done));
    }
    Ok(Reply::ForTable(a.parse()?))
}

/// `envline status`: every environment, where it is and what waits.
pub async fn status(c: &Client) -> Result<Outcome, String> {
    #[derive(Deserialize)]
    struct Pipeline {
        root: String,
        environments: Vec<EnvironmentView>,
        refresh_error: Option<String>,
    }
    let p: Pipeline = match call(c, Method::GET, "/api/v1/environments", None).await? {
        Reply::ForTable(p) => p,
        Reply::Printed(outcome) => return Ok(outcome),
    };
    say!("{}", render::status(&p.root, &p.environments));
    if let Some(e) = p.refresh_error {
        eprintln!("envline: the server's last fetch of the remote failed: {e}");
    }
    Ok(Outcome::Done)
}

/// What a request's state means for the exit code.
fn outcome_of(r: &PromotionView) -> Outcome {
    match r.state {
        RequestState::Done | RequestState::Executing => Outcome::Done,
        RequestState::AwaitingApproval => Outcome::AwaitingApproval,
        RequestState::Rejected | RequestState::Cancelled => Outcome::Refused,
        RequestState::Failed => Outcome::Failed,
    }
}

/// Reads one request or `{"promotions": [...]}`.
fn requests_of(a: &Answer) -> Result<Vec<PromotionView>, String> {
    Ok(a.parse::<Promoted>()?.into_requests())
}

/// An input as the body the API takes.
fn body_of(input: &impl Serialize) -> Result<serde_json::Value, String> {
    serde_json::to_value(input).map_err(|e| format!("cannot write the request: {e}"))
}

/// `envline promote`: what moved, or what waits for approvers, or why not.
pub async fn promote(c: &Client, args: PromoteArgs) -> Result<Outcome, String> {
    let (environment, environments) = match args.environments.as_slice() {
        [one] => (Some(one.clone()), None),
        _ => (None, Some(args.environments.clone())),
    };
    let body = body_of(&PromoteInput {
        environment,
        environments,
        commit: args.commit.clone(),
        from: args.from.clone(),
        reason: args.reason.clone(),
    })?;
    // For people: the commits that move, with their subjects.
    let previews: Vec<PromotionPreview> = if c.output == Output::Table {
        let a = c
            .send(Method::POST, "/api/v1/promotions/preview", Some(&body))
            .await?;
        a.parse::<PreviewList>()
            .map(|p| p.previews)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let a = c
        .send(Method::POST, "/api/v1/promotions", Some(&body))
        .await?;
    if !a.ok() {
        return Ok(refused(c, &a));
    }
    let mut requests = requests_of(&a)?;
    if c.output == Output::Table {
        for r in &requests {
            say!("{}", render::request_line(r));
            let moved = previews.iter().find(|p| {
                p.environment == r.environment
                    && p.candidate.as_ref().is_some_and(|c| c.id == r.to_commit)
            });
            if let Some(p) = moved.filter(|_| r.state != RequestState::Failed) {
                if r.state != RequestState::Done && !p.commits.is_empty() {
                    say!("  would move:");
                }
                for m in &p.commits {
                    say!("  {} {}", m.commit.short, m.commit.subject);
                }
                if p.commits_total > p.commits.len() {
                    say!("  … and {} more", p.commits_total - p.commits.len());
                }
            }
        }
    }
    let mut last = a;
    // Approved but still pushing when --wait gave up: not known to be done.
    let mut timed_out = false;
    if args.wait && requests.iter().any(|r| pending(r.state)) {
        let before: Vec<RequestState> = requests.iter().map(|r| r.state).collect();
        let (views, answers) = match wait_for(c, requests, args.timeout).await? {
            Ok(waited) => waited,
            Err(refusal) => return Ok(refusal),
        };
        requests = views;
        last = answers;
        timed_out = requests.iter().any(|r| r.state == RequestState::Executing);
        if c.output == Output::Table {
            for (r, was) in requests.iter().zip(before) {
                if r.state != was {
                    say!("{}", render::request_line(r));
                }
            }
        }
    }
    if c.output == Output::Json {
        print_json(&last);
    }
    let outcome = requests
        .iter()
        .map(outcome_of)
        .max()
        .unwrap_or(Outcome::Done);
    Ok(if timed_out {
        outcome.max(Outcome::Failed)
    } else {
        outcome
    })
}

fn pending(state: RequestState) -> bool {
    matches!(
        state,
        RequestState::AwaitingApproval | RequestState::Executing
    )
}

/// Polls the requests until none waits, or the time is up; shows a spinner
/// on a terminal and a line per change otherwise. The server restarting or
/// answering 5xx meanwhile does not end the wait; a refusal (a revoked
/// token, say) does, with its outcome. Returns the last views and the API's
/// JSON of them (one object, or `{"promotions": [...]}`).
async fn wait_for(
    c: &Client,
    mut requests: Vec<PromotionView>,
    timeout: Duration,
) -> Result<Result<(Vec<PromotionView>, Answer), Outcome>, String> {
    let deadline = Instant::now() + timeout;
    let spinner = std::io::stderr().is_terminal().then(|| {
        let s = ProgressBar::new_spinner();
        s.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("template"));
        s.enable_steady_tick(Duration::from_millis(120));
        s
    });
    let tell = |text: String| match &spinner {
        Some(s) => s.set_message(text),
        None => eprintln!("envline: {text}"),
    };
    let mut texts: Vec<String> = requests
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    let mut said = String::new();
    let ended = loop {
        let now = requests
            .iter()
            .map(|r| format!("{}: {}", r.environment, render::request_note(r)))
            .collect::<Vec<_>>()
            .join("; ");
        if now != said {
            tell(format!("waiting: {now}"));
            said = now;
        }
        if !requests.iter().any(|r| pending(r.state)) || Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut refusal = None;
        for (r, text) in requests.iter_mut().zip(texts.iter_mut()) {
            match c
                .send(Method::GET, &format!("/api/v1/promotions/{}", r.id), None)
                .await
            {
                Ok(a) if a.ok() => {
                    *r = a.parse()?;
                    *text = a.text;
                }
                Ok(a) if a.status >= 500 => {
                    said.clear();
                    tell(format!("the server answered {}; still waiting", a.status));
                }
                Ok(a) => {
                    if let Some(s) = &spinner {
                        s.finish_and_clear();
                    }
                    refusal = Some(refused(c, &a));
                    break;
                }
                Err(unreachable) => {
                    said.clear();
                    tell(format!("{unreachable}; still waiting"));
                }
            }
        }
        if refusal.is_some() {
            break refusal;
        }
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    if let Some(outcome) = ended {
        return Ok(Err(outcome));
    }
    if requests.iter().any(|r| pending(r.state)) {
        eprintln!(
            "envline: still waiting after {}; the request stays open",
            humantime::format_duration(timeout)
        );
    }
    let text = if texts.len() == 1 {
        texts.remove(0)
    } else {
        format!("{{\"promotions\":[{}]}}", texts.join(","))
    };
    Ok(Ok((requests, Answer { status: 200, text })))
}

/// `envline verify`: records a test result for exactly one commit.
pub async fn verify(c: &Client, args: VerifyArgs) -> Result<Outcome, String> {
    let body = body_of(&VerifyInput {
        environment: args.environment,
        commit: args.commit,
        status: args.status,
        url: args.url,
        summary: args.summary,
    })?;
    let v: VerificationView =
        match call(c, Method::POST, "/api/v1/verifications", Some(&body)).await? {
            Reply::ForTable(v) => v,
            Reply::Printed(outcome) => return Ok(outcome),
        };
    say!(
        "{} {}: {} (recorded by {})",
        v.environment,
        short(&v.commit),
        v.status,
        v.recorded_by
    );
    Ok(Outcome::Done)
}

/// `envline approve`: an approver's decision on a request.
pub async fn approve(c: &Client, args: ApproveArgs) -> Result<Outcome, String> {
    let body = body_of(&DecisionInput {
        decision: if args.reject {
            Decision::Reject
        } else {
            Decision::Approve
        },
        comment: args.comment,
    })?;
    let a = c
        .send(
            Method::POST,
            &format!("/api/v1/promotions/{}/approvals", args.id),
            Some(&body),
        )
        .await?;
    if !a.ok() {
        return Ok(refused(c, &a));
    }
    let r: PromotionView = a.parse()?;
    if c.output == Output::Json {
        print_json(&a);
    } else {
        say!("{}", render::request_line(&r));
    }
    Ok(if r.state == RequestState::Failed {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}

/// `envline rollback`: moves environments back, saying which commits leave.
pub async fn rollback(c: &Client, args: RollbackArgs) -> Result<Outcome, String> {
    let body = body_of(&RollbackInput {
        environments: args.environments,
        to: args.to,
        reason: args.reason,
    })?;
    let plans: Vec<RollbackPlan> = if c.output == Output::Table {
        c.send(Method::POST, "/api/v1/rollbacks/preview", Some(&body))
            .await?
            .parse::<RollbackPlans>()
            .map(|p| p.plans)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let moved: AuditEvents = match call(c, Method::POST, "/api/v1/rollbacks", Some(&body)).await? {
        Reply::ForTable(events) => events,
        Reply::Printed(outcome) => return Ok(outcome),
    };
    for e in moved.events {
        let env = e.environment.clone().unwrap_or_default();
        say!(
            "{env}: {} → {} (rolled back)",
            e.old.as_deref().map(short).unwrap_or("-"),
            e.new.as_deref().map(short).unwrap_or("-"),
        );
        if let Some(plan) = plans.iter().find(|p| p.environment == env) {
            for left in &plan.leaving {
                say!("  left: {} {}", left.short, left.subject);
            }
            if plan.leaving_total > plan.leaving.len() {
                say!("  … and {} more", plan.leaving_total - plan.leaving.len());
            }
            if plan.places_hold {
                say!(
                    "  its auto-promotion is held until someone releases the hold (`envline status` shows it)"
                );
            }
        }
    }
    Ok(Outcome::Done)
}

/// `envline hold`: stops promotions into environments, with a reason.
pub async fn hold(c: &Client, args: HoldArgs) -> Result<Outcome, String> {
    let until = args
        .until
        .as_deref()
        .map(|t| time_arg(t, Direction::Ahead))
        .transpose()?;
    let body = body_of(&HoldInput {
        environments: args.environments,
        reason: args.reason,
        kind: HoldKind::Promotion,
        starts_at: None,
        ends_at: until,
    })?;
    let placed: HoldList = match call(c, Method::POST, "/api/v1/holds", Some(&body)).await? {
        Reply::ForTable(holds) => holds,
        Reply::Printed(outcome) => return Ok(outcome),
    };
    for h in placed.holds {
        say!(
            "{}: hold #{} placed{}; `envline release {}` lifts it",
            h.environment,
            h.id,
            h.ends_at.map(|e| format!(" until {e}")).unwrap_or_default(),
            h.id
        );
    }
    Ok(Outcome::Done)
}

/// `envline release`: lifts a hold.
pub async fn release(c: &Client, id: i64) -> Result<Outcome, String> {
    let a = c
        .send(Method::DELETE, &format!("/api/v1/holds/{id}"), None)
        .await?;
    if !a.ok() {
        return Ok(refused(c, &a));
    }
    if c.output == Output::Json {
        say!("{}", json!({ "released": id }));
    } else {
        say!("hold #{id} released");
    }
    Ok(Outcome::Done)
}

/// `envline audit`: the log as a table, or every matching event as CSV or JSON.
pub async fn audit(c: &Client, args: AuditArgs) -> Result<Outcome, String> {
    let format = args.format.unwrap_or(match c.output {
        Output::Json => AuditFormat::Json,
        Output::Table => AuditFormat::Table,
    });
    let mut query = form_urlencoded::Serializer::new(String::new());
    let limit = match format {
        AuditFormat::Table => Some(args.limit.unwrap_or(50)),
        _ => args.limit,
    };
    query.append_pair(
        "format",
        if format == AuditFormat::Csv {
            "csv"
        } else {
            "json"
        },
    );
    for (key, value) in [
        ("environment", args.environment),
        ("actor", args.actor),
        ("action", args.action),
        (
            "since",
            args.since
                .map(|t| time_arg(&t, Direction::Back))
                .transpose()?,
        ),
        (
            "until",
            args.until
                .map(|t| time_arg(&t, Direction::Back))
                .transpose()?,
        ),
        ("limit", limit.map(|l| l.to_string())),
    ] {
        if let Some(v) = value {
            query.append_pair(key, &v);
        }
    }
    let path = format!("/api/v1/audit?{}", query.finish());
    if format != AuditFormat::Table {
        let mut out = std::io::stdout().lock();
        return Ok(match c.stream_to(&path, &mut out).await? {
            Ok(()) => {
                if format == AuditFormat::Json {
                    use std::io::Write;
                    let _ = writeln!(out);
                }
                Outcome::Done
            }
            Err(a) => {
                drop(out);
                refused(c, &a)
            }
        });
    }
    match call::<AuditEvents>(c, Method::GET, &path, None).await? {
        Reply::ForTable(page) => say!("{}", render::audit(&page.events)),
        Reply::Printed(outcome) => return Ok(outcome),
    }
    Ok(Outcome::Done)
}

/// `envline insights`: delivery figures per environment.
pub async fn insights(c: &Client, args: InsightsArgs) -> Result<Outcome, String> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("environment", args.environment.clone()),
        ("since", args.since),
        ("until", args.until),
    ] {
        if let Some(v) = value {
            query.append_pair(key, &v);
        }
    }
    let one = args.environment.is_some();
    let path = format!("/api/v1/insights?{}", query.finish());
    // The answer's shape follows the question (an untagged read of either
    // would not survive serde_json's exact numbers).
    let figures = if one {
        match call::<Insights>(c, Method::GET, &path, None).await? {
            Reply::ForTable(one) => vec![one],
            Reply::Printed(outcome) => return Ok(outcome),
        }
    } else {
        match call::<InsightsList>(c, Method::GET, &path, None).await? {
            Reply::ForTable(all) => all.environments,
            Reply::Printed(outcome) => return Ok(outcome),
        }
    };
    say!("{}", render::insights(&figures));
    Ok(Outcome::Done)
}

/// Which way a duration counts from now.
#[derive(Clone, Copy)]
enum Direction {
    Ahead,
    Back,
}

/// A time argument: a duration (2h, 7d) counted from now, or a time passed
/// on as given (the server says what it accepts).
fn time_arg(text: &str, direction: Direction) -> Result<String, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) => {
            let d = chrono::Duration::from_std(d).map_err(|_| format!("`{text}` is too long"))?;
            let now = chrono::Utc::now();
            let at = match direction {
                Direction::Ahead => now + d,
                Direction::Back => now - d,
            };
            Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }
        Err(_) => Ok(text.trim().to_string()),
    }
}

/// `envline login`: checks a token against the server, then saves both for
/// the next commands (mode 0600).
pub async fn login(
    server: Option<String>,
    token: Option<String>,
    output: Output,
) -> Result<Outcome, String> {
    let file = settings::login_file()?;
    let server = match server.or_else(|| settings::saved().map(|s| s.server)) {
        Some(s) => settings::normalize(&s)?,
        None => {
            return Err(
                "give the server: `envline login --server https://envline.example.com`".into(),
            );
        }
    };
    let token = match token.filter(|t| !t.trim().is_empty()) {
        Some(t) => t,
        None => read_token(&server)?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err("no token given; nothing was saved".into());
    }
    let target = settings::Target {
        server: server.clone(),
        token: Some(token.clone()),
    };
    let c = Client::new(target, output)?;
    let a = c.send(Method::GET, "/api/v1/me", None).await?;
    if !a.ok() {
        let outcome = refused(&c, &a);
        eprintln!("envline: nothing was saved");
        return Ok(outcome);
    }
    let me: Viewer = a.parse()?;
    if !me.signed_in {
        eprintln!("envline: {server} does not know this token; nothing was saved");
        return Ok(Outcome::NotAllowed);
    }
    settings::save(&file, &SavedLogin { server, token })?;
    match output {
        Output::Json => print_json(&a),
        Output::Table => say!(
            "signed in to {} as {} ({}); saved in {}",
            c.server(),
            me.user,
            me.roles.join(", "),
            file.display()
        ),
    }
    Ok(Outcome::Done)
}

/// A token from the terminal (not echoed), or the first line of piped input.
fn read_token(server: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!(
            "API token for {server} (make one on its Admin page or with `envline token create`): "
        ))
        .map_err(|e| format!("cannot read the token: {e}"))
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the token from standard input: {e}"))?;
        Ok(line)
    }
}

/// `envline logout`: forgets the saved server and token.
pub fn logout() -> Result<Outcome, String> {
    let file = settings::login_file()?;
    match std::fs::remove_file(&file) {
        Ok(()) => eprintln!("envline: removed {}", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("envline: not logged in ({} does not exist)", file.display())
        }
        Err(e) => return Err(format!("cannot remove {}: {e}", file.display())),
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_from_now_and_times_pass_through() {
        let back = time_arg("24h", Direction::Back).unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(&back).unwrap();
        let hours = (chrono::Utc::now() - t.to_utc()).num_hours();
        assert_eq!(hours, 24, "{back}");
        let ahead = time_arg("2h", Direction::Ahead).unwrap();
        assert!(ahead > back);
        assert_eq!(
            time_arg("2026-11-01", Direction::Back).unwrap(),
            "2026-11-01"
        );
    }

    #[test]
    fn outcomes_rank_the_worst_last() {
        assert!(Outcome::AwaitingApproval > Outcome::Done);
        assert!(Outcome::NotAllowed > Outcome::Refused);
        let v = [Outcome::Done, Outcome::AwaitingApproval];
        assert_eq!(v.iter().max(), Some(&Outcome::AwaitingApproval));
    }
}
