//! Who a request acts as. With `--jwt-secret` or `--jwt-jwks` the caller is the verified
//! token's `sub`,
//! and a `user` given in the request must be that same user; without it (dev), the
//! request's `user` is taken as is. In a conversation, the token's `conversations` claim
//! must also list it ([`Auth::authenticate_member`]). Both edges (HTTP and NATS ingest)
//! ask this module.

use live_common::ApiError;
use live_common::jwt::{Claims, Key, Verifier};
use live_proto::{ConversationId, UserId};

/// Why a request may not act as the user it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 400: the user is missing (auth off) or not a valid id.
    #[error("{0}")]
    BadUser(String),
    /// 401: auth is on and the token is missing or not valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: the token is valid but names another user.
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    /// The HTTP-like status, as answered on both edges.
    pub fn status(&self) -> u32 {
        match self {
            AuthError::BadUser(_) => 400,
            AuthError::Unauthenticated(_) => 401,
            AuthError::Forbidden(_) => 403,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadUser(m) => ApiError::BadRequest(m),
            AuthError::Unauthenticated(m) => ApiError::Unauthorized(m),
            AuthError::Forbidden(m) => ApiError::Forbidden(m),
        }
    }
}

/// The verifier of `--jwt-secret` / `--jwt-jwks`, or none (auth off).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    verifier: Option<Verifier>,
}

/// Who is calling, known before the request body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Auth is off: the request names its user.
    Anyone,
    /// The `sub` of a verified token.
    User(UserId),
}

impl Auth {
    /// HS256 with `key` (tests), or auth off.
    pub fn new(key: Option<Key>) -> Self {
        Self::with_verifier(key.map(Verifier::from_secret))
    }

    pub fn with_verifier(verifier: Option<Verifier>) -> Self {
        Self { verifier }
    }

    pub fn is_on(&self) -> bool {
        self.verifier.is_some()
    }

    /// Checks `token` (absent: `None`) when auth is on; anyone may call when it is off.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, AuthError> {
        match self.claims(token)? {
            None => Ok(Caller::Anyone),
            Some(claims) => caller_of(claims),
        }
    }

    /// Checks `token` like [`Self::authenticate`] for a request in `conversation`: with
    /// auth on, the token's `conversations` claim must list it (403 otherwise; no
    /// wildcard). Anyone may when auth is off.
    pub fn authenticate_member(
        &self,
        token: Option<&str>,
        conversation: &ConversationId,
    ) -> Result<Caller, AuthError> {
        let Some(claims) = self.claims(token)? else {
            return Ok(Caller::Anyone);
        };
        let member = claims
            .conversations
            .iter()
            .flatten()
            .any(|c| c == conversation.as_str());
        let caller = caller_of(claims)?;
        if !member {
            return Err(AuthError::Forbidden(format!(
                "the token's \"{CONVERSATIONS_CLAIM}\" claim does not list conversation {conversation}"
            )));
        }
        Ok(caller)
    }

    /// The verified claims of `token`, or `None` with auth off.
    fn claims(&self, token: Option<&str>) -> Result<Option<Claims>, AuthError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let token = token.ok_or_else(|| AuthError::Unauthenticated("missing token".into()))?;
        verifier
            .verify(token)
            .map(Some)
            .map_err(|e| AuthError::Unauthenticated(e.to_string()))
    }
}

/// The claim listing the conversations a token's user may post typing and receipts in.
pub const CONVERSATIONS_CLAIM: &str = "conversations";

/// The caller a verified token names (its `sub`).
fn caller_of(claims: Claims) -> Result<Caller, AuthError> {
    user_of(claims).map(Caller::User)
}

/// The user a verified token names: its `sub`, which must be a valid user id.
fn user_of(claims: Claims) -> Result<UserId, AuthError> {
    let sub = claims
        .sub
        .ok_or_else(|| AuthError::Unauthenticated("token has no sub claim".into()))?;
    UserId::parse(&sub)
        .map_err(|_| AuthError::Unauthenticated("token sub is not a valid user id".into()))
}

/// The role a token needs for moderation.
pub const MODERATOR: &str = "moderator";

impl Auth {
    /// Checks that `token` may moderate: with auth on, a valid token naming a valid user
    /// (`sub`) whose `role` is `"moderator"` (401 without a valid token or `sub`, 403
    /// without the role). Returns the moderator; with auth off, anyone may (dev).
    pub fn moderator(&self, token: Option<&str>) -> Result<Option<UserId>, AuthError> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let token = token.ok_or_else(|| AuthError::Unauthenticated("missing token".into()))?;
        let claims = verifier
            .verify(token)
            .map_err(|e| AuthError::Unauthenticated(e.to_string()))?;
        let moderator = claims.role.as_deref() == Some(MODERATOR);
        // Who moderates is recorded with every ban and deletion: a token that names
        // nobody valid is no identity (401, as for any other write).
        let user = user_of(claims)?;
        if !moderator {
            return Err(AuthError::Forbidden(format!(
                "moderation needs a token with \"role\": \"{MODERATOR}\""
            )));
        }
        Ok(Some(user))
    }
}

