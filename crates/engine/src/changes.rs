//! Change notices: the generation that grows with every change, the
//! numbered changes live pages listen to, the wake-up of auto-promotion and
//! the signal that the server is stopping. Every other service holds a
//! handle to the one [`Changes`] of an engine, so a change made anywhere
//! reaches all of them; with replicas on one database, the change feed
//! ([`crate::feed`]) carries them to the other replicas and back.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, broadcast, mpsc, watch};

/// A change this replica made, for the other replicas: whether it may let
/// an automatic promotion go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Refs, requests, evidence or people changed.
    Changed,
    /// Only what pages show changed (a refused or failed push).
    Touched,
}

/// The change notices of one engine (see the module).
pub struct Changes {
    /// Bumped on every change to refs or to the gates' evidence: cached
    /// views compare it with the generation they were built at.
    generation: AtomicU64,
    /// Tells live pages that something changed: the change's number.
    sender: broadcast::Sender<u64>,
    /// The number of the last change this replica told its pages of: the
    /// generation on one server; with replicas, the database's number, the
    /// same on every replica, so a browser that reconnects to another one
    /// can say what it saw (`Last-Event-ID`).
    last: AtomicU64,
    /// With replicas: where this replica's changes go to be numbered by the
    /// database and told to every replica (this one included).
    outbound: OnceLock<mpsc::UnboundedSender<Made>>,
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
            // No change told yet (the generation's first is 2).
            last: AtomicU64::new(0),
            outbound: OnceLock::new(),
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
        self.tell(generation, Made::Changed);
    }

    /// Marks cached views stale and tells live pages, without waking
    /// auto-promotion (a refused or failed push changed no ref: retrying it
    /// at once would loop).
    pub fn touched(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.tell(generation, Made::Touched);
    }

    fn tell(&self, generation: u64, made: Made) {
        match self.outbound.get() {
            // Pages hear of it once the database has numbered it.
            Some(outbound) => {
                let _ = outbound.send(made);
            }
            None => self.numbered(generation),
        }
    }

    /// Sends this replica's changes to the change feed from now on.
    pub(crate) fn send_to(&self, outbound: mpsc::UnboundedSender<Made>) {
        let _ = self.outbound.set(outbound);
    }

    /// Takes up the database's numbering (before any page listens).
    pub(crate) fn number_from(&self, last: u64) {
        self.last.fetch_max(last, Ordering::SeqCst);
    }

    /// Tells live pages of change `number` (this replica's own, numbered).
    /// Numbers only grow: a change heard late (another replica's, told
    /// once the clone caught up with it) goes out under the highest number
    /// told so far.
    pub(crate) fn numbered(&self, number: u64) {
        let last = self.last.fetch_max(number, Ordering::SeqCst).max(number);
        // Nobody listening is fine.
        let _ = self.sender.send(last);
    }

    /// Another replica's change `number`, once this one has caught up with
    /// it: cached views go stale, auto-promotion wakes when it may go
    /// now, and live pages hear of it.
    pub(crate) fn made_elsewhere(&self, number: u64, made: Made) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if made == Made::Changed {
            self.auto_promote.notify_one();
        }
        self.numbered(number);
    }

    /// The number of the last change live pages were told of (`id` of the
    /// server-sent events).
    pub fn last_number(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
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

    /// A stream of change notices for live pages (each change's number).
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
