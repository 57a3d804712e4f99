//! The change feed between replicas sharing a PostgreSQL database: every
//! change a replica makes is numbered by the database and announced on one
//! channel (`NOTIFY envline_changes`); every replica listens, fetches what
//! another one pushed, drops its cached tokens and hotfix mode, and then
//! tells its live pages, so a page on any replica shows a change made on
//! any other. On SQLite there is one server and no feed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};

use crate::Engine;
use crate::changes::Made;
use crate::ops::journal;

/// How long a catch-up that failed (the remote or the database away)
/// waits before it is tried again.
const RETRY_CATCH_UP: Duration = Duration::from_secs(2);

/// The channel changes are announced on.
const CHANNEL: &str = "envline_changes";

/// Other replicas' changes heard and not yet caught up with.
#[derive(Default)]
struct Heard {
    changes: Mutex<Vec<(u64, Made)>>,
    wake: Notify,
}

impl Heard {
    fn push(&self, number: u64, made: Made) {
        self.changes.lock().expect("lock").push((number, made));
        self.wake.notify_one();
    }
}

impl Engine {
    /// Runs the change feed, forever (`envline serve` spawns it); returns
    /// at once on SQLite.
    pub async fn run_feed(self: Arc<Self>) {
        let Some(url) = self.cluster.shared_url().map(str::to_owned) else {
            return;
        };
        let mut listener = loop {
            match listen(&url).await {
                Ok(listener) => break listener,
                Err(e) => {
                    tracing::warn!("change feed: cannot listen ({e}); trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        // Numbers go on from the database's, as every replica's do (0
        // before the first change, which is 1).
        if let Ok((last,)) = sqlx::query_as::<_, (i64,)>(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM envline_change_numbers",
        )
        .fetch_one(&self.pool)
        .await
        {
            self.changes
                .number_from(u64::try_from(last).unwrap_or_default());
        }
        let (outbound, announce) = mpsc::unbounded_channel();
        self.changes.send_to(outbound);
        tokio::spawn(self.clone().announce(announce));
        // What this replica did as it started (settling a dead replica's
        // intents, a first fetch) was not announced: the others catch up.
        self.changes.changed();
        let heard = Arc::new(Heard::default());
        tokio::spawn(self.clone().catch_up_with(heard.clone()));
        let me = self.cluster.replica().to_owned();
        loop {
            match listener.try_recv().await {
                Ok(Some(notice)) => {
                    let Some((number, replica, made, sent)) = parse(notice.payload()) else {
                        tracing::warn!("change feed: unreadable notice {:?}", notice.payload());
                        continue;
                    };
                    let now = chrono::Utc::now().timestamp_millis();
                    metrics::histogram!("envline_feed_lag_seconds")
                        .record((now - sent).max(0) as f64 / 1000.0);
                    if replica == me {
                        self.changes.numbered(number);
                    } else {
                        heard.push(number, made);
                    }
                }
                // The connection was lost and is back: what was announced
                // meanwhile is unknown, so catch up as after a change.
                Ok(None) => heard.push(self.changes.last_number(), Made::Changed),
                // What was announced while the connection was down is lost:
                // catch up once it may be back (retried until it works).
                Err(e) => {
                    tracing::warn!("change feed: {e}; listening again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    heard.push(self.changes.last_number(), Made::Changed);
                }
            }
        }
    }

    /// Numbers and announces this replica's changes, a burst as one.
    async fn announce(self: Arc<Self>, mut made: mpsc::UnboundedReceiver<Made>) {
        while let Some(first) = made.recv().await {
            let mut what = first;
            while let Ok(more) = made.try_recv() {
                if more == Made::Changed {
                    what = Made::Changed;
                }
            }
            let kind = match what {
                Made::Changed => "changed",
                Made::Touched => "touched",
            };
            let payload = format!(
                "{}:{kind}:{}",
                self.cluster.replica(),
                chrono::Utc::now().timestamp_millis()
            );
            let sent = sqlx::query(
                "SELECT 1 FROM pg_notify('envline_changes', nextval('envline_change_numbers') || ':' || $1)",
            )
            .bind(payload)
            .execute(&self.pool)
            .await;
            if let Err(e) = sent {
                tracing::warn!(
                    "change feed: cannot announce a change ({e}); other replicas see it at their next refresh"
                );
                // This replica's pages still hear of it.
                self.changes.numbered(self.changes.last_number());
            }
        }
    }

    /// Catches up with other replicas' changes as they are heard: hotfix
    /// mode from the database, cached tokens dropped, the clone fetched
    /// when they moved refs; then cached views go stale and pages are told.
    async fn catch_up_with(self: Arc<Self>, heard: Arc<Heard>) {
        loop {
            heard.wake.notified().await;
            let changes = std::mem::take(&mut *heard.changes.lock().expect("lock"));
            let Some(number) = changes.iter().map(|(n, _)| *n).max() else {
                continue;
            };
            let made = if changes.iter().any(|(_, m)| *m == Made::Changed) {
                Made::Changed
            } else {
                Made::Touched
            };
            self.people.forget_cached_tokens();
            if let Err(e) = self.follow_others().await {
                tracing::warn!(
                    "change feed: cannot catch up with another replica's change ({e}); trying again in {} s",
                    RETRY_CATCH_UP.as_secs()
                );
                let heard = heard.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_CATCH_UP).await;
                    heard.push(number, made);
                });
            }
            self.changes.made_elsewhere(number, made);
        }
    }

    /// Brings the clone and hotfix mode to what other replicas made, without
    /// the ref locks of the database (nothing is decided here): the refs an
    /// operation of this process works on are left to it.
    async fn follow_others(&self) -> Result<(), crate::EngineError> {
        journal::follow_hotfix_mode(self).await?;
        if !journal::clone_behind(self, None).await? {
            return Ok(());
        }
        let mut names: Vec<String> = journal::tracked_branches(self)
            .into_iter()
            .map(|(branch, _)| branch)
            .collect();
        names.push(crate::git::AUDIT_REF.to_owned());
        let (_everything, idle) = self.cluster.idle_refs(&names).await;
        let _fetching = self.cluster.lock_fetch().await;
        let fetched = self.git(|git| git.fetch_staged()).await;
        // The pages' "last fetched" and /readyz go by every fetch.
        self.refresher
            .fetched(fetched.as_ref().err().map(|e| e.to_string()));
        fetched?;
        let refs: Vec<String> = idle.iter().map(|(name, _)| name.clone()).collect();
        let anchor_free = refs.iter().any(|r| r == crate::git::AUDIT_REF);
        self.git(move |git| git.adopt_fetched(&refs)).await?;
        if anchor_free {
            self.anchoring.fetched();
        }
        Ok(())
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// `NUMBER:REPLICA:KIND:SENT_MS`.
fn parse(payload: &str) -> Option<(u64, &str, Made, i64)> {
    let mut parts = payload.splitn(4, ':');
    let number = parts.next()?.parse().ok()?;
    let replica = parts.next()?;
    let made = match parts.next()? {
        "changed" => Made::Changed,
        "touched" => Made::Touched,
        _ => return None,
    };
    let sent = parts.next()?.parse().ok()?;
    Some((number, replica, made, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_read_back_as_announced() {
        assert_eq!(
            parse("42:00ab:changed:1700000000000"),
            Some((42, "00ab", Made::Changed, 1_700_000_000_000))
        );
        assert_eq!(parse("42:00ab:moved:1"), None);
        assert_eq!(parse("x:00ab:changed:1"), None);
    }
}
