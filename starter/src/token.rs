//! Bearer tokens: JWT HS256 signed with `AUTH_SECRET` (CONTRACT §5).

use std::time::Duration;

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
}
