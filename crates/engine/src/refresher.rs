//! Refreshes asked for without waiting: webhooks and the timer ask, one
//! worker task fetches. Requests that arrive while a refresh runs are folded
//! into one more refresh after it, so a burst of pushes (or of redelivered
//! webhooks) costs at most two fetches, never one per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{Engine, store};

/// The state of the last fetch of the remote.
#[derive(Debug, Clone, Default)]
pub struct RefreshState {
    /// When it ran.
    pub at: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The refresh service: the last fetch's outcome, the queue of refreshes
/// asked for, and how many ran. The refresh itself ([`Engine::refresh`])
/// settles the journal, so it is the engine's.
#[derive(Debug, Default)]
pub struct Refresher {
    state: RwLock<RefreshState>,
    queue: RefreshQueue,
    count: AtomicU64,
}

impl Refresher {
    /// Asks for a refresh without waiting for it (a webhook's push): it
    /// starts at once when none is running, else one more runs after the
    /// running one, shared by every request made meanwhile. Needs
    /// [`Engine::run_refresher`] running (`envline serve` starts it).
    pub fn request(&self) -> RefreshRequest {
        self.queue.request()
    }

    /// The last fetch's outcome.
    pub fn last(&self) -> RefreshState {
        self.state.read().expect("lock").clone()
    }

    /// How many refreshes ran since start-up (timed, asked for by webhooks
    /// or `POST /api/v1/refresh`, and the first one): what shows whether
    /// webhooks are deduplicated.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Records a fetch that just ended; true when its error differs from the
    /// last one's (the pages must show it, or stop showing it).
    pub(crate) fn fetched(&self, error: Option<String>) -> bool {
        let mut state = self.state.write().expect("lock");
        state.at = Some(store::now());
        let changed = state.error != error;
        state.error = error;
        changed
    }

    /// Counts a refresh that ran.
    pub(crate) fn ran(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// What became of a request for a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRequest {
    /// No refresh was running or waiting: the worker starts one now.
    Started,
    /// A refresh is already owed (not yet begun), or one is running and one
    /// more is now owed: this request shares the owed one, which begins after
    /// the request arrived and so sees its push.
    Queued,
}

/// The worker's state: whether a refresh runs, and whether one more is owed.
#[derive(Debug, Default)]
struct QueueState {
    running: bool,
    pending: bool,
}

/// Coalesces refresh requests for the one worker ([`Engine::run_refresher`]).
#[derive(Debug, Default)]
struct RefreshQueue {
    state: Mutex<QueueState>,
    wake: tokio::sync::Notify,
}

impl RefreshQueue {
    /// Asks for a refresh: at most one waits behind the running one.
    fn request(&self) -> RefreshRequest {
        let mut state = self.state.lock().expect("lock");
        if state.pending {
            return RefreshRequest::Queued;
        }
        state.pending = true;
        let answer = if state.running {
            RefreshRequest::Queued
        } else {
            RefreshRequest::Started
        };
        drop(state);
        // One stored permit at most: the worker wakes once however many ask.
        self.wake.notify_one();
        answer
    }

    /// Takes the owed refresh, if any, and marks one as running. `timed`
    /// takes one even when none was asked for.
    fn begin(&self, timed: bool) -> bool {
        let mut state = self.state.lock().expect("lock");
        if !(state.pending || timed) {
            return false;
        }
        state.pending = false;
        state.running = true;
        true
    }

    fn end(&self) {
        self.state.lock().expect("lock").running = false;
    }
}

impl Engine {
    /// The worker behind [`Refresher::request`], and the timed refresh:
    /// refreshes when asked, and `refresh_seconds` after the last refresh it
    /// ran when nobody asks (on the leader only, when replicas share the
    /// database: the others hear of every change and fetch then; and at
    /// once when this replica comes to lead). Runs until the process ends.
    pub async fn run_refresher(self: Arc<Self>) {
        let period = Duration::from_secs(self.config.repository.refresh_seconds);
        let queue = &self.refresher.queue;
        let mut leadership = self.cluster.leadership();
        // The engine refreshed as it started.
        let mut last_ran = std::time::Instant::now();
        loop {
            let timed = tokio::select! {
                _ = queue.wake.notified() => false,
                _ = tokio::time::sleep(period) => true,
                // A replica that comes to lead refreshes at once, unless it
                // did within the period (as while starting): the leader it
                // replaces may have been gone a while.
                _ = leadership.changed() => {
                    if !*leadership.borrow_and_update() || last_ran.elapsed() < period {
                        continue;
                    }
                    true
                }
            };
            if timed && !self.cluster.is_leader() {
                continue;
            }
            // A wake-up whose request a timed refresh already served owes nothing.
            if !queue.begin(timed) {
                continue;
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!("refresh failed: {e}");
            }
            last_ran = std::time::Instant::now();
            queue.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_while_one_runs_fold_into_one_more() {
        let queue = RefreshQueue::default();
        assert_eq!(queue.request(), RefreshRequest::Started);
        assert_eq!(queue.request(), RefreshRequest::Queued, "not yet begun");
        assert!(queue.begin(false));
        for _ in 0..20 {
            assert_eq!(queue.request(), RefreshRequest::Queued, "one is running");
        }
        queue.end();
        assert!(queue.begin(false), "one more after the running one");
        queue.end();
        assert!(
            !queue.begin(false),
            "and no more: twenty requests, two refreshes"
        );
        assert!(queue.begin(true), "the timer refreshes unasked");
        queue.end();
        assert_eq!(queue.request(), RefreshRequest::Started, "idle again");
    }
}
