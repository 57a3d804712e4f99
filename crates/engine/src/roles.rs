//! Roles and what they allow: who may do what to which environment, and
//! the refusal that says what is missing. Plain values with no database, so
//! the gates, the store and the pages can all decide from them.

use std::fmt;
use std::str::FromStr;

/// A role, optionally limited to environments matching a glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Promoter,
    Tester,
    Approver,
    IncidentCommander,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Promoter,
        Role::Tester,
        Role::Approver,
        Role::IncidentCommander,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Promoter => "promoter",
            Role::Tester => "tester",
            Role::Approver => "approver",
            Role::IncidentCommander => "incident-commander",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role `{s}`; roles are {}",
                    Role::ALL.map(|r| r.as_str()).join(", ")
                )
            })
    }
}

/// A role and the environments it covers (`approver:prod-*`).
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: Role,
    pub scope: String,
    matcher: globset::GlobMatcher,
}

impl Grant {
    pub fn new(role: Role, scope: &str) -> Result<Grant, String> {
        let glob = globset::Glob::new(scope)
            .map_err(|e| format!("bad environment glob `{scope}`: {e}"))?;
        Ok(Grant {
            role,
            scope: scope.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Parses `ROLE` or `ROLE:GLOB`.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (role, scope) = text.split_once(':').unwrap_or((text, "*"));
        Grant::new(role.parse()?, scope)
    }

    fn covers(&self, environment: Option<&str>) -> bool {
        match environment {
            Some(env) => self.matcher.is_match(env),
            None => self.scope == "*",
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope == "*" {
            write!(f, "{}", self.role)
        } else {
            write!(f, "{}:{}", self.role, self.scope)
        }
    }
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Promote,
    Verify,
    Approve,
    /// Move an environment backwards or sideways (rollback, realign, reset).
    Reset {
        protected: bool,
    },
    Hold,
    Refresh,
    /// Start, resolve and merge back hotfix mode (S4).
    Hotfix,
    Admin,
}

impl Permission {
    /// Roles that grant it (admin grants everything).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Permission::Read => &Role::ALL,
            Permission::Promote => &[Role::Promoter, Role::Admin],
            Permission::Verify => &[Role::Tester, Role::Admin],
            Permission::Approve => &[Role::Approver, Role::Admin],
            Permission::Reset { protected: true } => &[Role::IncidentCommander, Role::Admin],
            Permission::Reset { protected: false } => {
                &[Role::Promoter, Role::IncidentCommander, Role::Admin]
            }
            Permission::Hold => &[Role::Promoter, Role::IncidentCommander, Role::Admin],
            Permission::Refresh => &[
                Role::Promoter,
                Role::Tester,
                Role::IncidentCommander,
                Role::Admin,
            ],
            Permission::Hotfix => &[Role::IncidentCommander, Role::Admin],
            Permission::Admin => &[Role::Admin],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Promote => "promote",
            Permission::Verify => "verify",
            Permission::Approve => "approve",
            Permission::Reset { protected: true } => "reset a protected environment",
            Permission::Reset { protected: false } => "reset",
            Permission::Hold => "hold",
            Permission::Refresh => "refresh",
            Permission::Hotfix => "run hotfix mode",
            Permission::Admin => "administer",
        }
    }
}

/// A refusal that names the missing permission, or (`only`) who may do it
/// when a role alone is not enough (a hold is released by whoever placed it).
#[derive(Debug, Clone)]
pub struct Forbidden {
    pub user: String,
    pub permission: Permission,
    pub environment: Option<String>,
    pub grants: Vec<String>,
    /// What was refused and who may do it, when that is decided by more
    /// than a role ("release hold 3 on `qa`: it was placed by ada; …").
    pub only: Option<String>,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(only) = &self.only {
            return write!(f, "{} may not {only}", self.user);
        }
        let on = self
            .environment
            .as_ref()
            .map(|e| format!(" on `{e}`"))
            .unwrap_or_default();
        let roles = self
            .permission
            .roles()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        let scope = self
            .environment
            .as_ref()
            .map(|e| format!(" for `{e}`"))
            .unwrap_or_default();
        let has = if self.grants.is_empty() {
            "no roles".to_string()
        } else {
            self.grants.join(", ")
        };
        write!(
            f,
            "{user} may not {what}{on}: that needs the role {roles}{scope}; {user} has {has}",
            user = self.user,
            what = self.permission.name()
        )
    }
}

impl std::error::Error for Forbidden {}

/// Someone acting: a user with grants, or Envline itself (auto-promotion, reconciliation).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub grants: Vec<Grant>,
    /// Envline's own actions: every permission.
    pub system: bool,
}

impl Principal {
    /// Envline itself, for auto-promotions and start-up reconciliation.
    pub fn system() -> Principal {
        Principal {
            user: "envline".into(),
            grants: Vec::new(),
            system: true,
        }
    }

    /// The anonymous reader allowed by `auth.anonymous_read`.
    pub fn anonymous() -> Principal {
        Principal {
            user: "anonymous".into(),
            grants: vec![Grant::new(Role::Viewer, "*").expect("valid glob")],
            system: false,
        }
    }

    pub fn can(&self, permission: Permission, environment: Option<&str>) -> bool {
        // Reading and refreshing are not about one environment: any grant of
        // a fitting role does, whatever environments it is limited to.
        let unscoped =
            environment.is_none() && matches!(permission, Permission::Read | Permission::Refresh);
        self.system
            || self.grants.iter().any(|g| {
                (g.role == Role::Admin || permission.roles().contains(&g.role))
                    && (unscoped || g.covers(environment))
            })
    }

    /// `Ok` when allowed, else a refusal that says what is missing.
    pub fn require(
        &self,
        permission: Permission,
        environment: Option<&str>,
    ) -> Result<(), Forbidden> {
        if self.can(permission, environment) {
            Ok(())
        } else {
            Err(Forbidden {
                user: self.user.clone(),
                permission,
                environment: environment.map(str::to_owned),
                grants: self.grants.iter().map(|g| g.to_string()).collect(),
                only: None,
            })
        }
    }
}
