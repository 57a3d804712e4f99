//! `[auth]` and `[auth.oidc]`: how people sign in in a browser (local
//! passwords, single sign-on with the organisation's OpenID Connect
//! provider, or both) and the map from the provider's groups to roles.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::roles::Grant;

/// `[auth]`, validated: who may read without signing in, and how people sign in.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lets anyone who can reach the server read the pipeline, line and
    /// audit log without a token. Every change still needs a user.
    pub anonymous_read: bool,
    /// Local passwords sign people in (on unless `passwords = false`, which
    /// needs single sign-on).
    pub passwords: bool,
    /// Single sign-on, when `[auth.oidc]` is given.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous_read: false,
            passwords: true,
            oidc: None,
        }
    }
}

/// `[auth.oidc]`, validated: the provider Envline sends people to, and which
/// of its groups give which roles.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL (what comes before
    /// `/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// What the button says: "Sign in with {name}".
    pub name: String,
    /// The claim carrying the person's groups (a dotted path reaches into
    /// objects: `realm_access.roles`).
    pub groups_claim: String,
    /// The claim whose value becomes the Envline user name.
    pub username_claim: String,
    /// Scopes asked for besides `openid` and `profile`.
    pub scopes: Vec<String>,
    /// Group → the roles it gives, by group name.
    pub roles: Vec<(String, Vec<Grant>)>,
}

impl OidcConfig {
    /// The roles a person with these groups gets: every grant of every
    /// mapped group they are in, each once.
    pub fn grants_for(&self, groups: &[String]) -> Vec<Grant> {
        let mut grants: Vec<Grant> = Vec::new();
        for (group, given) in &self.roles {
            if groups.iter().any(|g| g == group) {
                for grant in given {
                    if !grants
                        .iter()
                        .any(|g| g.role == grant.role && g.scope == grant.scope)
                    {
                        grants.push(grant.clone());
                    }
                }
            }
        }
        grants
    }
}

/// The client secret: kept out of `Debug` output (configurations get logged).
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// The secret, to send to the provider's token endpoint.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// `[auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    #[serde(default)]
    pub(super) anonymous_read: bool,
    pub(super) passwords: Option<bool>,
    pub(super) oidc: Option<RawOidc>,
}

/// `[auth.oidc]` as written (every key optional here, so that a missing
/// one gets a message naming it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    pub(super) issuer: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) name: Option<String>,
    pub(super) groups_claim: Option<String>,
    pub(super) username_claim: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) roles: Option<BTreeMap<String, Vec<String>>>,
}

impl RawAuth {
    /// `[auth.oidc]`, made when an `ENVLINE_AUTH_OIDC_*` variable sets a key.
    pub(super) fn oidc_mut(&mut self) -> &mut RawOidc {
        self.oidc.get_or_insert_with(RawOidc::default)
    }

    /// Validates; errors are `(key, message)`. `public_url_known` says
    /// whether the address people open is known (the provider sends them
    /// back there).
    pub(super) fn validate(self, public_url_known: bool) -> Result<AuthConfig, (String, String)> {
        let passwords = self.passwords.unwrap_or(true);
        let oidc = match self.oidc {
            None => None,
            Some(raw) => Some(raw.validate(public_url_known)?),
        };
        if !passwords && oidc.is_none() {
            return Err((
                "auth.passwords".into(),
                "is false, but there is no [auth.oidc]: nobody could sign in in a browser. \
                 Configure single sign-on, or remove the key to keep local passwords"
                    .into(),
            ));
        }
        Ok(AuthConfig {
            anonymous_read: self.anonymous_read,
            passwords,
            oidc,
        })
    }
}

impl RawOidc {
    fn validate(self, public_url_known: bool) -> Result<OidcConfig, (String, String)> {
        let missing =
            |key: &str, what: &str| (format!("auth.oidc.{key}"), format!("is missing: {what}"));
        let issuer = self
            .issuer
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                missing(
                    "issuer",
                    "give the identity provider's issuer URL, the address before \
                     /.well-known/openid-configuration (for example https://login.example.com/realms/acme)",
                )
            })?;
        // Exactly as written (but for spaces): the provider's metadata and
        // tokens must name it so, trailing `/` and all.
        let issuer = issuer.trim().to_owned();
        check_issuer(&issuer).map_err(|m| ("auth.oidc.issuer".to_owned(), m))?;
        let client_id = self
            .client_id
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                missing(
                    "client_id",
                    "give the client id the identity provider gave Envline when it was registered",
                )
            })?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                missing(
                    "client_secret",
                    "set it, or better ENVLINE_AUTH_OIDC_CLIENT_SECRET so that it stays out of the file",
                )
            })?;
        if !public_url_known {
            return Err((
                "server.public_url".into(),
                "is needed with [auth.oidc]: the identity provider sends people back to \
                 PUBLIC_URL/auth/oidc/callback, and the listen address is not one people can open. \
                 Set it to the address people open (https://envline.example.com)"
                    .into(),
            ));
        }
        let raw_roles = self.roles.unwrap_or_default();
        if raw_roles.is_empty() {
            return Err((
                "auth.oidc.roles".into(),
                "maps no group to a role, so nobody could sign in with single sign-on. Add one, \
                 for example [auth.oidc.roles] \"envline-admins\" = [\"admin\"] and \
                 \"prod-approvers\" = [\"approver:prod-*\"]"
                    .into(),
            ));
        }
        let mut roles = Vec::with_capacity(raw_roles.len());
        for (group, grants) in raw_roles {
            let key = format!("auth.oidc.roles.\"{group}\"");
            if grants.is_empty() {
                return Err((
                    key,
                    "gives no role; list at least one (ROLE or ROLE:GLOB), or remove the group"
                        .into(),
                ));
            }
            let grants = grants
                .iter()
                .map(|g| Grant::parse(g))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| (key.clone(), m))?;
            roles.push((group, grants));
        }
        let claim = |value: Option<String>, default: &str| {
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(OidcConfig {
            issuer,
            client_id: client_id.trim().to_owned(),
            client_secret: ClientSecret(client_secret),
            name: claim(self.name, "single sign-on"),
            groups_claim: claim(self.groups_claim, "groups"),
            username_claim: claim(self.username_claim, "preferred_username"),
            scopes: self
                .scopes
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s != "openid" && s != "profile")
                .collect(),
            roles,
        })
    }
}

