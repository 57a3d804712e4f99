//! Delivery figures per environment, exact, from the audit log: the four
//! keys of DORA (deployment frequency, lead time, change failure rate, time
//! to restore) with their weeks. The definitions are in
//! [`envline_api::Insights`]'s module and in docs/design.md §8; here they
//! are computed from an environment's moves (the audit log), its failed
//! tests, and the commits each deployment brought (the clone).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Duration, TimeDelta, Utc};
use envline_api::{AuditAction, Insights, InsightsWeek, LeadTime, TimeToRestore};
use gix::ObjectId;

use crate::EngineError;
use crate::config::Config;
use crate::git::GitRepo;
use crate::store::{self, LedgerMove, Pool};
use crate::view::with_git;

/// The window figures are computed over: `since` included, `until` not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// How far back the window reaches when `since` is not given.
pub const DEFAULT_SPAN_DAYS: i64 = 30;

impl Window {
    /// The window a person or a script asked for: each end RFC 3339, a UTC
    /// date, or a span back from `now` (`30d`, `12w`, `48h`); `until`
    /// defaults to now, `since` to 30 days before `until`.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Window, String> {
        let until = match until.map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => point("until", text, now)?,
            None => now,
        };
        let since = match since.map(str::trim).filter(|t| !t.is_empty()) {
            Some(text) => point("since", text, now)?,
            None => until - Duration::days(DEFAULT_SPAN_DAYS),
        };
        if since >= until {
            return Err(format!(
                "`since` ({}) is not before `until` ({}): give a window that starts before it ends",
                since.to_rfc3339(),
                until.to_rfc3339()
            ));
        }
        Ok(Window { since, until })
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        self.since <= at && at < self.until
    }

    fn weeks(&self) -> f64 {
        // Never zero: `parse` keeps `since` before `until`.
        ((self.until - self.since).num_milliseconds().max(1)) as f64 / (7.0 * 86_400_000.0)
    }
}

/// One end of a window: a span back from `now`, or a time [`store::parse_time`] reads.
fn point(field: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let span = |unit: char, per: i64| {
        text.strip_suffix(unit)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| (0..=100_000).contains(n))
            .map(|n| Duration::seconds(n * per))
    };
    if let Some(back) = span('h', 3_600)
        .or_else(|| span('d', 86_400))
        .or_else(|| span('w', 7 * 86_400))
    {
        return Ok(now - back);
    }
    let stored = store::parse_time(field, text)
        .map_err(|e| format!("{e}, or a span back from now like 30d, 12w or 48h"))?;
    Ok(parse_stored(&stored).expect("parse_time writes RFC 3339"))
}

fn parse_stored(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A deployment as the figures see it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub at: DateTime<Utc>,
    pub commit: String,
    /// The committer times of the commits it brought into the environment
    /// first (seconds since the epoch).
    pub first_brought: Vec<i64>,
}

/// What the figures of one environment are computed from: its moves and
/// failed tests, oldest first, and the commits each deployment brought.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub deployments: Vec<Deployment>,
    /// Rollbacks and hotfix resets: when, and the commit they moved away from.
    pub moves_away: Vec<(DateTime<Utc>, String)>,
    /// Failed tests: when, and of which commit.
    pub failed_tests: Vec<(DateTime<Utc>, String)>,
}

