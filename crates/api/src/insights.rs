//! Delivery figures per environment, computed exactly from the audit log
//! (`GET /api/v1/insights`, the Insights page, `envline insights`).
//!
//! - A *deployment* is a forward move that landed in the environment: a
//!   promotion (S1, S6) or a cherry-pick (S5). Rollbacks, resets,
//!   realignments and hotfix resets are not.
//! - A deployment *failed* when the environment was later rolled back from
//!   it, reset away from it by hotfix mode, or its commit got a failed test
//!   in that environment while it was deployed.
//! - *Lead time* of a commit: from its committer time to the deployment that
//!   first brought it into the environment (every commit of the range, not
//!   only the tip).
//! - *Time to restore*: from a failure (the rollback, the hotfix reset or
//!   the failed test) to the next deployment into that environment.

use serde::{Deserialize, Serialize};

/// The four figures of one environment over a window, with their weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    pub environment: String,
    /// The window's start (RFC 3339, included).
    pub since: String,
    /// The window's end (RFC 3339, excluded).
    pub until: String,
    /// Deployments that landed in the window.
    pub deployments: u64,
    /// Of those, the ones that failed.
    pub failed_deployments: u64,
    pub deployments_per_week: f64,
    /// Failed deployments / deployments; `null` without deployments.
    pub change_failure_rate: Option<f64>,
    pub lead_time_seconds: LeadTime,
    pub time_to_restore_seconds: TimeToRestore,
    /// The same figures week by week (weeks start on Monday, UTC), oldest
    /// first: the trend.
    pub series: Vec<InsightsWeek>,
}

/// Lead times of the commits deployed in a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadTime {
    /// `null` when no commit was deployed.
    pub median: Option<i64>,
    pub p90: Option<i64>,
    /// How many commits the figures are over.
    pub commits: u64,
}

/// Times to restore of the failures of a window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeToRestore {
    /// `null` when no failure was restored.
    pub median: Option<i64>,
    /// Failures in the window.
    pub failures: u64,
    /// Of those, the ones a later deployment restored.
    pub restored: u64,
}

/// One week of an environment's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InsightsWeek {
    /// The Monday the week starts on (UTC date).
    pub week: String,
    pub deployments: u64,
    pub failed_deployments: u64,
    pub change_failure_rate: Option<f64>,
    pub lead_time_median_seconds: Option<i64>,
    pub time_to_restore_median_seconds: Option<i64>,
}

/// Every environment's figures: `GET /api/v1/insights` without `environment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InsightsList {
    pub environments: Vec<Insights>,
}

/// The query of `GET /api/v1/insights`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct InsightsQuery {
    /// One environment; all when absent.
    pub environment: Option<String>,
    /// The window's start: RFC 3339, a UTC date, or a span back from now
    /// (`30d`, `12w`, `48h`). Default: 30 days before `until`.
    pub since: Option<String>,
    /// The window's end, in the same forms. Default: now.
    pub until: Option<String>,
}

/// The answer of `GET /api/v1/insights`: one environment's figures when
/// it names one, else every environment's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum InsightsAnswer {
    One(Insights),
    All(InsightsList),
}

/// Seconds as people read a duration, to about two units: `45s`, `3h 20m`,
/// `2days 4h`.
pub fn span_text(seconds: i64) -> String {
    let seconds = seconds.max(0) as u64;
    let rounded = match seconds {
        s if s >= 86_400 => s / 3_600 * 3_600,
        s if s >= 3_600 => s / 60 * 60,
        s => s,
    };
    humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string()
}

#[cfg(test)]
mod tests {
    use super::span_text;

    #[test]
    fn spans_read_to_about_two_units() {
        assert_eq!(span_text(45), "45s");
        assert_eq!(span_text(3 * 3600 + 20 * 60 + 7), "3h 20m");
        assert_eq!(span_text(2 * 86_400 + 4 * 3600 + 59), "2days 4h");
        assert_eq!(span_text(-5), "0s");
    }
}
