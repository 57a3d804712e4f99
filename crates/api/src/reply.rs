//! The envelopes the HTTP API answers with, shared by the REST handlers that
//! write them and the client command that reads them.

use serde::{Deserialize, Serialize};

use crate::model::{
    AuditEventView, HoldView, NotificationView, PromotionPreview, PromotionView, RollbackPlan,
};

/// Several promotion requests: the answer of a promotion of `environments`,
/// and the list of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionList {
    pub promotions: Vec<PromotionView>,
}

/// What `POST /api/v1/promotions` answers: the one promotion asked for by
/// `environment`, or all of them when `environments` was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Promoted {
    Several(PromotionList),
    One(Box<PromotionView>),
}

impl Promoted {
    /// The requests, one or several.
    pub fn into_requests(self) -> Vec<PromotionView> {
        match self {
            Promoted::Several(list) => list.promotions,
            Promoted::One(one) => vec![*one],
        }
    }
}

/// The answer of `POST /api/v1/promotions/preview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewList {
    /// One per environment the promotion would move.
    pub previews: Vec<PromotionPreview>,
}

/// The answer of `POST /api/v1/rollbacks/preview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RollbackPlans {
    /// One per environment the rollback would move.
    pub plans: Vec<RollbackPlan>,
}

/// Audit events: the answer of `POST /api/v1/rollbacks` (one per
/// environment moved back) and of `GET /api/v1/audit` (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvents {
    pub events: Vec<AuditEventView>,
}

/// Holds: those placed by `POST /api/v1/holds`, or those in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldList {
    pub holds: Vec<HoldView>,
}

/// Notifications, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
}