/// The figures of `environment` over `window` (see the module).
pub fn figures(environment: &str, ledger: &Ledger, window: &Window) -> Insights {
    // Each deployment's first failure: the environment moved away from it,
    // or its commit failed a test there, after it landed.
    let mut failed_at: Vec<Option<DateTime<Utc>>> = vec![None; ledger.deployments.len()];
    let failures = ledger.moves_away.iter().chain(&ledger.failed_tests);
    for (at, commit) in failures {
        let culprit = ledger
            .deployments
            .iter()
            .rposition(|d| d.at <= *at && d.commit == *commit);
        if let Some(i) = culprit {
            failed_at[i] = Some(failed_at[i].map_or(*at, |t| t.min(*at)));
        }
    }
    // Time to restore: from a failure to the next deployment after it.
    let restored_after = |at: DateTime<Utc>| {
        ledger
            .deployments
            .iter()
            .find(|d| d.at > at)
            .map(|d| (d.at - at).num_seconds())
    };

    let monday = |at: DateTime<Utc>| {
        let date = at.date_naive();
        date - TimeDelta::days(i64::from(date.weekday().num_days_from_monday()))
    };
    let mut weeks: Vec<WeekTally> = Vec::new();
    let mut week = monday(window.since);
    while week.and_hms_opt(0, 0, 0).expect("midnight").and_utc() < window.until {
        weeks.push(WeekTally {
            week,
            ..WeekTally::default()
        });
        week += TimeDelta::days(7);
    }
    let (first_week, week_count) = (monday(window.since), weeks.len() as i64);
    let week_of = |at: DateTime<Utc>| {
        let index = (monday(at) - first_week).num_days() / 7;
        (0..week_count).contains(&index).then_some(index as usize)
    };
    let mut total = WeekTally::default();
    for (deployment, failed) in ledger.deployments.iter().zip(&failed_at) {
        if !window.contains(deployment.at) {
            continue;
        }
        let leads = deployment
            .first_brought
            .iter()
            .map(|t| (deployment.at.timestamp() - t).max(0));
        let w = week_of(deployment.at);
        for tally in std::iter::once(&mut total).chain(w.and_then(|w| weeks.get_mut(w))) {
            tally.deployments += 1;
            tally.failed += u64::from(failed.is_some());
            tally.leads.extend(leads.clone());
        }
    }
    for failed in failed_at.iter().flatten() {
        if !window.contains(*failed) {
            continue;
        }
        let restore = restored_after(*failed);
        let w = week_of(*failed);
        for tally in std::iter::once(&mut total).chain(w.and_then(|w| weeks.get_mut(w))) {
            tally.failures += 1;
            tally.restores.extend(restore);
        }
    }

    let mut leads = total.leads.clone();
    leads.sort_unstable();
    let mut restores = total.restores.clone();
    restores.sort_unstable();
    Insights {
        environment: environment.to_owned(),
        since: window
            .since
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        until: window
            .until
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        deployments: total.deployments,
        failed_deployments: total.failed,
        deployments_per_week: round2(total.deployments as f64 / window.weeks()),
        change_failure_rate: total.rate(),
        lead_time_seconds: LeadTime {
            median: median(&leads),
            p90: nearest_rank(&leads, 0.9),
            commits: leads.len() as u64,
        },
        time_to_restore_seconds: TimeToRestore {
            median: median(&restores),
            failures: total.failures,
            restored: restores.len() as u64,
        },
        series: weeks.into_iter().map(WeekTally::into_week).collect(),
    }
}

/// What one week (or the whole window) adds up to.
#[derive(Debug, Clone, Default)]
struct WeekTally {
    week: chrono::NaiveDate,
    deployments: u64,
    failed: u64,
    leads: Vec<i64>,
    failures: u64,
    restores: Vec<i64>,
}

impl WeekTally {
    fn rate(&self) -> Option<f64> {
        (self.deployments > 0).then(|| round2(self.failed as f64 / self.deployments as f64))
    }

