//! The `envline.toml` file: what it may say, how `ENVLINE_*` variables
//! override it, and the errors a person sees when it is wrong.
//!
//! Parsing keeps the position of every environment key so that a bad
//! pipeline is refused with the file, the line and the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use envline_api::NotifyEvent;

use super::pipeline::{EnvironmentSpec, Pipeline};

mod sso;
pub use sso::{AuthConfig, ClientSecret, OidcConfig};
use std::time::Duration;
use strum::VariantNames;

/// Where the configuration file is looked for when neither `--config` nor
/// `ENVLINE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "envline.toml";

/// A configuration that was read, overridden from the environment and validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages.
    pub file: PathBuf,
    pub repository: RepositoryConfig,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub webhooks: WebhooksConfig,
    pub audit: AuditConfig,
    /// The validated environment graph.
    pub pipeline: Pipeline,
    /// `[[notify]]`: where events are POSTed.
    pub notify: Vec<NotifyTarget>,
}

/// `[repository]`: the GitOps repository Envline promotes in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A URL or path git can clone from (`git@…`, `https://…`, `file://…`, `/srv/gitops.git`).
    pub url: String,
    /// The branch all promotions start from.
    #[serde(default = "default_root")]
    pub root: String,
    /// How often the remote is fetched, in seconds (also on `POST /api/v1/refresh`).
    #[serde(default = "default_refresh_seconds")]
    pub refresh_seconds: u64,
    /// How long a fetch or push may take before it is stopped and reported
    /// as unreachable, in seconds.
    #[serde(default = "default_network_timeout_seconds")]
    pub network_timeout_seconds: u64,
}

/// Configurations get logged: the URL's password never is.
impl std::fmt::Debug for RepositoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryConfig")
            .field("url", &super::redact::credentials(&self.url))
            .field("root", &self.root)
            .field("refresh_seconds", &self.refresh_seconds)
            .field("network_timeout_seconds", &self.network_timeout_seconds)
            .finish()
    }
}

/// `[server]`: where Envline listens and keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Holds the SQLite database and the bare clone; relative paths are
    /// taken from the configuration file's folder.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The built site (wasm, js, css); relative paths are taken from the
    /// working directory, as cargo-leptos lays it out.
    #[serde(default = "default_site_root")]
    pub site_root: PathBuf,
    /// The address people open in their browser (`https://envline.example.com`),
    /// when it differs from `listen` (behind a proxy): browsers' state-changing
    /// requests must come from this origin, and an `https` address makes the
    /// session cookie `Secure`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Proxies in front of Envline (addresses or CIDR ranges, `10.0.0.0/8`):
    /// only a request from one of these may name its client in
    /// `X-Forwarded-For`, which sign-in throttling goes by. Empty: the
    /// connection's own address is the client.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
}

/// `server.trusted_proxies`, parsed: each entry an address or a CIDR range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses addresses or CIDR ranges, saying which entry is wrong.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!(
                        "`{entry}` is neither an address (10.0.0.5) nor a CIDR range (10.0.0.0/8)"
                    )
                })?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether `address` is one of the trusted proxies.
    pub fn contains(&self, address: &std::net::IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(address))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        TrustedProxies::parse(entries.iter().map(String::as_str)).map_err(serde::de::Error::custom)
    }
}

/// `[database]`: where Envline keeps its state. Without a `url`, the SQLite
/// file `envline.sqlite` in `server.data_dir` (nothing to set up); with one,
/// a PostgreSQL server, which several Envline replicas can share.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or
    /// `ENVLINE_DATABASE_URL`); the password may instead come from
    /// `PGPASSWORD`, as for `psql`.
    #[serde(default)]
    pub url: Option<String>,
}

/// Configurations get logged: the URL's password never is.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(super::redact::credentials))
            .finish()
    }
}

/// Where Envline's database is, as [`Config::database`] resolves it.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its URL.
    Postgres(String),
}

