//! Why a single sign-on did not sign someone in: the callback sends the
//! browser back to the sign-in page with `?sso_error=CODE`, and the page
//! shows the code's text. Only a code travels in the address, so a link
//! made by someone else cannot put words of theirs on Envline's page; the
//! details go to the server's log.

use crate::choice;

choice! {
    /// A single sign-on that did not sign the person in, and why.
    pub enum SsoFailure {
        /// The sign-in took too long, or its answer was used already.
        Expired,
        /// The answer came to a browser that did not start the sign-in.
        OtherBrowser,
        /// The identity provider did not sign the person in (cancelled, refused).
        Refused,
        /// Envline could not reach the identity provider.
        Unreachable,
        /// The provider's answer failed a check (signature, issuer, audience, expiry, nonce).
        Invalid,
        /// The provider did not say the person's user name.
        NoUserName,
        /// The provider's user name cannot be an Envline user name.
        BadUserName,
        /// None of the person's groups is mapped to a role.
        NoRole,
        /// A local account already has the person's user name.
        NameTaken,
        /// Single sign-on is not configured here.
        NotConfigured,
        /// Envline itself failed (its database did not answer).
        Internal,
        /// Too many sign-ins started from one address in a minute.
        TooMany,
    }
}

impl SsoFailure {
    /// What the sign-in page says, and what to do.
    pub fn message(self) -> &'static str {
        match self {
            SsoFailure::Expired => "That sign-in took too long or was used already. Sign in again.",
            SsoFailure::OtherBrowser => {
                "That sign-in was started in another browser (or its cookie is gone). Sign in again from this one."
            }
            SsoFailure::Refused => {
                "The identity provider did not sign you in (perhaps it was cancelled). Sign in again, or ask an administrator."
            }
            SsoFailure::Unreachable => {
                "Envline cannot reach the identity provider right now. Try again in a moment; an administrator finds the reason in Envline's log."
            }
            SsoFailure::Invalid => {
                "The identity provider's answer failed Envline's checks (signature, issuer, audience, expiry or nonce), so you were not signed in. An administrator finds the reason in Envline's log."
            }
            SsoFailure::NoUserName => {
                "The identity provider did not give your user name (the claim named by auth.oidc.username_claim). An administrator can name another claim."
            }
            SsoFailure::NoRole => {
                "None of your groups at the identity provider gives a role in Envline. Ask an administrator to map one of them in [auth.oidc.roles]; Envline's log lists the groups it received."
            }
            SsoFailure::BadUserName => {
                "Your user name at the identity provider cannot be an Envline user name (1 to 64 letters, digits, '-', '_', '.', '@'). An administrator can name another claim (auth.oidc.username_claim)."
            }
            SsoFailure::NameTaken => {
                "Your user name already belongs to another Envline account (a local one, or someone else's from the identity provider), which single sign-on never takes over. Ask an administrator; Envline's log says whose it is."
            }
            SsoFailure::NotConfigured => {
                "Single sign-on is not configured on this server: sign in with your password."
            }
            SsoFailure::TooMany => {
                "Too many sign-ins were started from your address in the last minute. Wait a minute and try again."
            }
            SsoFailure::Internal => {
                "Envline could not finish signing you in (its database did not answer). Try again; an administrator finds the reason in Envline's log."
            }
        }
    }
}