impl Caller {
    /// The user the request acts as, given the `user` it names (absent: `None`).
    pub fn acting_as(self, named: Option<&str>) -> Result<UserId, AuthError> {
        let named = named
            .map(|n| UserId::parse(n).map_err(|e| AuthError::BadUser(e.0)))
            .transpose()?;
        match (self, named) {
            (Caller::Anyone, Some(user)) => Ok(user),
            (Caller::Anyone, None) => Err(AuthError::BadUser("user is required".into())),
            (Caller::User(sub), None) => Ok(sub),
            (Caller::User(sub), Some(user)) if user == sub => Ok(sub),
            (Caller::User(_), Some(_)) => Err(AuthError::Forbidden(
                "user does not match the token's sub".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use live_common::jwt::Claims;

    fn token(key: &Key, sub: &str) -> String {
        key.sign(&Claims {
            sub: Some(sub.into()),
            exp: Some(u64::MAX),
            ..Default::default()
        })
    }

    #[test]
    fn auth_off_takes_the_named_user() {
        let caller = Auth::default().authenticate(None).unwrap();
        assert_eq!(
            caller.clone().acting_as(Some("bob")).unwrap().as_str(),
            "bob"
        );
        assert_eq!(caller.clone().acting_as(None).unwrap_err().status(), 400);
        assert_eq!(caller.acting_as(Some("a.b")).unwrap_err().status(), 400);
    }

    #[test]
    fn auth_on_takes_the_sub() {
        let key = Key::new(b"secret");
        let auth = Auth::new(Some(key.clone()));
        assert_eq!(auth.authenticate(None).unwrap_err().status(), 401);
        assert_eq!(auth.authenticate(Some("x.y.z")).unwrap_err().status(), 401);
        assert_eq!(
            auth.authenticate(Some(&token(&key, "no spaces")))
                .unwrap_err()
                .status(),
            401
        );
        let caller = auth.authenticate(Some(&token(&key, "alice"))).unwrap();
        assert_eq!(caller.clone().acting_as(None).unwrap().as_str(), "alice");
        assert_eq!(
            caller.clone().acting_as(Some("alice")).unwrap().as_str(),
            "alice"
        );
        assert_eq!(caller.acting_as(Some("bob")).unwrap_err().status(), 403);
    }

    #[test]
    fn conversations_need_the_claim() {
        let key = Key::new(b"secret");
        let auth = Auth::new(Some(key.clone()));
        let c1 = ConversationId::parse("c1").unwrap();
        let member = |conversations: Option<Vec<String>>| {
            key.sign(&Claims {
                sub: Some("alice".into()),
                exp: Some(u64::MAX),
                conversations,
                ..Default::default()
            })
        };
        let listed = member(Some(vec!["c0".into(), "c1".into()]));
        assert_eq!(
            auth.authenticate_member(Some(&listed), &c1),
            Ok(Caller::User(UserId::parse("alice").unwrap()))
        );
        for not_listed in [
            member(None),
            member(Some(vec![])),
            member(Some(vec!["*".into()])),
            member(Some(vec!["c10".into()])),
        ] {
            assert_eq!(
                auth.authenticate_member(Some(&not_listed), &c1)
                    .unwrap_err()
                    .status(),
                403
            );
        }
        assert_eq!(
            auth.authenticate_member(None, &c1).unwrap_err().status(),
            401
        );
        assert_eq!(
            Auth::default().authenticate_member(None, &c1),
            Ok(Caller::Anyone)
        );
    }

    #[test]
    fn moderation_needs_the_role() {
        let key = Key::new(b"secret");
        let auth = Auth::new(Some(key.clone()));
        let moderator = key.sign(&Claims {
            sub: Some("mod".into()),
            exp: Some(u64::MAX),
            role: Some(MODERATOR.into()),
            ..Default::default()
        });
        assert_eq!(
            auth.moderator(Some(&moderator)).unwrap().unwrap().as_str(),
            "mod"
        );
        assert_eq!(auth.moderator(None).unwrap_err().status(), 401);
        assert_eq!(auth.moderator(Some("a.b.c")).unwrap_err().status(), 401);
        assert_eq!(
            auth.moderator(Some(&token(&key, "alice")))
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(Auth::default().moderator(None), Ok(None));
        // A moderator's token must name a valid user: no sub, a wildcard, too long.
        for sub in [None, Some("*"), Some("bob.>"), Some(&*"m".repeat(65))] {
            let t = key.sign(&Claims {
                sub: sub.map(str::to_owned),
                exp: Some(u64::MAX),
                role: Some(MODERATOR.into()),
                ..Default::default()
            });
            assert_eq!(
                auth.moderator(Some(&t)).unwrap_err().status(),
                401,
                "{sub:?}"
            );
        }
    }
}