/// What messages name the database by: the file, or the URL without its password.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(file) => write!(f, "{}", file.display()),
            Database::Postgres(url) => f.write_str(&super::redact::credentials(url)),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Database({self})")
    }
}

/// `[audit]`: what the anchor in the repository carries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Copy whole events (reasons, names, test links) into the anchor's
    /// `events.jsonl`. Off by default: everyone who can clone the GitOps
    /// repository can read the anchor, so it carries only event ids and
    /// hashes, which is all that proving the log unedited needs.
    #[serde(default)]
    pub anchor_events: bool,
}

/// `[webhooks]`: pushes announced by the git host, so a push shows at once
/// instead of at the next timed refresh.
#[derive(Debug, Clone, Default)]
pub struct WebhooksConfig {
    /// The secret the host signs deliveries with (GitHub: the webhook's
    /// "Secret", checked against `X-Hub-Signature-256`; GitLab: the
    /// webhook's "Secret token", sent as `X-Gitlab-Token`). Without it the
    /// webhook endpoints refuse every delivery, saying how to set it.
    pub secret: Option<WebhookSecret>,
}

/// The shortest webhook secret accepted: anyone who knows or guesses it can
/// make Envline fetch as often as they like.
pub const WEBHOOK_SECRET_MIN_LEN: usize = 16;

/// A webhook secret: kept out of `Debug` output (configurations get logged).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The secret's bytes, to sign or compare with.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    secret: Option<Spanned<String>>,
}

