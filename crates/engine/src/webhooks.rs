//! Deliveries from a git host (GitHub, GitLab) announcing pushes. A delivery
//! is first checked to come from the host (the shared secret of
//! `[webhooks] secret`), and only then read: a push to a branch of the
//! pipeline asks for a refresh at once ([`Engine::request_refresh`]);
//! anything else is answered and ignored. A delivery that fails the check
//! does nothing at all.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Engine;
use super::config::WebhookSecret;
use super::refresher::RefreshRequest;

/// The git hosts whose webhooks Envline takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// Signs the body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`.
    GitHub,
    /// Sends the secret itself: `X-Gitlab-Token: <secret>`.
    GitLab,
}

impl Host {
    /// The host's name in answers and metrics (`github`, `gitlab`).
    pub fn name(self) -> &'static str {
        match self {
            Host::GitHub => "github",
            Host::GitLab => "gitlab",
        }
    }

    /// The header proving a delivery comes from the host.
    pub fn signature_header(self) -> &'static str {
        match self {
            Host::GitHub => "X-Hub-Signature-256",
            Host::GitLab => "X-Gitlab-Token",
        }
    }

    /// The header naming the delivery's event.
    pub fn event_header(self) -> &'static str {
        match self {
            Host::GitHub => "X-GitHub-Event",
            Host::GitLab => "X-Gitlab-Event",
        }
    }

    /// Where the host's webhook form takes the secret, for messages.
    fn secret_field(self) -> &'static str {
        match self {
            Host::GitHub => "the GitHub webhook's \"Secret\"",
            Host::GitLab => "the GitLab webhook's \"Secret token\"",
        }
    }
}

/// One delivery as it came: the host it claims, its two headers, its body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub host: Host,
    /// The value of [`Host::signature_header`], if sent.
    pub signature: Option<&'a str>,
    /// The value of [`Host::event_header`], if sent.
    pub event: Option<&'a str>,
    /// The body exactly as received (GitHub signs these bytes).
    pub body: &'a [u8],
}

/// What a delivery that was taken did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// The refresh it asked for; `None` when it was ignored.
    pub refresh: Option<RefreshRequest>,
    /// Why, for the host's delivery log.
    pub reason: String,
}

/// Why a delivery was refused; nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `[webhooks] secret` is set: no delivery can be checked.
    #[error("{0}")]
    NotConfigured(String),
    /// The signature or token is missing or wrong.
    #[error("{0}")]
    BadSignature(String),
    /// Correctly signed, but not a delivery Envline can read.
    #[error("{0}")]
    BadPayload(String),
}

/// The part of a push event Envline reads (GitHub and GitLab alike).
#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    reference: String,
}

/// GitHub's `application/x-www-form-urlencoded` content type: the JSON in a
/// `payload` field.
#[derive(Deserialize)]
struct FormPayload {
    payload: String,
}

/// What a delivery's event header says it is.
#[derive(Debug, PartialEq, Eq)]
enum Event<'a> {
    Push,
    Ping,
    Other(&'a str),
}

impl Engine {
    /// What can be checked before the body is read: webhooks are on, and
    /// the signature header is there and well-formed (GitLab's token is
    /// checked whole). Refusing here spares reading a large body from
    /// someone who cannot sign it.
    pub fn check_webhook_headers(
        &self,
        host: Host,
        signature: Option<&str>,
    ) -> Result<(), WebhookError> {
        check_headers(self.webhook_secret(host)?, host, signature).map(|_| ())
    }

    /// Takes a delivery: refused unless it carries the right signature (or
    /// token); then a push to a branch of the pipeline asks for a refresh,
    /// and everything else is ignored with the reason.
    pub fn take_webhook(&self, delivery: &Delivery<'_>) -> Result<WebhookOutcome, WebhookError> {
        verify(self.webhook_secret(delivery.host)?, delivery)?;
        let ignored = |reason: String| {
            Ok(WebhookOutcome {
                refresh: None,
                reason,
            })
        };
        match event(delivery)? {
            Event::Ping => ignored(
                "pong: the webhook reaches Envline and its secret is right; pushes will refresh"
                    .into(),
            ),
            Event::Other(name) => ignored(format!(
                "`{name}` events move no branch; only pushes refresh"
            )),
            Event::Push => {
                let reference = pushed_ref(delivery.body)?;
                let Some(branch) = reference.strip_prefix("refs/heads/") else {
                    return ignored(format!(
                        "`{reference}` is not a branch (a tag?): it moves no environment"
                    ));
                };
                let pipeline = self.pipeline_now();
                if pipeline.environment_of_branch(branch).is_none() {
                    let mut branches = vec![pipeline.root_branch().to_owned()];
                    branches.extend(pipeline.environments().iter().map(|e| e.branch.clone()));
                    return ignored(format!(
                        "`{branch}` is not a branch of the pipeline ({})",
                        branches.join(", ")
                    ));
                }
                let refresh = self.refresher().request();
                let reason = match refresh {
                    RefreshRequest::Started => format!("a push to `{branch}`: refreshing now"),
                    RefreshRequest::Queued => format!(
                        "a push to `{branch}`: a refresh is under way; the next one, which sees this push, is queued"
                    ),
                };
                Ok(WebhookOutcome {
                    refresh: Some(refresh),
                    reason,
                })
            }
        }
    }

