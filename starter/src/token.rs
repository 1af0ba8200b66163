//! Bearer tokens: JWT HS256 signed with `AUTH_SECRET` (CONTRACT §5).

use std::time::Duration;

use domain::UserId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id as a string (any name for an admin).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct TokenError(#[from] jsonwebtoken::errors::Error);

/// Who a verified token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A customer: `sub` is the user id.
    Customer(UserId),
    /// An admin: `sub` need not be a user.
    Admin,
}

/// Why a token was refused (every case is a 401; the reason goes to the log and the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature or algorithm is not accepted")]
    BadSignature,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's role must be \"customer\" or \"admin\"")]
    BadRole,
    #[error("a customer token's sub must be a user id")]
    BadSubject,
}

/// The claims a token must carry to be accepted; `iat` and anything else are optional.
#[derive(Debug, Deserialize)]
struct Presented {
    sub: String,
    role: String,
}

/// Verifies a bearer token: HS256 only (so `alg: none` and every other algorithm, including an
/// RS/HS confusion, are refused), signed with `secret`, `exp` required and in the future, `nbf`
/// (when present) in the past, no leeway. Customer tokens must name a positive user id.
pub fn verify(secret: &str, token: &str) -> Result<Principal, VerifyError> {
    verify_subject(secret, token).map(|(principal, _)| principal)
}

/// [`verify`], answering the token's `sub` too (an admin's names who it is, though not a user).
pub fn verify_subject(secret: &str, token: &str) -> Result<(Principal, String), VerifyError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Presented>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => VerifyError::BadSignature,
        _ => VerifyError::Malformed(e.to_string()),
    })?;
    let sub = data.claims.sub;
    let principal = match data.claims.role.as_str() {
        "admin" => Principal::Admin,
        "customer" => match UserId::parse(&sub) {
            Ok(id) if id.get() > 0 && sub == id.to_string() => Principal::Customer(id),
            _ => return Err(VerifyError::BadSubject),
        },
        _ => return Err(VerifyError::BadRole),
    };
    Ok((principal, sub))
}

/// Mints a token valid for `ttl` from now.
pub fn mint(secret: &str, sub: &str, role: Role, ttl: Duration) -> Result<String, TokenError> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn minted_tokens_verify_with_the_same_secret_only() {
        let t = mint("s3cret", "42", Role::Customer, Duration::from_secs(60)).unwrap();
        let ok = jsonwebtoken::decode::<Claims>(
            &t,
            &DecodingKey::from_secret(b"s3cret"),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap();
        assert_eq!(ok.claims.sub, "42");
        assert_eq!(ok.claims.role, Role::Customer);
        assert!(
            jsonwebtoken::decode::<Claims>(
                &t,
                &DecodingKey::from_secret(b"other"),
                &Validation::new(Algorithm::HS256),
            )
            .is_err()
        );
    }

    #[test]
    fn verify_accepts_what_mint_makes_and_nothing_else() {
        let ttl = Duration::from_secs(60);
        let t = mint("k", "42", Role::Customer, ttl).unwrap();
        assert_eq!(verify("k", &t), Ok(Principal::Customer(UserId::new(42))));
        assert_eq!(verify("other", &t), Err(VerifyError::BadSignature));
        let a = mint("k", "ops", Role::Admin, ttl).unwrap();
        assert_eq!(verify("k", &a), Ok(Principal::Admin));
        let bad_sub = mint("k", "ops", Role::Customer, ttl).unwrap();
        assert_eq!(verify("k", &bad_sub), Err(VerifyError::BadSubject));
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "1", "role": "customer", "exp": 1}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(verify("k", &expired), Err(VerifyError::Expired));
        assert!(matches!(
            verify("k", "not.a.jwt"),
            Err(VerifyError::Malformed(_))
        ));
    }
}