fn default_root() -> String {
    "main".into()
}
fn default_refresh_seconds() -> u64 {
    30
}
fn default_network_timeout_seconds() -> u64 {
    120
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_site_root() -> PathBuf {
    PathBuf::from("target/site")
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            site_root: default_site_root(),
            public_url: None,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// A configuration file that cannot be used, with everything needed to fix it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}{line}: {key}: {message}", file = .file.display(), line = .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    repository: RepositoryConfig,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    auth: sso::RawAuth,
    #[serde(default)]
    webhooks: RawWebhooks,
    #[serde(default)]
    audit: AuditConfig,
    #[serde(default, rename = "environment")]
    environments: Vec<RawEnvironment>,
    #[serde(default)]
    notify: Vec<NotifyTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    name: Spanned<String>,
    branch: Option<Spanned<String>>,
    from: Spanned<String>,
    requires: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    approvals: Option<Spanned<i64>>,
    #[serde(default)]
    protected: bool,
    #[serde(default)]
    auto_promote: bool,
}

impl Config {
    /// The address people open: `server.public_url`, else the listen address.
    pub fn public_url(&self) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.listen))
    }

    /// Reads `file`, applies `ENVLINE_*` overrides from `vars`, validates.
    pub fn load(file: &Path, vars: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            line: None,
            key: "(file)".into(),
            message: format!(
                "cannot read it: {e}. Pass the right file with --config FILE or ENVLINE_CONFIG, or run `envline demo` to try Envline on a demo repository"
            ),
        })?;
        Self::parse(file, &text, vars)
    }

    /// Parses configuration text; `file` is only used for messages and to
    /// resolve a relative `data_dir`.
    pub fn parse(
        file: &Path,
        text: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |line: Option<usize>, key: &str, message: String| ConfigError {
            file: file.to_owned(),
            line,
            key: key.to_owned(),
            message,
        };
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start));
            err(line, "(syntax)", e.message().trim().to_owned())
        })?;

        apply_overrides(&mut raw, vars).map_err(|(key, message)| err(None, &key, message))?;
        if let Some(url) = &mut raw.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(
                    None,
                    "server.public_url",
                    format!(
                        "`{url}` must start with http:// or https:// (the address people open)"
                    ),
                ));
            }
            *url = url.trim_end_matches('/').to_owned();
        }
        if let Some(url) = &raw.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(err(
                None,
                "database.url",
                format!(
                    "`{}` is not a PostgreSQL URL: write postgres://USER:PASSWORD@HOST:PORT/DATABASE, \
                     or leave database.url out to keep the SQLite database in server.data_dir",
                    super::redact::credentials(url)
                ),
            ));
        }

        let mut specs = Vec::with_capacity(raw.environments.len());
        for env in &raw.environments {
            let approvals = match &env.approvals {
                None => 0,
                Some(a) if *a.get_ref() < 0 => {
                    return Err(err(
                        Some(line_of(a.span().start)),
                        &format!("environment.{}.approvals", env.name.get_ref()),
                        format!("must be 0 or more, not {}", a.get_ref()),
                    ));
                }
                Some(a) => u32::try_from(*a.get_ref()).map_err(|_| {
                    err(
                        Some(line_of(a.span().start)),
                        "environment.approvals",
                        "is too large".into(),
                    )
                })?,
            };
            specs.push(EnvironmentSpec {
                name: env.name.get_ref().clone(),
                name_line: line_of(env.name.span().start),
                branch: env.branch.as_ref().map(|b| b.get_ref().clone()),
                from: env.from.get_ref().clone(),
                from_line: line_of(env.from.span().start),
                requires: env.requires.as_ref().map(|r| {
                    r.get_ref()
                        .iter()
                        .map(|n| (n.get_ref().clone(), line_of(n.span().start)))
                        .collect()
                }),
                approvals,
                protected: env.protected,
                auto_promote: env.auto_promote,
            });
        }
        let pipeline = Pipeline::new(&raw.repository.root, specs)
            .map_err(|e| err(e.line, &e.key, e.message))?;

        let base = file.parent().unwrap_or(Path::new("."));
        let mut server = raw.server;
        if server.data_dir.is_relative() {
            server.data_dir = base.join(&server.data_dir);
        }
        let mut repository = raw.repository;
        if !repository.url.contains("://")
            && !repository.url.contains('@')
            && Path::new(&repository.url).is_relative()
        {
            repository.url = base.join(&repository.url).to_string_lossy().into_owned();
        }
        if repository.network_timeout_seconds == 0 {
            return Err(err(
                None,
                "repository.network_timeout_seconds",
                "must be at least 1".into(),
            ));
        }
        if repository.refresh_seconds == 0 {
            return Err(err(
                None,
                "repository.refresh_seconds",
                "must be at least 1".into(),
            ));
        }
        for (i, target) in raw.notify.iter().enumerate() {
            target
                .check()
                .map_err(|message| err(None, &format!("notify[{i}]"), message))?;
        }
        let webhooks = WebhooksConfig {
            secret: match raw.webhooks.secret {
                None => None,
                Some(secret) => {
                    // An empty span is a value from ENVLINE_WEBHOOKS_SECRET.
                    let (line, key) = if secret.span().is_empty() {
                        (None, "ENVLINE_WEBHOOKS_SECRET")
                    } else {
                        (Some(line_of(secret.span().start)), "webhooks.secret")
                    };
                    let secret = secret.into_inner();
                    let length = secret.chars().count();
                    if length < WEBHOOK_SECRET_MIN_LEN {
                        return Err(err(
                            line,
                            key,
                            format!(
                                "is {length} characters long; use at least {WEBHOOK_SECRET_MIN_LEN} random ones \
                                 (`openssl rand -hex 32` makes one) and give the git host the same, \
                                 or {} to turn webhooks off",
                                if line.is_some() {
                                    "remove the key"
                                } else {
                                    "unset the variable"
                                }
                            ),
                        ));
                    }
                    Some(WebhookSecret(secret))
                }
            },
        };
        let public_url_known = server.public_url.is_some() || !server.listen.ip().is_unspecified();
        let auth = raw
            .auth
            .validate(public_url_known)
            .map_err(|(key, message)| err(None, &key, message))?;
        Ok(Config {
            file: file.to_owned(),
            repository,
            server,
            database: raw.database,
            auth,
            webhooks,
            audit: raw.audit,
            pipeline,
            notify: raw.notify,
        })
    }

    /// The bare clone Envline keeps of the remote.
    pub fn clone_dir(&self) -> PathBuf {
        self.server.data_dir.join("repository.git")
    }

    /// Where the database is: `[database] url`, else the SQLite file in
    /// the data directory.
    pub fn database(&self) -> Database {
        match &self.database.url {
            Some(url) => Database::Postgres(url.clone()),
            None => Database::Sqlite(self.server.data_dir.join("envline.sqlite")),
        }
    }
}