    /// The secret deliveries are checked with, or why there is none.
    ///
    /// Without one the endpoints answer 503 `webhooks_not_configured`, not
    /// 404: the URL is right and the host's delivery log should say what to
    /// change on the server (a 404 sends people hunting for a typo in the
    /// URL), and 503 is what a host shows as "the receiver is not ready".
    fn webhook_secret(&self, host: Host) -> Result<&WebhookSecret, WebhookError> {
        self.config.webhooks.secret.as_ref().ok_or_else(|| {
            WebhookError::NotConfigured(format!(
                "webhooks are off on this server: set `[webhooks] secret = \"…\"` in Envline's \
                 configuration (or ENVLINE_WEBHOOKS_SECRET) to a long random string, give {} the \
                 same value, and restart Envline; nothing was done",
                host.secret_field()
            ))
        })
    }
}

/// Checks the signature header without the body: GitLab's token whole
/// (constant-time), GitHub's signature for its form; returns GitHub's tag,
/// which [`verify`] checks against the body.
fn check_headers(
    secret: &WebhookSecret,
    host: Host,
    signature: Option<&str>,
) -> Result<Option<Vec<u8>>, WebhookError> {
    let header = host.signature_header();
    let Some(signature) = signature else {
        return Err(WebhookError::BadSignature(format!(
            "no {header} header: give {} the value of Envline's `[webhooks] secret`; nothing was done",
            host.secret_field()
        )));
    };
    match host {
        Host::GitHub => signature
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h.trim()).ok())
            .filter(|t| t.len() == 32)
            .map(Some)
            .ok_or_else(|| {
                WebhookError::BadSignature(format!(
                    "{header} is not `sha256=` and 64 hex digits; nothing was done"
                ))
            }),
        Host::GitLab => {
            // Digests have one length whatever was sent, so the comparison
            // (constant-time) says nothing about the secret's length either.
            let sent = Sha256::digest(signature.as_bytes());
            let expected = Sha256::digest(secret.expose());
            if bool::from(sent.ct_eq(&expected)) {
                Ok(None)
            } else {
                Err(mismatch(host))
            }
        }
    }
}

/// Checks the delivery carries the secret: GitHub's HMAC-SHA256 of the body,
/// or GitLab's token, compared in constant time.
fn verify(secret: &WebhookSecret, delivery: &Delivery<'_>) -> Result<(), WebhookError> {
    let Some(tag) = check_headers(secret, delivery.host, delivery.signature)? else {
        return Ok(());
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes keys of any length");
    mac.update(delivery.body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&tag).map_err(|_| mismatch(delivery.host))
}

/// The refusal of a signature or token that is not the secret's.
fn mismatch(host: Host) -> WebhookError {
    WebhookError::BadSignature(format!(
        "{} does not match: {} is not Envline's `[webhooks] secret`{}; nothing was done",
        host.signature_header(),
        host.secret_field(),
        if host == Host::GitHub {
            ", or the body was changed on the way"
        } else {
            ""
        }
    ))
}

/// The delivery's event, from its header.
fn event<'a>(delivery: &Delivery<'a>) -> Result<Event<'a>, WebhookError> {
    let host = delivery.host;
    let Some(name) = delivery.event.map(str::trim) else {
        return Err(WebhookError::BadPayload(format!(
            "no {} header: {} sends one with every delivery; is this webhook set up as a {} one?",
            host.event_header(),
            match host {
                Host::GitHub => "GitHub",
                Host::GitLab => "GitLab",
            },
            host.name()
        )));
    };
    Ok(match (host, name) {
        (Host::GitHub, "push") | (Host::GitLab, "Push Hook") => Event::Push,
        (Host::GitHub, "ping") => Event::Ping,
        (_, other) => Event::Other(other),
    })
}

