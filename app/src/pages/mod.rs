//! One module per page.

pub mod account;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod environment;
pub mod incident;
pub mod insights;
pub mod line;
pub mod login;
pub mod pipeline;

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

/// A page whose code the browser loads only when it is visited: the
/// pipeline page stays in the main bundle, every other page is split into a
/// chunk of its own (`cargo leptos build --split`), so the first load
/// carries only what the pipeline needs.
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        #[doc = concat!("The route of `", stringify!($page), "`, split from the main bundle.")]
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$page/> }.into_any()
            }
        }
    };
}

lazy_page!(LineRoute, line::LinePage);
lazy_page!(EnvironmentRoute, environment::EnvironmentPage);
lazy_page!(ApprovalsRoute, approvals::ApprovalsPage);
lazy_page!(AuditRoute, audit::AuditPage);
lazy_page!(InsightsRoute, insights::InsightsPage);
lazy_page!(AdminRoute, admin::AdminPage);
lazy_page!(IncidentRoute, incident::IncidentPage);
lazy_page!(LoginRoute, login::LoginPage);
lazy_page!(AccountRoute, account::AccountPage);
