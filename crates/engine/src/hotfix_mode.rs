//! Whether hotfix mode is on (S4), and the pipeline as it stands because of
//! it: in hotfix mode the root's environments take the hotfix branch. Read by
//! every view and every operation, set only by hotfix mode's start and end
//! (and at start-up, from the running incident the store keeps).

use std::sync::{Arc, RwLock};

use envline_api::IncidentView;

use crate::pipeline::Pipeline;

/// The running incident and the pipeline it makes (see the module).
pub struct HotfixMode {
    /// The pipeline as configured.
    configured: Pipeline,
    /// The running incident, if hotfix mode is on, and the pipeline as it
    /// stands: its root is the hotfix branch in hotfix mode. One lock, so
    /// nobody reads the one without the other.
    now: RwLock<(Option<IncidentView>, Arc<Pipeline>)>,
}

impl HotfixMode {
    /// Hotfix mode for `configured`, on when `incident` runs.
    pub(crate) fn new(configured: Pipeline, incident: Option<IncidentView>) -> HotfixMode {
        let pipeline = Self::pipeline_for(&configured, incident.as_ref());
        HotfixMode {
            now: RwLock::new((incident, Arc::new(pipeline))),
            configured,
        }
    }

    /// The pipeline `incident` makes of `configured`.
    fn pipeline_for(configured: &Pipeline, incident: Option<&IncidentView>) -> Pipeline {
        match incident {
            Some(i) => configured.with_root_branch(&i.branch),
            None => configured.clone(),
        }
    }

    /// The pipeline as it stands now: in hotfix mode its root stands for the
    /// hotfix branch (promotions from the root take the fix).
    pub fn pipeline_now(&self) -> Arc<Pipeline> {
        self.now.read().expect("lock").1.clone()
    }

    /// The running incident, if hotfix mode is on.
    pub fn incident(&self) -> Option<IncidentView> {
        self.now.read().expect("lock").0.clone()
    }

    /// Turns hotfix mode on (the incident running) or off (`None`).
    pub(crate) fn set(&self, incident: Option<IncidentView>) {
        let pipeline = Self::pipeline_for(&self.configured, incident.as_ref());
        *self.now.write().expect("lock") = (incident, Arc::new(pipeline));
    }
}
