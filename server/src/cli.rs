//! The command line: the server's commands (serve, the demo, people and
//! tokens, the audit check) and the client's (status, promote, approve, …),
//! which talk to a running server over its API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use envline_engine::auth::{self, Grant};
use envline_engine::config::{self, Config};
use envline_engine::git::GitRepo;
use envline_engine::{demo, integrity, open_database};

use crate::client::commands::{
    self as client_commands, ApproveArgs, AuditArgs, HoldArgs, InsightsArgs, PromoteArgs,
    RollbackArgs, VerifyArgs,
};
use crate::client::{Client, EXIT_CODES, Outcome, Output, settings};

/// Branch-per-environment, fast-forward-only GitOps promotions.
///
/// Every environment is a branch of one GitOps repository; promoting is a
/// fast-forward, and the history stays one straight line. Start with
/// `envline demo` to see it on a demo repository.
#[derive(Debug, Parser)]
#[command(name = "envline", version, after_help = format!("Client commands (status, promote, verify, approve, rollback, hold, release, audit) talk to a running server: --server and --token, else ENVLINE_SERVER and ENVLINE_TOKEN, else what `envline login` saved.\n\n{EXIT_CODES}\n\nServer commands read the configuration from --config FILE, ENVLINE_CONFIG, or ./envline.toml.\nEvery key can be overridden by an environment variable: {}.", config::OVERRIDES_HELP))]
pub struct Cli {
    /// The server's configuration file (default: ENVLINE_CONFIG, then ./envline.toml).
    #[arg(long, global = true, env = "ENVLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Client commands: the Envline server's address (https://envline.example.com).
    #[arg(long, global = true, env = "ENVLINE_SERVER")]
    server: Option<String>,
    /// Client commands: an API token (make one on the Admin page or with `envline token create`).
    #[arg(long, global = true, env = "ENVLINE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Client commands: tables for people, or the API's JSON for scripts.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    /// Server commands (user, token): who the audit log names as having made
    /// the change, as `cli:NAME` (default: the operating-system user).
    #[arg(long, global = true, env = "ENVLINE_ACTOR")]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Where every environment is: its commit, tests, holds and open requests.
    Status,
    /// Promote environments (exit 3 when approvers must sign off; --wait waits for them).
    Promote(PromoteArgs),
    /// Record a test result for exactly one commit in an environment.
    Verify(VerifyArgs),
    /// Approve (or --reject) a promotion request.
    Approve(ApproveArgs),
    /// Move environments back to an earlier commit.
    Rollback(RollbackArgs),
    /// Stop promotions into environments, with a reason.
    Hold(HoldArgs),
    /// Lift a hold by its number.
    Release {
        /// The hold's number (`envline status` and `envline hold` show it).
        id: i64,
    },
    /// Save the server and an API token for the client commands (mode 0600).
    ///
    /// The token comes from --token, ENVLINE_TOKEN, a hidden prompt, or standard input.
    Login,
    /// Forget what `envline login` saved.
    Logout,
    /// Serve the dashboard and the HTTP API.
    Serve,
    /// Create a demo GitOps repository with the seed's pipeline (if it does not exist yet) and serve it.
    Demo {
        /// Where the demo lives.
        #[arg(long, default_value = "envline-demo")]
        dir: PathBuf,
        /// Only create the demo; do not serve it.
        #[arg(long)]
        no_serve: bool,
    },
    /// Check the configuration file and print the pipeline.
    Check,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Delivery figures per environment: deployments per week, change failure rate, lead time and time to restore (client).
    Insights(InsightsArgs),
    /// The audit log from the server (client); `audit verify` checks the chain (server).
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        check: Option<AuditCommand>,
        #[command(flatten)]
        list: AuditArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, or add roles to one. The password comes from ENVLINE_PASSWORD when set;
    /// without it the account can only use API tokens.
    Add {
        name: String,
        /// viewer, promoter, tester, approver, incident-commander or admin; ROLE:GLOB limits it (approver:prod-*).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Grant roles to a user, or take them away (as granted: ROLE or ROLE:GLOB).
    Role {
        name: String,
        #[arg(long = "grant")]
        grant: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// List users and their roles.
    List,
    /// Set a user's password (from ENVLINE_PASSWORD, or asked for, hidden);
    /// every session of theirs ends.
    Password { name: String },
    /// Remove a user: roles, tokens and sessions go with them, and their
    /// approvals of waiting requests are withdrawn. The last admin stays.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token; prints it alone on stdout (it is stored hashed and shown once).
    Create {
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List tokens (their ids, never the tokens themselves).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (see `token list`); it stops working within seconds.
    Revoke { id: i64 },
}

/// Who the audit log names for changes made from the command line:
/// `cli:` and `--actor` (or `ENVLINE_ACTOR`), else the operating-system user
/// running the command (looked up by uid, so it holds without `$USER`).
fn cli_actor(given: Option<&str>) -> Result<String, String> {
    if let Some(name) = given.map(str::trim) {
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(format!(
                "`--actor {name}` cannot name a person: use 1 to 64 letters, digits, '-', '_', '.', '@'"
            ));
        }
        return Ok(format!("cli:{name}"));
    }
    let uid = nix::unistd::Uid::current();
    let who = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid{uid}"));
    Ok(format!("cli:{who}"))
}

/// A password for `envline user password`: ENVLINE_PASSWORD, else asked
/// for twice on the terminal (hidden).
fn new_password(name: &str) -> Result<String, String> {
    if let Some(p) = std::env::var("ENVLINE_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return Ok(p);
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "no password: set ENVLINE_PASSWORD, or run `envline user password {name}` in a terminal to be asked"
        ));
    }
    let first = rpassword::prompt_password(format!("New password for {name}: "))
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let again = rpassword::prompt_password("Once more: ")
        .map_err(|e| format!("cannot read the password: {e}"))?;
    if first != again {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(first)
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain in the server's database: exit 0 when intact, 1 when broken.
    Verify,
}

/// A client for the server the flags, the environment or the login file name.
fn client(server: Option<String>, token: Option<String>, output: Output) -> Result<Client, String> {
    // Both given: the login file is not needed (nor read).
    let saved = if server.is_some() && token.is_some() {
        None
    } else {
        settings::saved()
    };
    let target = settings::resolve(server, token, saved)?;
    Client::new(target, output)
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    let file = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_FILE));
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    Config::load(&file, &vars).map_err(|e| e.to_string())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, String> {
    let Cli {
        config: config_file,
        server,
        token,
        output,
        actor,
        command,
    } = cli;
    let audited_as = || cli_actor(actor.as_deref());
    let connect = || client(server.clone(), token.clone(), output);
    let ended = |outcome: Outcome| Ok(ExitCode::from(outcome.code()));
    match command {
        Command::Status => ended(client_commands::status(&connect()?).await?),
        Command::Promote(args) => ended(client_commands::promote(&connect()?, args).await?),
        Command::Verify(args) => ended(client_commands::verify(&connect()?, args).await?),
        Command::Approve(args) => ended(client_commands::approve(&connect()?, args).await?),
        Command::Rollback(args) => ended(client_commands::rollback(&connect()?, args).await?),
        Command::Hold(args) => ended(client_commands::hold(&connect()?, args).await?),
        Command::Release { id } => ended(client_commands::release(&connect()?, id).await?),
        Command::Audit { check: None, list } => {
            ended(client_commands::audit(&connect()?, list).await?)
        }
        Command::Insights(args) => ended(client_commands::insights(&connect()?, args).await?),
        Command::Login => ended(client_commands::login(server, token, output).await?),
        Command::Logout => ended(client_commands::logout()?),
        Command::Serve => {
            let config = load(config_file.as_deref())?;
            crate::serve::serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, no_serve } => {
            let created = !dir.join("envline.toml").exists();
            let file = demo::create(&dir)
                .map_err(|e| format!("cannot create the demo in {}: {e}", dir.display()))?;
            if created {
                eprintln!(
                    "envline: created a demo GitOps repository in {}",
                    dir.display()
                );
            } else {
                eprintln!("envline: using the existing demo in {}", dir.display());
            }
            if no_serve {
                println!("{}", file.display());
                return Ok(ExitCode::SUCCESS);
            }
            let config = load(Some(&file))?;
            crate::serve::serve(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let config = load(config_file.as_deref())?;
            println!(
                "{}: ok; root `{}`",
                config.file.display(),
                config.pipeline.root()
            );
            for env in config.pipeline.environments() {
                println!(
                    "  {:<16} from {:<14} requires [{}]{}{}{}",
                    env.name,
                    env.from,
                    env.requires.join(", "),
                    if env.approvals > 0 {
                        format!(", {} approvals", env.approvals)
                    } else {
                        String::new()
                    },
                    if env.protected { ", protected" } else { "" },
                    if env.auto_promote {
                        ", auto-promote"
                    } else {
                        ""
                    }
                );
            }
            println!(
                "  webhooks: {}",
                if config.webhooks.secret.is_some() {
                    "on (POST /api/v1/webhooks/github, /api/v1/webhooks/gitlab)"
                } else {
                    "off (set [webhooks] secret or ENVLINE_WEBHOOKS_SECRET to take pushes at once)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add { name, roles }) => {
            let config = load(config_file.as_deref())?;
            let grants = roles
                .iter()
                .map(|r| Grant::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            let password = std::env::var("ENVLINE_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            let pool = open_database(&config).await?;
            auth::add_user(&pool, &audited_as()?, &name, &grants, password.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "envline: user `{name}` has {}{}",
                grants
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if password.is_some() {
                    " and a password"
                } else {
                    "; no password: create a token with `envline token create --user NAME`"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Create { user, label }) => {
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            let token = auth::create_token(&pool, &audited_as()?, &user, &label)
                .await
                .map_err(|e| e.to_string())?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Role {
            name,
            grant,
            remove,
        }) => {
            if grant.is_empty() && remove.is_empty() {
                return Err("give --grant ROLE[:GLOB] or --remove ROLE[:GLOB]".into());
            }
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            let grants = grant
                .iter()
                .map(|r| Grant::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            if !grants.is_empty() {
                auth::add_user(&pool, &audited_as()?, &name, &grants, None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for r in &remove {
                let g = Grant::parse(r)?;
                auth::remove_role(&pool, &audited_as()?, &name, &g)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            eprintln!("envline: roles of `{name}` updated");
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Password { name }) => {
            let config = load(config_file.as_deref())?;
            let actor = audited_as()?;
            let password = new_password(&name)?;
            let pool = open_database(&config).await?;
            let ended = auth::set_password(&pool, &actor, &name, &password, None)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "envline: `{name}` has a new password; {ended} session(s) ended (live pages close within seconds)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Remove { name }) => {
            let config = load(config_file.as_deref())?;
            let actor = audited_as()?;
            let pool = open_database(&config).await?;
            auth::remove_user(&pool, &actor, &name)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "envline: `{name}` is removed: roles, tokens and sessions are gone, and their waiting approvals withdrawn"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::List) => {
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            for (name, roles) in auth::users(&pool).await.map_err(|e| e.to_string())? {
                println!("{name:<24} {}", roles.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::List { user }) => {
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            for t in auth::tokens(&pool, user.as_deref())
                .await
                .map_err(|e| e.to_string())?
            {
                println!(
                    "{:>5}  {:<20} {:<16} created {}{}",
                    t.id,
                    t.user,
                    t.label,
                    t.created_at,
                    t.revoked_at
                        .map(|r| format!(", revoked {r}"))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            auth::revoke_token(&pool, &audited_as()?, id)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("envline: token {id} is revoked");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            check: Some(AuditCommand::Verify),
            ..
        } => {
            let config = load(config_file.as_deref())?;
            let pool = open_database(&config).await?;
            let git = GitRepo::open(&config.clone_dir())
                .map_err(|e| {
                    format!(
                        "cannot open the clone in {}: {e}",
                        config.clone_dir().display()
                    )
                })?
                .with_network_timeout(std::time::Duration::from_secs(
                    config.repository.network_timeout_seconds,
                ));
            let check = integrity::check(
                &pool,
                std::sync::Arc::new(git),
                &config.pipeline,
                None,
                true,
            )
            .await
            .map_err(|e| e.to_string())?;
            if let Some(anchor) = &check.anchor {
                println!("anchor: {anchor}");
            }
            for problem in &check.problems {
                println!("problem: {problem}");
            }
            if check.intact {
                println!("intact: {}", check.message);
                Ok(ExitCode::SUCCESS)
            } else {
                println!("broken: {}", check.message);
                Ok(ExitCode::from(1))
            }
        }
    }
}