    fn into_week(mut self) -> InsightsWeek {
        self.leads.sort_unstable();
        self.restores.sort_unstable();
        InsightsWeek {
            week: self.week.to_string(),
            deployments: self.deployments,
            failed_deployments: self.failed,
            change_failure_rate: self.rate(),
            lead_time_median_seconds: median(&self.leads),
            time_to_restore_median_seconds: median(&self.restores),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The median of sorted values (the mean of the middle two when even).
fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The nearest-rank percentile `p` (0–1) of sorted values.
fn nearest_rank(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The delivery figures service: reads an environment's ledger and keeps
/// what each deployment brought (audit events never change, so that is
/// computed once per deployment).
pub struct Delivery {
    config: Arc<Config>,
    git: Arc<GitRepo>,
    pool: Pool,
    /// The commits (with committer times) each deployment's range holds,
    /// by audit event id.
    ranges: Mutex<lru::LruCache<i64, Range>>,
}

/// The commits of one deployment's range, each with its committer time.
type Range = Arc<Vec<(ObjectId, i64)>>;

/// How many deployments' ranges are kept.
const RANGES_KEPT: usize = 20_000;

impl Delivery {
    pub(crate) fn new(config: Arc<Config>, git: Arc<GitRepo>, pool: Pool) -> Delivery {
        Delivery {
            config,
            git,
            pool,
            ranges: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(RANGES_KEPT).expect("not zero"),
            )),
        }
    }

    /// The figures of one environment, or of each (in pipeline order).
    pub async fn insights(
        &self,
        environment: Option<&str>,
        window: &Window,
    ) -> Result<Vec<Insights>, EngineError> {
        let names: Vec<String> = match environment {
            Some(name) => {
                let env = self.config.pipeline.environment(name).ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "unknown environment `{name}`; the environments are {}",
                        self.config.pipeline.names().join(", ")
                    ))
                })?;
                vec![env.name.clone()]
            }
            None => self.config.pipeline.names(),
        };
        let mut all = Vec::with_capacity(names.len());
        for name in names {
            let ledger = self.ledger(&name, window.until).await?;
            all.push(figures(&name, &ledger, window));
        }
        Ok(all)
    }

    /// An environment's ledger up to `until`.
    async fn ledger(&self, environment: &str, until: DateTime<Utc>) -> Result<Ledger, EngineError> {
        let moves = store::ledger_of(&self.pool, environment).await?;
        let mut ledger = Ledger::default();
        let mut seen: HashSet<ObjectId> = HashSet::new();
        for m in &moves {
            let Some(at) = parse_stored(&m.at) else {
                continue;
            };
            match m.action {
                AuditAction::Promote | AuditAction::CherryPick => {
                    let Some(new) = m.new.clone() else { continue };
                    // Every deployment counts for "first brought", also
                    // those after the window (they bring nothing earlier).
                    if at >= until {
                        break;
                    }
                    let range = self.range(m).await?;
                    let first_brought = range
                        .iter()
                        .filter(|(id, _)| seen.insert(*id))
                        .map(|(_, time)| *time)
                        .collect();
                    ledger.deployments.push(Deployment {
                        at,
                        commit: new,
                        first_brought,
                    });
                }
                _ => {
                    if let Some(old) = m.old.clone() {
                        ledger.moves_away.push((at, old));
                    }
                }
            }
        }
        for (commit, at) in store::failures_in(&self.pool, environment).await? {
            if let Some(at) = parse_stored(&at) {
                ledger.failed_tests.push((at, commit));
            }
        }
        Ok(ledger)
    }

    /// The commits a deployment's range `old..new` holds, with their
    /// committer times (only `new` when the branch was new).
    async fn range(&self, m: &LedgerMove) -> Result<Range, EngineError> {
        if let Some(kept) = self.ranges.lock().expect("ranges").get(&m.id) {
            return Ok(kept.clone());
        }
        let parse = |hex: &Option<String>| {
            hex.as_deref()
                .and_then(|h| ObjectId::from_hex(h.as_bytes()).ok())
        };
        let (old, new) = (parse(&m.old), parse(&m.new));
        let Some(new) = new else {
            return Ok(Arc::default());
        };
        let commits = with_git(&self.git, move |git| git.commit_times_between(old, new)).await?;
        let commits = Arc::new(commits);
        self.ranges
            .lock()
            .expect("ranges")
            .put(m.id, commits.clone());
        Ok(commits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(day: i64, hour: i64) -> DateTime<Utc> {
        // 2026-11-02 is a Monday.
        DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::days(day)
            + Duration::hours(hour)
    }

    fn deploy(at: DateTime<Utc>, commit: &str, committed: &[DateTime<Utc>]) -> Deployment {
        Deployment {
            at,
            commit: commit.into(),
            first_brought: committed.iter().map(|c| c.timestamp()).collect(),
        }
    }

    fn window() -> Window {
        Window {
            since: t(0, 0),
            until: t(14, 0),
        }
    }

    #[test]
    fn a_quiet_environment_has_no_figures_only_zero_counts() {
        let f = figures("qa", &Ledger::default(), &window());
        assert_eq!(f.deployments, 0);
        assert_eq!(f.change_failure_rate, None);
        assert_eq!(f.lead_time_seconds.median, None);
        assert_eq!(f.time_to_restore_seconds.median, None);
        assert_eq!(f.series.len(), 2, "two weeks");
        assert_eq!(f.series[0].week, "2026-11-02");
    }

    #[test]
    fn lead_time_counts_every_commit_of_each_range_and_restores_run_to_the_next_deployment() {
        let ledger = Ledger {
            deployments: vec![
                // Two commits, made 1 h and 3 h before.
                deploy(t(1, 10), "a", &[t(1, 9), t(1, 7)]),
                // Rolled back from two hours later, restored by the next.
                deploy(t(2, 10), "b", &[t(2, 6)]),
                deploy(t(2, 15), "c", &[t(2, 14)]),
                // Its commit failed a test in the environment.
                deploy(t(8, 10), "d", &[t(8, 0)]),
                deploy(t(9, 10), "e", &[]),
            ],
            moves_away: vec![(t(2, 12), "b".into())],
            failed_tests: vec![(t(8, 11), "d".into()), (t(8, 9), "old".into())],
        };
        let f = figures("qa", &ledger, &window());
        assert_eq!(f.deployments, 5);
        assert_eq!(f.failed_deployments, 2);
        assert_eq!(f.change_failure_rate, Some(0.4));
        assert_eq!(f.deployments_per_week, 2.5);
        // Leads: 1h, 3h, 4h, 1h, 10h -> sorted 1,1,3,4,10 h.
        assert_eq!(f.lead_time_seconds.commits, 5);
        assert_eq!(f.lead_time_seconds.median, Some(3 * 3600));
        assert_eq!(f.lead_time_seconds.p90, Some(10 * 3600));
        // Restores: 3 h (b at 12:00 -> c at 15:00), 23 h (d at day 8 11:00 -> e).
        assert_eq!(f.time_to_restore_seconds.failures, 2);
        assert_eq!(f.time_to_restore_seconds.median, Some((3 + 23) * 3600 / 2));
        assert_eq!(f.series[0].deployments, 3);
        assert_eq!(f.series[0].failed_deployments, 1);
        assert_eq!(f.series[1].change_failure_rate, Some(0.5));
        assert_eq!(f.series[1].time_to_restore_median_seconds, Some(23 * 3600));
    }

    #[test]
    fn a_window_counts_what_landed_inside_it() {
        let ledger = Ledger {
            deployments: vec![
                deploy(t(-3, 0), "a", &[t(-4, 0)]),
                deploy(t(3, 0), "b", &[t(2, 0)]),
            ],
            moves_away: vec![(t(3, 1), "b".into())],
            failed_tests: vec![],
        };
        let f = figures("qa", &ledger, &window());
        assert_eq!(f.deployments, 1);
        assert_eq!(f.time_to_restore_seconds.failures, 1);
        assert_eq!(f.time_to_restore_seconds.restored, 0, "not restored yet");
        assert_eq!(f.time_to_restore_seconds.median, None);
    }

    #[test]
    fn windows_take_dates_times_and_spans() {
        let now = t(10, 0);
        let w = Window::parse(Some("7d"), None, now).unwrap();
        assert_eq!(w.since, t(3, 0));
        assert_eq!(w.until, now);
        let w = Window::parse(None, Some("2026-11-05"), now).unwrap();
        assert_eq!(w.until, t(3, 0));
        assert_eq!(w.since, t(3, 0) - Duration::days(30));
        let e = Window::parse(Some("soon"), None, now).unwrap_err();
        assert!(e.contains("`since`") && e.contains("30d"), "{e}");
        let e = Window::parse(Some("1h"), Some("2h"), now).unwrap_err();
        assert!(e.contains("not before"), "{e}");
    }
}