/// The `ENVLINE_*` variables a configuration understands, for `--help`.
pub const OVERRIDES_HELP: &str = "ENVLINE_REPOSITORY_URL, ENVLINE_REPOSITORY_ROOT, ENVLINE_REPOSITORY_REFRESH_SECONDS, ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS, \
ENVLINE_SERVER_LISTEN, ENVLINE_SERVER_DATA_DIR, ENVLINE_SERVER_SITE_ROOT, ENVLINE_SERVER_PUBLIC_URL, \
ENVLINE_SERVER_TRUSTED_PROXIES (comma-separated), ENVLINE_DATABASE_URL, ENVLINE_AUTH_ANONYMOUS_READ, ENVLINE_AUTH_PASSWORDS, \
ENVLINE_AUTH_OIDC_ISSUER, ENVLINE_AUTH_OIDC_CLIENT_ID, ENVLINE_AUTH_OIDC_CLIENT_SECRET, ENVLINE_AUTH_OIDC_NAME, \
ENVLINE_AUTH_OIDC_GROUPS_CLAIM, ENVLINE_AUTH_OIDC_USERNAME_CLAIM, ENVLINE_AUTH_OIDC_SCOPES (comma-separated), \
ENVLINE_AUTH_OIDC_ROLES (a TOML inline table), ENVLINE_AUDIT_ANCHOR_EVENTS, \
ENVLINE_WEBHOOKS_SECRET, and per environment \
ENVLINE_ENVIRONMENT_<NAME>_<KEY> (NAME upper-cased with '-' as '_'; KEY one of BRANCH, FROM, REQUIRES (comma-separated), \
APPROVALS, PROTECTED, AUTO_PROMOTE)";

