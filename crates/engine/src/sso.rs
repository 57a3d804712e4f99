//! Single sign-on with OpenID Connect (`[auth.oidc]`): the authorization
//! code flow with PKCE, `state` and `nonce`. Envline sends the browser to
//! the identity provider, takes the code it comes back with, checks the ID
//! token (signature against the provider's published keys, issuer,
//! audience, expiry, nonce, access-token hash), maps the person's groups to
//! roles, and opens a session.
//!
//! This module is the provider's side: its metadata and keys, the client
//! that talks to it, and the failures; [`crate::sso_sign_in`] signs people
//! in with it.

use std::time::{Duration, Instant};

use envline_api::SsoFailure;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, ClientId, ClientSecret, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EngineError;
use crate::auth;
use crate::config::OidcConfig;
use crate::error::with_causes;

/// The cookie that ties a sign-in under way to the browser that started it.
pub const STATE_COOKIE: &str = "envline_sso_state";

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

/// How long the provider's metadata and keys are used before being read
/// again (keys that rotate sooner are read again when a signature fails).
const METADATA_TTL: Duration = Duration::from_secs(600);

/// How long a person may take at the provider.
pub(crate) const SIGN_IN_MINUTES: i64 = 10;

/// The claims beyond the standard ones (groups, and whatever the
/// configuration names), as the provider sent them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type IdTokenFields = openidconnect::IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type TokenResponse = StandardTokenResponse<IdTokenFields, CoreTokenType>;

/// A client of the provider, as discovery makes it (authorization endpoint
/// known; token and user-info endpoints when the provider has them).
pub(crate) type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Single sign-on against one provider: its configuration, and its
/// metadata and keys once read.
pub struct SingleSignOn {
    pub(crate) config: OidcConfig,
    redirect: RedirectUrl,
    pub(crate) http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

/// Why a sign-in with the provider did not sign the person in.
#[derive(Debug)]
pub enum SsoError {
    /// The person's sign-in failed: the code the page shows, and the
    /// details for the log.
    Failed { failure: SsoFailure, detail: String },
    /// Envline itself failed (its database).
    Engine(EngineError),
}

impl SsoError {
    pub(crate) fn failed(failure: SsoFailure, detail: impl Into<String>) -> SsoError {
        SsoError::Failed {
            failure,
            detail: detail.into(),
        }
    }
}

impl From<sqlx::Error> for SsoError {
    fn from(e: sqlx::Error) -> Self {
        SsoError::Engine(e.into())
    }
}

impl From<auth::AuthError> for SsoError {
    fn from(e: auth::AuthError) -> Self {
        SsoError::Engine(e.into())
    }
}

/// What the provider's answer carries back to the callback.
#[derive(Debug, Default, Deserialize)]
pub struct SsoCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set instead of `code` when the provider did not sign the person in.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The provider that answered (RFC 9207), when it says: another one
    /// than ours means a mix-up attack.
    pub iss: Option<String>,
}

impl SingleSignOn {
    /// Single sign-on for a configuration; `public_url` is where people
    /// open Envline (the provider sends them back under it).
    pub(crate) fn new(
        config: OidcConfig,
        public_url: &str,
        network_timeout: Duration,
    ) -> Result<SingleSignOn, String> {
        let redirect = RedirectUrl::new(format!("{public_url}{CALLBACK_PATH}")).map_err(|e| {
            format!("server.public_url `{public_url}` makes no callback address: {e}")
        })?;
        let http = reqwest::Client::builder()
            // The provider's endpoints answer directly; following a
            // redirect would let a compromised one aim Envline elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(network_timeout)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(SingleSignOn {
            config,
            redirect,
            http,
            provider: tokio::sync::Mutex::new(None),
        })
    }

    /// What the sign-in button says after "Sign in with".
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// A client of the provider, reading its metadata and keys when they
    /// are older than [`METADATA_TTL`] or `fresh` asks for it.
    pub(crate) async fn client(&self, fresh: bool) -> Result<OidcClient, SsoError> {
        let mut provider = self.provider.lock().await;
        let stale = provider
            .as_ref()
            .is_none_or(|(_, read)| fresh || read.elapsed() > METADATA_TTL);
        if stale {
            let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| {
                SsoError::failed(SsoFailure::Invalid, format!("auth.oidc.issuer: {e}"))
            })?;
            let discovered = CoreProviderMetadata::discover_async(issuer, &self.http).await;
            if let (Err(e), Some((_, read))) = (&discovered, provider.as_ref())
                && !fresh
            {
                // The provider's keys and endpoints rarely change: the ones
                // read last keep serving while it cannot be asked.
                tracing::warn!(
                    "cannot read the identity provider's metadata again (using what was read {} s ago): {}",
                    read.elapsed().as_secs(),
                    with_causes(e)
                );
            } else {
                let metadata = discovered.map_err(|e| {
                    let failure = match e {
                        openidconnect::DiscoveryError::Request(_) => SsoFailure::Unreachable,
                        _ => SsoFailure::Invalid,
                    };
                    SsoError::failed(
                        failure,
                        format!(
                            "reading the provider's metadata at {}/.well-known/openid-configuration: {}",
                            self.config.issuer,
                            with_causes(&e)
                        ),
                    )
                })?;
                *provider = Some((metadata, Instant::now()));
            }
        }
        let (metadata, _) = provider.as_ref().expect("read above");
        Ok(OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(
                self.config.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect.clone()))
    }

    /// Reads a claim by its name, or else its dotted path, from the ID
    /// token's claims, or else from the user-info answer.
    pub(crate) fn claim<'a>(found: &'a [Value], path: &str) -> Option<&'a Value> {
        found.iter().find_map(|claims| {
            // A name with dots in it (`https://acme.com/groups`) is a claim
            // of its own before it is a path.
            claims
                .get(path)
                .or_else(|| {
                    path.split('.')
                        .try_fold(claims, |value, key| value.get(key))
                })
                .filter(|v| !v.is_null())
        })
    }
}

/// A claim's groups: a list of names, or one name.
pub(crate) fn groups_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_read_by_dotted_path_first_from_the_id_token() {
        let found = vec![
            json!({ "sub": "1", "realm_access": { "roles": ["sre"] } }),
            json!({ "groups": "admins", "preferred_username": "ada" }),
        ];
        assert_eq!(
            groups_of(SingleSignOn::claim(&found, "realm_access.roles")),
            vec!["sre".to_string()]
        );
        assert_eq!(
            groups_of(SingleSignOn::claim(&found, "groups")),
            vec!["admins".to_string()]
        );
        assert_eq!(
            SingleSignOn::claim(&found, "preferred_username").and_then(Value::as_str),
            Some("ada")
        );
        assert!(SingleSignOn::claim(&found, "realm_access.missing").is_none());
        assert!(groups_of(None).is_empty());
    }
}