/// The ref a push event names, from a JSON body or GitHub's form-encoded one.
fn pushed_ref(body: &[u8]) -> Result<String, WebhookError> {
    let unreadable = |e: String| {
        WebhookError::BadPayload(format!(
            "the push event is not JSON with a `ref` ({e}); set the webhook's content type to application/json"
        ))
    };
    let json = body.trim_ascii_start();
    let push: Push = if json.starts_with(b"{") {
        serde_json::from_slice(json).map_err(|e| unreadable(e.to_string()))?
    } else {
        let form: FormPayload = serde_urlencoded::from_bytes(body)
            .map_err(|e| unreadable(format!("nor a form with a `payload`: {e}")))?;
        serde_json::from_str(&form.payload).map_err(|e| unreadable(e.to_string()))?
    };
    Ok(push.reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        let text = "[repository]\nurl = \"/r.git\"\n[webhooks]\nsecret = \"it-is-a-secret-0123\"\n";
        let config = super::super::config::Config::parse(
            std::path::Path::new("envline.toml"),
            text,
            &Default::default(),
        )
        .unwrap();
        config.webhooks.secret.unwrap()
    }

    fn sign(key: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn github<'a>(signature: Option<&'a str>, body: &'a [u8]) -> Delivery<'a> {
        Delivery {
            host: Host::GitHub,
            signature,
            event: Some("push"),
            body,
        }
    }

    #[test]
    fn github_signatures_are_the_hmac_of_the_exact_body() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"it-is-a-secret-0123", body);
        assert_eq!(verify(&secret(), &github(Some(&good), body)), Ok(()));
        let upper = format!("sha256={}", good["sha256=".len()..].to_uppercase());
        assert_eq!(verify(&secret(), &github(Some(&upper), body)), Ok(()));

        let refused = |signature: Option<&str>, body: &[u8]| match verify(
            &secret(),
            &github(signature, body),
        ) {
            Err(WebhookError::BadSignature(m)) => m,
            other => panic!("not refused: {other:?}"),
        };
        assert!(refused(None, body).contains("no X-Hub-Signature-256"));
        let forged = sign(b"another-secret-456789", body);
        assert!(refused(Some(&forged), body).contains("does not match"));
        assert!(refused(Some(&good), br#"{"ref":"refs/heads/prod"}"#).contains("does not match"));
        assert!(refused(Some(&good[7..]), body).contains("sha256="));
        assert!(refused(Some("sha256=zz"), body).contains("64 hex digits"));
    }

    #[test]
    fn gitlab_tokens_must_equal_the_secret() {
        let delivery = |token| Delivery {
            host: Host::GitLab,
            signature: token,
            event: Some("Push Hook"),
            body: b"{}",
        };
        assert_eq!(
            verify(&secret(), &delivery(Some("it-is-a-secret-0123"))),
            Ok(())
        );
        for wrong in [Some("it-is-a-secret-012"), Some(""), None] {
            assert!(matches!(
                verify(&secret(), &delivery(wrong)),
                Err(WebhookError::BadSignature(_))
            ));
        }
    }

    #[test]
    fn events_and_refs_are_read_from_either_content_type() {
        let d = |host, event| Delivery {
            host,
            signature: None,
            event,
            body: b"",
        };
        assert_eq!(event(&d(Host::GitHub, Some("push"))), Ok(Event::Push));
        assert_eq!(event(&d(Host::GitHub, Some("ping"))), Ok(Event::Ping));
        assert_eq!(
            event(&d(Host::GitLab, Some("Tag Push Hook"))),
            Ok(Event::Other("Tag Push Hook"))
        );
        assert!(matches!(
            event(&d(Host::GitLab, None)),
            Err(WebhookError::BadPayload(_))
        ));

        assert_eq!(
            pushed_ref(br#" {"ref": "refs/heads/qa", "after": "0"}"#).unwrap(),
            "refs/heads/qa"
        );
        let form = format!("payload={}", form_encoded(r#"{"ref":"refs/heads/main"}"#));
        assert_eq!(pushed_ref(form.as_bytes()).unwrap(), "refs/heads/main");
        let e = pushed_ref(b"{\"after\": \"0\"}").unwrap_err();
        assert!(e.to_string().contains("application/json"), "{e}");
    }

    fn form_encoded(text: &str) -> String {
        serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_owned()
    }
}