/// The issuer must be https, except on this machine (for trying it out):
/// over plain http anyone on the way could stand in for the provider.
fn check_issuer(issuer: &str) -> Result<(), String> {
    if issuer.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = issuer.strip_prefix("http://") else {
        return Err(format!("`{issuer}` is not a web address; write https://…"));
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
        return Ok(());
    }
    Err(format!(
        "`{issuer}` is plain http: anyone between Envline and the provider could stand in for it. \
         Use https (plain http is accepted for localhost and 127.0.0.1 only, for trying it out)"
    ))
}

/// Reads `ENVLINE_AUTH_OIDC_ROLES`: a TOML inline table,
/// `{ "prod-approvers" = ["approver:prod-*"], sre = ["incident-commander"] }`.
pub(super) fn parse_roles_variable(value: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    #[derive(Deserialize)]
    struct Wrapper {
        roles: BTreeMap<String, Vec<String>>,
    }
    toml::from_str::<Wrapper>(&format!("roles = {value}"))
        .map(|w| w.roles)
        .map_err(|e| {
            format!(
                "cannot read `{value}`: {}. Write a TOML inline table: \
                 {{ \"prod-approvers\" = [\"approver:prod-*\"], sre = [\"incident-commander\"] }}",
                e.message().trim()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(roles: &[(&str, &[&str])]) -> RawOidc {
        RawOidc {
            issuer: Some("https://login.example.com/realms/acme/".into()),
            client_id: Some("envline".into()),
            client_secret: Some("s3cret".into()),
            roles: Some(
                roles
                    .iter()
                    .map(|(g, r)| (g.to_string(), r.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            ),
            ..RawOidc::default()
        }
    }

    #[test]
    fn groups_give_the_roles_they_are_mapped_to_each_once() {
        let config = oidc(&[
            ("prod-approvers", &["approver:prod-*"]),
            ("sre", &["incident-commander", "approver:prod-*"]),
            ("admins", &["admin"]),
        ])
        .validate(true)
        .unwrap();
        assert_eq!(config.issuer, "https://login.example.com/realms/acme/");
        let grants = config.grants_for(&["sre".into(), "prod-approvers".into(), "other".into()]);
        let names: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"approver:prod-*".to_string()));
        assert!(names.contains(&"incident-commander".to_string()));
        assert!(config.grants_for(&["other".into()]).is_empty());
    }

    #[test]
    fn missing_keys_bad_roles_and_plain_http_are_refused_by_name() {
        let (key, message) = RawOidc {
            client_secret: None,
            ..oidc(&[("a", &["viewer"])])
        }
        .validate(true)
        .unwrap_err();
        assert_eq!(key, "auth.oidc.client_secret");
        assert!(
            message.contains("ENVLINE_AUTH_OIDC_CLIENT_SECRET"),
            "{message}"
        );

        let (key, message) = oidc(&[("ops", &["pilot"])]).validate(true).unwrap_err();
        assert_eq!(key, "auth.oidc.roles.\"ops\"");
        assert!(message.contains("unknown role `pilot`"), "{message}");

        let (key, _) = oidc(&[]).validate(true).unwrap_err();
        assert_eq!(key, "auth.oidc.roles");

        let (key, _) = oidc(&[("a", &["viewer"])]).validate(false).unwrap_err();
        assert_eq!(key, "server.public_url");

        for (issuer, ok) in [
            ("http://idp.example.com", false),
            ("http://127.0.0.1:3108", true),
            ("http://localhost/realms/x", true),
            ("idp.example.com", false),
        ] {
            let raw = RawOidc {
                issuer: Some(issuer.into()),
                ..oidc(&[("a", &["viewer"])])
            };
            assert_eq!(raw.validate(true).is_ok(), ok, "{issuer}");
        }
    }

    #[test]
    fn passwords_can_be_turned_off_only_with_single_sign_on() {
        let off = RawAuth {
            passwords: Some(false),
            ..RawAuth::default()
        };
        assert_eq!(off.validate(true).unwrap_err().0, "auth.passwords");
        let with_sso = RawAuth {
            passwords: Some(false),
            oidc: Some(oidc(&[("a", &["viewer"])])),
            ..RawAuth::default()
        };
        let auth = with_sso.validate(true).unwrap();
        assert!(!auth.passwords);
        assert_eq!(auth.oidc.unwrap().name, "single sign-on");
    }

    #[test]
    fn the_roles_variable_is_an_inline_table() {
        let roles =
            parse_roles_variable(r#"{ "prod-approvers" = ["approver:prod-*"], sre = ["admin"] }"#)
                .unwrap();
        assert_eq!(roles["sre"], vec!["admin".to_string()]);
        let e = parse_roles_variable("prod-approvers=approver").unwrap_err();
        assert!(e.contains("inline table"), "{e}");
    }
}
