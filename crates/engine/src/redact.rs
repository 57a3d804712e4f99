//! Keeping credentials out of what people and logs see: a repository URL
//! such as `https://ci:s3cret@git.example.com/gitops.git` works for git, but
//! every message, log line and API field shows it as
//! `https://ci:***@git.example.com/gitops.git`.

/// What a hidden password is shown as.
pub const HIDDEN: &str = "***";

/// `text` with the password of every `scheme://user:password@host` in it
/// hidden (the user name stays: it tells which account is used). Text
/// without such a URL comes back as it was.
pub fn credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#' or whitespace (or a quote).
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '\'' | '"') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push(':');
                        out.push_str(HIDDEN);
                    }
                    // A lone token (`https://TOKEN@host`) is a secret too.
                    None if !userinfo.is_empty() && looks_like_token(userinfo) => {
                        out.push_str(HIDDEN)
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A user part long and random enough to be an access token rather than a
/// user name (`ghp_…`, `glpat-…`, 20+ characters).
fn looks_like_token(user: &str) -> bool {
    user.len() >= 20 || user.starts_with("ghp_") || user.starts_with("glpat-")
}

/// A target's URL without its path: chat hooks carry their secret there.
pub fn hook_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let host = u.host_str().unwrap_or("");
            let hidden = u.path() != "/" || u.query().is_some() || !u.username().is_empty();
            format!(
                "{}://{host}{port}{}",
                u.scheme(),
                if hidden { "/…" } else { "" }
            )
        }
        Err(_) => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::credentials;

    #[test]
    fn passwords_in_urls_are_hidden_and_the_rest_is_kept() {
        assert_eq!(
            credentials("fatal: unable to access 'https://ci:s3cret@git.example.com/g.git/': 403"),
            "fatal: unable to access 'https://ci:***@git.example.com/g.git/': 403"
        );
        assert_eq!(
            credentials("http://a:b@h:80 and ssh://git@h/x and git@h:x"),
            "http://a:***@h:80 and ssh://git@h/x and git@h:x"
        );
        assert_eq!(
            credentials("https://ghp_abcdefabcdefabcdefabcdef@github.com/x"),
            "https://***@github.com/x"
        );
        assert_eq!(credentials("no url here"), "no url here");
        assert_eq!(credentials("file:///srv/g.git"), "file:///srv/g.git");
        assert_eq!(credentials("https://u:p@w:d@h/"), "https://u:***@h/");
    }
}
