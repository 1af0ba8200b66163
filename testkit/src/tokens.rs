//! Tokens as an attacker writes them: any header, any claims, signed with any key or not at
//! all. (The API's own tokens are [`Api::customer`](crate::Api::customer) and
//! [`Api::admin`](crate::Api::admin).)

pub use jsonwebtoken::Algorithm;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;

/// base64url without padding, as JWTs are written (by hand: no base64 crate needed).
pub fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A JSON value as a JWT part.
pub fn part(value: &Value) -> String {
    b64url(value.to_string().as_bytes())
}

/// `claims` signed with `key` by `alg` (an HMAC), as a library signs them.
pub fn sign(claims: &Value, alg: Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key))
        .expect("HMAC signing cannot fail")
}

/// A token with this header and claims, signed HS256-style with `key` whatever the header
/// says (an attacker writes the header).
pub fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    let signing_input = format!("{}.{}", part(header), part(claims));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .expect("HS256 signing cannot fail");
    format!("{signing_input}.{signature}")
}

/// A token with this header and claims and no signature (`header.claims.`).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", part(header), part(claims))
}

/// Replaces a token's claims and keeps its header and signature.
pub fn tamper(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or_default();
    let _ = parts.next();
    let signature = parts.next().unwrap_or_default();
    format!("{header}.{}.{signature}", part(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_has_no_padding() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_tampered_token_keeps_its_header_and_signature() {
        let claims = serde_json::json!({"sub": "1"});
        let token = sign(&claims, Algorithm::HS256, b"key");
        let other = tamper(&token, &serde_json::json!({"sub": "2"}));
        let (a, b): (Vec<&str>, Vec<&str>) =
            (token.split('.').collect(), other.split('.').collect());
        assert_eq!((a[0], a[2]), (b[0], b[2]));
        assert_ne!(a[1], b[1]);
    }
}
