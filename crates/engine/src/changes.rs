//! Change notices: the generation that grows with every change, the
//! broadcast live pages listen to, the wake-up of auto-promotion and the
//! signal that the server is stopping. Every other service holds a handle to
//! the one [`Changes`] of an engine, so a change made anywhere reaches all
//! of them.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, broadcast, watch};

/// The change notices of one engine (see the module).
pub struct Changes {
    /// Bumped on every change to refs or to the gates' evidence: cached
    /// views compare it with the generation they were built at.
    generation: AtomicU64,
    /// Tells live pages that something changed (the new generation).
    sender: broadcast::Sender<u64>,
    /// Wakes the auto-promotion task.
    auto_promote: Notify,
    /// Turns true when the server stops, so live streams end and let it.
    stopping: watch::Sender<bool>,
}

impl Default for Changes {
    fn default() -> Changes {
        Changes {
            generation: AtomicU64::new(1),
            sender: broadcast::channel(64).0,
            auto_promote: Notify::new(),
            stopping: watch::channel(false).0,
        }
    }
}

impl Changes {
    /// Marks cached views stale after a change, wakes auto-promotion and
    /// tells live pages.
    pub fn changed(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.auto_promote.notify_one();
        // Nobody listening is fine.
        let _ = self.sender.send(generation);
    }

    /// Marks cached views stale and tells live pages, without waking
    /// auto-promotion (a refused or failed push changed no ref: retrying it
    /// at once would loop).
    pub fn touched(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.sender.send(generation);
    }

    /// Marks cached views stale without telling anyone (a refresh that found
    /// nothing new).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The current generation: it grows with every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A stream of change notices for live pages (the generation after each
    /// change).
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.sender.subscribe()
    }

    /// Completes at the next change that may let an automatic promotion go
    /// (or at once, if one happened since the last wait).
    pub async fn auto_promotion_due(&self) {
        self.auto_promote.notified().await
    }

    /// Tells long-lived streams that the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes when the server is stopping.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }
}