fn apply_overrides(
    raw: &mut RawConfig,
    vars: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, (String, String)>
    where
        T::Err: std::fmt::Display,
    {
        value
            .trim()
            .parse()
            .map_err(|e| (key.to_owned(), format!("cannot use `{value}`: {e}")))
    }
    let spanned = |v: &str| Spanned::new(0..0, v.to_owned());
    for (key, value) in vars.iter().filter(|(k, _)| k.starts_with("ENVLINE_")) {
        match key.as_str() {
            // Read by the command line, not the configuration.
            "ENVLINE_CONFIG" | "ENVLINE_PASSWORD" | "ENVLINE_LOG" | "ENVLINE_CRASH_AT"
            | "ENVLINE_ACTOR" | "ENVLINE_SERVER" | "ENVLINE_TOKEN" => {}
            "ENVLINE_REPOSITORY_URL" => raw.repository.url = value.clone(),
            "ENVLINE_REPOSITORY_ROOT" => raw.repository.root = value.clone(),
            "ENVLINE_REPOSITORY_REFRESH_SECONDS" => {
                raw.repository.refresh_seconds = parse(key, value)?
            }
            "ENVLINE_REPOSITORY_NETWORK_TIMEOUT_SECONDS" => {
                raw.repository.network_timeout_seconds = parse(key, value)?
            }
            "ENVLINE_SERVER_LISTEN" => raw.server.listen = parse(key, value)?,
            "ENVLINE_SERVER_DATA_DIR" => raw.server.data_dir = PathBuf::from(value),
            "ENVLINE_SERVER_SITE_ROOT" => raw.server.site_root = PathBuf::from(value),
            "ENVLINE_SERVER_PUBLIC_URL" => {
                raw.server.public_url = Some(value.trim_end_matches('/').to_owned())
            }
            "ENVLINE_SERVER_TRUSTED_PROXIES" => {
                raw.server.trusted_proxies =
                    TrustedProxies::parse(value.split(',')).map_err(|e| (key.to_owned(), e))?
            }
            "ENVLINE_DATABASE_URL" => raw.database.url = Some(value.clone()),
            "ENVLINE_AUTH_ANONYMOUS_READ" => raw.auth.anonymous_read = parse(key, value)?,
            "ENVLINE_AUTH_PASSWORDS" => raw.auth.passwords = Some(parse(key, value)?),
            "ENVLINE_AUTH_OIDC_ISSUER" => raw.auth.oidc_mut().issuer = Some(value.clone()),
            "ENVLINE_AUTH_OIDC_CLIENT_ID" => raw.auth.oidc_mut().client_id = Some(value.clone()),
            "ENVLINE_AUTH_OIDC_CLIENT_SECRET" => {
                raw.auth.oidc_mut().client_secret = Some(value.clone())
            }
            "ENVLINE_AUTH_OIDC_NAME" => raw.auth.oidc_mut().name = Some(value.clone()),
            "ENVLINE_AUTH_OIDC_GROUPS_CLAIM" => {
                raw.auth.oidc_mut().groups_claim = Some(value.clone())
            }
            "ENVLINE_AUTH_OIDC_USERNAME_CLAIM" => {
                raw.auth.oidc_mut().username_claim = Some(value.clone())
            }
            "ENVLINE_AUTH_OIDC_SCOPES" => {
                raw.auth.oidc_mut().scopes =
                    Some(value.split(',').map(|s| s.trim().to_owned()).collect())
            }
            "ENVLINE_AUTH_OIDC_ROLES" => {
                raw.auth.oidc_mut().roles =
                    Some(sso::parse_roles_variable(value).map_err(|e| (key.to_owned(), e))?)
            }
            "ENVLINE_AUDIT_ANCHOR_EVENTS" => raw.audit.anchor_events = parse(key, value)?,
            "ENVLINE_WEBHOOKS_SECRET" => raw.webhooks.secret = Some(spanned(value)),
            other => {
                let Some(rest) = other.strip_prefix("ENVLINE_ENVIRONMENT_") else {
                    return Err((
                        other.to_owned(),
                        format!("unknown setting; the known ones are {OVERRIDES_HELP}"),
                    ));
                };
                let env = raw.environments.iter_mut().find(|e| {
                    let prefix = e.name.get_ref().to_uppercase().replace('-', "_") + "_";
                    rest.starts_with(&prefix)
                        && matches!(
                            &rest[prefix.len()..],
                            "BRANCH"
                                | "FROM"
                                | "REQUIRES"
                                | "APPROVALS"
                                | "PROTECTED"
                                | "AUTO_PROMOTE"
                        )
                });
                let Some(env) = env else {
                    return Err((
                        other.to_owned(),
                        "names no configured environment and key; use ENVLINE_ENVIRONMENT_<NAME>_<KEY> with KEY one of BRANCH, FROM, REQUIRES, APPROVALS, PROTECTED, AUTO_PROMOTE".into(),
                    ));
                };
                let field = &rest[env.name.get_ref().len() + 1..];
                match field {
                    "BRANCH" => env.branch = Some(spanned(value)),
                    "FROM" => env.from = spanned(value),
                    "REQUIRES" => {
                        let list = value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(spanned)
                            .collect();
                        env.requires = Some(Spanned::new(0..0, list));
                    }
                    "APPROVALS" => env.approvals = Some(Spanned::new(0..0, parse(key, value)?)),
                    "PROTECTED" => env.protected = parse(key, value)?,
                    _ => env.auto_promote = parse(key, value)?,
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/envline.toml"), text, &BTreeMap::new())
    }

    const GOOD: &str = r#"
[repository]
url = "/srv/gitops.git"

[[environment]]
name = "qa"
from = "main"
auto_promote = true

[[environment]]
name = "prod"
from = "qa"
approvals = 2
protected = true
"#;

    /// The example people copy (and `make dist` ships) must be a file that works.
    #[test]
    fn the_example_file_in_the_repository_is_accepted() {
        let text = include_str!("../../../envline.example.toml");
        let config = parse(text).unwrap_or_else(|e| panic!("envline.example.toml: {e}"));
        assert!(config.pipeline.environment("qa").is_some());
        assert!(!config.audit.anchor_events);
    }

    #[test]
    fn a_good_file_gives_a_pipeline_with_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.repository.root, "main");
        assert_eq!(config.repository.refresh_seconds, 30);
        assert_eq!(config.server.data_dir, PathBuf::from("/etc/data"));
        let prod = config.pipeline.environment("prod").unwrap();
        assert_eq!(prod.requires, vec!["qa".to_string()]);
        assert_eq!(prod.approvals, 2);
    }

    #[test]
    fn unknown_from_is_refused_with_its_line() {
        let e = parse(&GOOD.replace("from = \"qa\"", "from = \"qaa\"")).unwrap_err();
        assert_eq!(e.line, Some(12));
        assert!(e.to_string().contains("envline.toml:12"), "{e}");
        assert!(e.message.contains("qaa"), "{e}");
    }

    #[test]
    fn negative_approvals_are_refused() {
        let e = parse(&GOOD.replace("approvals = 2", "approvals = -1")).unwrap_err();
        assert!(e.key.ends_with("approvals"), "{e}");
        assert!(e.message.contains("0 or more"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse(&GOOD.replace("protected = true", "protectd = true")).unwrap_err();
        assert!(e.message.contains("protectd"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn the_public_address_must_be_a_web_address() {
        let with = |url: &str| parse(&format!("{GOOD}\n[server]\npublic_url = \"{url}\"\n"));
        let e = with("envline.example.com").unwrap_err();
        assert_eq!(e.key, "server.public_url");
        let ok = with("https://envline.example.com/").unwrap();
        assert_eq!(
            ok.server.public_url.as_deref(),
            Some("https://envline.example.com")
        );
    }

    #[test]
    fn the_database_is_sqlite_in_the_data_dir_unless_a_postgres_url_is_given() {
        let sqlite = parse(GOOD).unwrap();
        assert_eq!(
            sqlite.database(),
            Database::Sqlite(PathBuf::from("/etc/data/envline.sqlite"))
        );
        let url = "postgres://envline:s3cret@db:5432/envline";
        let postgres = parse(&format!("{GOOD}\n[database]\nurl = \"{url}\"\n")).unwrap();
        assert_eq!(postgres.database(), Database::Postgres(url.into()));
        assert!(!format!("{} {:?}", postgres.database(), postgres).contains("s3cret"));
        let vars = BTreeMap::from([("ENVLINE_DATABASE_URL".to_string(), url.to_string())]);
        let from_env = Config::parse(Path::new("/etc/envline.toml"), GOOD, &vars).unwrap();
        assert_eq!(from_env.database(), Database::Postgres(url.into()));
        let e = parse(&format!(
            "{GOOD}\n[database]\nurl = \"mysql://u:pw@db/envline\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "database.url");
        assert!(e.message.contains("postgres://USER"), "{e}");
        assert!(!e.message.contains("pw@"), "{e}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let vars = BTreeMap::from([
            (
                "ENVLINE_REPOSITORY_URL".to_string(),
                "/other.git".to_string(),
            ),
            (
                "ENVLINE_SERVER_LISTEN".to_string(),
                "127.0.0.1:4000".to_string(),
            ),
            (
                "ENVLINE_ENVIRONMENT_PROD_APPROVALS".to_string(),
                "1".to_string(),
            ),
        ]);
        let config = Config::parse(Path::new("envline.toml"), GOOD, &vars).unwrap();
        assert_eq!(config.repository.url, "/other.git");
        assert_eq!(config.server.listen.port(), 4000);
        assert_eq!(config.pipeline.environment("prod").unwrap().approvals, 1);
    }

    #[test]
    fn a_webhook_secret_is_read_kept_out_of_logs_and_must_be_long_enough() {
        assert!(
            parse(GOOD).unwrap().webhooks.secret.is_none(),
            "off by default"
        );
        let text = format!("{GOOD}\n[webhooks]\nsecret = \"0123456789abcdef0123\"\n");
        let config = parse(&text).unwrap();
        let secret = config.webhooks.secret.as_ref().unwrap();
        assert_eq!(secret.expose(), b"0123456789abcdef0123");
        assert!(
            !format!("{config:?}").contains("0123456789abcdef"),
            "redacted"
        );

        let e = parse(&text.replace("0123456789abcdef0123", "short")).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("webhooks.secret", Some(17)),
            "{e}"
        );
        assert!(e.message.contains("at least 16"), "{e}");

        let vars = BTreeMap::from([(
            "ENVLINE_WEBHOOKS_SECRET".to_string(),
            "from-the-environment-1234".to_string(),
        )]);
        let config = Config::parse(Path::new("envline.toml"), &text, &vars).unwrap();
        assert_eq!(
            config.webhooks.secret.unwrap().expose(),
            b"from-the-environment-1234",
            "the variable overrides the file"
        );
        let vars = BTreeMap::from([("ENVLINE_WEBHOOKS_SECRET".to_string(), String::new())]);
        let e = Config::parse(Path::new("envline.toml"), GOOD, &vars).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("ENVLINE_WEBHOOKS_SECRET", None),
            "{e}"
        );
        assert!(e.message.contains("unset the variable"), "{e}");
    }

    #[test]
    fn unknown_variables_are_refused() {
        let vars = BTreeMap::from([("ENVLINE_SERVR_LISTEN".to_string(), "x".to_string())]);
        let e = Config::parse(Path::new("envline.toml"), GOOD, &vars).unwrap_err();
        assert_eq!(e.key, "ENVLINE_SERVR_LISTEN");
    }
}

/// How long a delivery may keep failing before it is given up, unless the
/// target says otherwise (`give_up_after`).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One `[[notify]]` entry: where to POST, which events, and optionally a
/// secret to sign them with (`X-Envline-Signature-256`, as GitHub signs its
/// webhooks).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub secret: Option<String>,
    /// How long a delivery may keep failing before it is given up (a
    /// duration such as `24h`, `90m`; default 24 hours).
    #[serde(default)]
    pub give_up_after: Option<String>,
}

/// Logs and panics show neither the hook's path nor the secret.
impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("url", &crate::redact::hook_url(&self.url))
            .field("events", &self.events)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("give_up_after", &self.give_up_after)
            .finish()
    }
}

impl NotifyTarget {
    /// Says what is wrong with the entry, if anything.
    pub fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url `{}` must start with http:// or https://",
                self.url
            ));
        }
        if self.events.is_empty() {
            return Err(format!(
                "events is empty; list some of {}",
                NotifyEvent::VARIANTS.join(", ")
            ));
        }
        for e in &self.events {
            if e.parse::<NotifyEvent>().is_err() {
                return Err(format!(
                    "`{e}` is not an event; the events are {}",
                    NotifyEvent::VARIANTS.join(", ")
                ));
            }
        }
        self.give_up_after()?;
        Ok(())
    }

    /// How long a delivery to this target may keep failing.
    pub fn give_up_after(&self) -> Result<Duration, String> {
        match &self.give_up_after {
            None => Ok(GIVE_UP_AFTER),
            Some(text) => humantime::parse_duration(text.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("give_up_after `{text}` is not a duration such as `24h`, `90m` or `2d`")
                }),
        }
    }
}
