//! Envline's wire types: what the HTTP API answers and takes, what the
//! server functions carry to the pages, and what the client command sends.
//! Plain data with no web framework and no database in it, so it compiles
//! to wasm for the browser and is the one vocabulary every layer shares:
//! the error codes, the audit actions and the notification events are
//! closed enums here, spelled on the wire exactly as before.

mod audit;
mod error;
mod insights;
mod model;
mod reply;
mod sso;

pub use audit::{AuditAction, NotifyEvent};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, ErrorReply};
pub use insights::{
    Insights, InsightsAnswer, InsightsList, InsightsQuery, InsightsWeek, LeadTime, TimeToRestore,
    span_text,
};
pub use model::*;
pub use reply::{
    AuditEvents, HoldList, NotificationList, PreviewList, Promoted, PromotionList, RollbackPlans,
};
pub use sso::SsoFailure;

/// Parses one of the text values of an enum, with a message that lists the
/// accepted values (used for query strings and form fields).
pub fn parse_choice<T>(field: &str, text: &str) -> Result<T, String>
where
    T: std::str::FromStr + strum::VariantNames,
{
    text.parse().map_err(|_| {
        let (last, rest) = T::VARIANTS.split_last().expect("a choice has values");
        let options = if rest.is_empty() {
            last.to_string()
        } else {
            format!("{} or {last}", rest.join(", "))
        };
        format!("`{field}` must be {options}, not `{text}`")
    })
}

/// Declares a closed set of text values: serde and strum both spell them in
/// snake_case, so the JSON, the database (which stores `as_str()` and reads
/// back with `TryFrom<String>`) and the code agree; with `openapi` each is
/// also an OpenAPI schema (an enum of those texts).
macro_rules! choice {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            strum::Display, strum::EnumString, strum::IntoStaticStr, strum::VariantNames,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl TryFrom<String> for $name {
            type Error = strum::ParseError;

            /// Reads the value as stored.
            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl $name {
            /// The value as stored and sent.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}
pub(crate) use choice;
