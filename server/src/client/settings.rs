//! Which server the client commands talk to, and with which token: from
//! `--server`/`--token`, else `ENVLINE_SERVER`/`ENVLINE_TOKEN` (both read by
//! clap), else the file `envline login` writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `envline login` saves: one server and the token for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLogin {
    pub server: String,
    pub token: String,
}

/// Where the login file lives: `$XDG_CONFIG_HOME/envline/login.toml` (or the
/// platform's config directory).
pub fn login_file() -> Result<PathBuf, String> {
    dirs::config_dir()
        .map(|d| d.join("envline").join("login.toml"))
        .ok_or_else(|| {
            "cannot find a config directory for the login file: set HOME or XDG_CONFIG_HOME, \
             or give --server and --token"
                .to_string()
        })
}

/// The saved login, if there is one that can be read; a broken file is
/// reported and passed over, so the flags (and `envline login`) still work.
pub fn saved() -> Option<SavedLogin> {
    let file = login_file().ok()?;
    match load(&file) {
        Ok(saved) => saved,
        Err(e) => {
            eprintln!("envline: passing over the login file: {e}");
            None
        }
    }
}

/// Reads the login file, if there is one.
pub fn load(file: &Path) -> Result<Option<SavedLogin>, String> {
    match std::fs::read_to_string(file) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
            format!(
                "the login file {} is not valid: {e}; `envline logout` removes it",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", file.display())),
    }
}

/// Writes the login file readable by its owner only (0600, in a 0700
/// directory), replacing any earlier one in one rename.
pub fn save(file: &Path, login: &SavedLogin) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = file.parent().ok_or("the login file has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let text = toml::to_string(login).map_err(|e| e.to_string())?;
    let partial = file.with_extension("toml.partial");
    let _ = std::fs::remove_file(&partial);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    out.write_all(text.as_bytes())
        .and_then(|_| out.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&partial, file).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// The server and token a client command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The server's base URL, without a trailing slash.
    pub server: String,
    pub token: Option<String>,
}

/// Picks the server and token: the flags (or their environment variables)
/// first, then the login file. A token from the file is used only with the
/// server it was saved for.
pub fn resolve(
    server: Option<String>,
    token: Option<String>,
    saved: Option<SavedLogin>,
) -> Result<Target, String> {
    let token = token.filter(|t| !t.is_empty());
    let server = server.filter(|s| !s.is_empty());
    let (server, token) = match (server, saved) {
        (Some(server), Some(saved)) if same_server(&server, &saved.server) => {
            (server, token.or(Some(saved.token)))
        }
        (Some(server), _) => (server, token),
        (None, Some(saved)) => match token {
            Some(token) if token != saved.token => {
                return Err(format!(
                    "a token was given (--token or ENVLINE_TOKEN) but no server; give --server or \
                     ENVLINE_SERVER too (the saved login is for {}, and its token is not this one)",
                    saved.server
                ));
            }
            _ => (saved.server, Some(saved.token)),
        },
        (None, None) => {
            return Err(
                "which Envline server? Give --server URL, set ENVLINE_SERVER, \
                        or run `envline login --server URL` once"
                    .into(),
            );
        }
    };
    Ok(Target {
        server: normalize(&server)?,
        token,
    })
}

fn same_server(a: &str, b: &str) -> bool {
    normalize(a).ok() == normalize(b).ok()
}

/// `host:port` becomes `http://host:port`; the trailing slash goes.
pub fn normalize(server: &str) -> Result<String, String> {
    let s = server.trim().trim_end_matches('/');
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        _ => Err(format!(
            "`{server}` is not a server address; give one like https://envline.example.com or 127.0.0.1:3000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Option<SavedLogin> {
        Some(SavedLogin {
            server: "https://envline.example.com/".into(),
            token: "saved".into(),
        })
    }

    #[test]
    fn flags_win_then_the_file() {
        let t = resolve(Some("127.0.0.1:3000".into()), Some("flag".into()), saved()).unwrap();
        assert_eq!(t.server, "http://127.0.0.1:3000");
        assert_eq!(t.token.as_deref(), Some("flag"));
        let t = resolve(None, None, saved()).unwrap();
        assert_eq!(t.server, "https://envline.example.com");
        assert_eq!(t.token.as_deref(), Some("saved"));
    }

    #[test]
    fn a_saved_token_is_never_sent_to_another_server() {
        let t = resolve(Some("http://other:3000".into()), None, saved()).unwrap();
        assert_eq!(t.token, None);
        let t = resolve(Some("https://envline.example.com".into()), None, saved()).unwrap();
        assert_eq!(t.token.as_deref(), Some("saved"));
    }

    #[test]
    fn a_given_token_never_goes_to_the_saved_server_unasked() {
        let e = resolve(None, Some("other".into()), saved()).unwrap_err();
        assert!(e.contains("--server"), "{e}");
        let t = resolve(None, Some("saved".into()), saved()).unwrap();
        assert_eq!(t.server, "https://envline.example.com");
    }

    #[test]
    fn no_server_says_how_to_give_one() {
        let e = resolve(None, Some("t".into()), None).unwrap_err();
        assert!(
            e.contains("--server") && e.contains("ENVLINE_SERVER"),
            "{e}"
        );
        assert!(normalize("ftp://x").is_err());
    }

    #[test]
    fn the_login_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("envline/login.toml");
        let login = SavedLogin {
            server: "http://a".into(),
            token: "secret".into(),
        };
        save(&file, &login).unwrap();
        save(&file, &login).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&file).unwrap(), Some(login));
        assert_eq!(load(&dir.path().join("none.toml")).unwrap(), None);
    }
}
