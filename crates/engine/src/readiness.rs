//! Readiness: whether this server can do its work now (the database answers,
//! the clone reads, the remote was reached at the last fetch), for a load
//! balancer or an orchestrator to route by (`GET /readyz`).

use envline_api::{Readiness, ReadinessCheck};

use super::{Engine, store};

/// How long a check waits: a balancer asks often and wants an answer.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// Looks at the database, the clone and the last fetch. A remote that
    /// cannot be reached leaves the server `degraded`, not `unready`: pages
    /// and reads still work, and taking every server out of a balancer
    /// because the remote is down would leave people nothing to look at.
    pub async fn readiness(&self) -> Readiness {
        let asked = tokio::time::timeout(PATIENCE, store::ping(&self.pool)).await;
        let database = match asked {
            Ok(Ok(())) => passed(),
            Err(_) => failed(format!(
                "the database did not answer within {} s; it is locked or its disk is slow",
                PATIENCE.as_secs()
            )),
            Ok(Err(e)) => failed(match self.config.database() {
                database @ store::Database::Sqlite(_) => format!(
                    "the database does not answer ({e}); check that {database} is readable and writable and the disk has room"
                ),
                database @ store::Database::Postgres(_) => format!(
                    "the database does not answer ({e}); check that the PostgreSQL server at {database} is up and takes Envline's connections"
                ),
            }),
        };
        let dir = self.git.dir().to_owned();
        let root = self.config.repository.root.clone();
        // Refs and objects may be cached in memory: the folder itself must be there.
        let clone = if !dir.join("HEAD").is_file() {
            failed(format!(
                "the clone in {} is gone; restart Envline to clone the remote again",
                dir.display()
            ))
        } else {
            match self.git(move |git| git.branch_tip(&root)).await {
                Ok(Some(_)) => passed(),
                Ok(None) => failed(format!(
                    "the clone in {} has no branch {}; check repository.root and the remote",
                    dir.display(),
                    self.config.repository.root
                )),
                Err(e) => failed(format!(
                    "the clone in {} cannot be read ({e}); move it aside and restart Envline to clone the remote again",
                    dir.display()
                )),
            }
        };
        let last = self.refresher().last();
        let remote = match (last.at, last.error) {
            (_, Some(error)) => failed(error),
            (None, None) => failed("the remote has not been fetched yet".into()),
            (Some(_), None) => passed(),
        };
        let status = if !database.ok || !clone.ok {
            "unready"
        } else if !remote.ok {
            "degraded"
        } else {
            "ready"
        };
        Readiness {
            status: status.into(),
            role: if self.cluster.is_leader() {
                "leader"
            } else {
                "follower"
            }
            .into(),
            database,
            clone,
            remote,
        }
    }
}

fn passed() -> ReadinessCheck {
    ReadinessCheck {
        ok: true,
        problem: None,
    }
}

fn failed(problem: String) -> ReadinessCheck {
    ReadinessCheck {
        ok: false,
        problem: Some(problem),
    }
}
