//! Payload encryption (CONTRACT §8): the keys of `PAYLOAD_KEYS` and the [`EncryptionCodec`],
//! the SDK's `PayloadCodec` that every process talking to Temporal sets on its data converter
//! ([`data_converter`]), and that `starter codec` serves to the Web UI and the CLI.
//!
//! A payload is encrypted whole: its protobuf encoding (metadata and data) is sealed with
//! AES-256-GCM under a fresh random 96-bit nonce, the key id as associated data, and the
//! result, `nonce ‖ ciphertext ‖ tag`, is the data of a new payload whose metadata says only
//! `encoding: binary/encrypted` and `encryption-key-id: <id>`. Decoding opens it and gives back
//! the original payload byte for byte, its own encoding included. A payload without the
//! encrypted encoding decodes unchanged, so histories recorded before the codec still replay.

use std::collections::HashMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload as Sealed};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The metadata `encoding` of an encrypted payload.
pub const ENCRYPTED_ENCODING: &str = "binary/encrypted";
/// The metadata key naming the key a payload was encrypted with.
pub const KEY_ID_METADATA: &str = "encryption-key-id";
/// The id of the development key, used when `PAYLOAD_KEYS` is not set.
pub const DEV_KEY_ID: &str = "dev";
/// The development key (base64): public, so it protects nothing; for a laptop only.
const DEV_KEY: &str = "MDtsFZjnECM8ElpIRB0NVct13eCPGJOB3orufXo7l94=";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

/// One key of `PAYLOAD_KEYS`: its id and its 32 bytes (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadKey {
    id: String,
    key: [u8; KEY_LEN],
}

impl PayloadKey {
    /// A key from its id and its 32 bytes.
    pub fn new(id: &str, key: [u8; KEY_LEN]) -> Result<Self, KeyError> {
        check_id(id)?;
        Ok(Self {
            id: id.to_owned(),
            key,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `id:base64key`, as `PAYLOAD_KEYS` lists it.
    pub fn to_setting(&self) -> String {
        format!("{}:{}", self.id, STANDARD.encode(self.key))
    }
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayloadKey({:?})", self.id)
    }
}

/// `PAYLOAD_KEYS`: the first key encrypts, all of them decrypt. Empty when `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadKeys {
    keys: Vec<PayloadKey>,
    development: bool,
}

/// Why `PAYLOAD_KEYS` cannot be used. The key material is never shown.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("entry {position} is not of the form id:base64key")]
    Shape { position: usize },
    #[error(
        "key id {id:?} must be 1 to 64 characters of letters, digits, '-', '_' and '.', and not `off`"
    )]
    Id { id: String },
    #[error("the key of id {id:?} is not base64")]
    Base64 { id: String },
    #[error("the key of id {id:?} is {len} bytes long; it must be 32 (`openssl rand -base64 32`)")]
    Length { id: String, len: usize },
    #[error("key id {id:?} is listed twice")]
    Duplicate { id: String },
    #[error("no key is listed (set `off` to disable encryption)")]
    Empty,
}

fn check_id(id: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&id.len())
        && !id.eq_ignore_ascii_case("off")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::Id { id: id.to_owned() })
    }
}

impl PayloadKeys {
    /// `id:base64key[,id:base64key…]`, or `off`.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::off());
        }
        let mut keys: Vec<PayloadKey> = Vec::new();
        for (i, entry) in s.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let (id, b64) = entry
                .split_once(':')
                .ok_or(KeyError::Shape { position: i + 1 })?;
            let (id, b64) = (id.trim(), b64.trim());
            check_id(id)?;
            let bytes = STANDARD
                .decode(b64)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
                .map_err(|_| KeyError::Base64 { id: id.to_owned() })?;
            let key: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| KeyError::Length {
                id: id.to_owned(),
                len: b.len(),
            })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyError::Duplicate { id: id.to_owned() });
            }
            keys.push(PayloadKey::new(id, key)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self {
            keys,
            development: false,
        })
    }

    /// The keys given, the first encrypting.
    pub fn new(keys: Vec<PayloadKey>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(KeyError::Duplicate { id: k.id.clone() });
            }
        }
        Ok(Self {
            keys,
            development: false,
        })
    }

    /// The development key (`dev`), used when `PAYLOAD_KEYS` is not set.
    pub fn development() -> Self {
        let bytes = STANDARD
            .decode(DEV_KEY)
            .expect("the development key is base64");
        let key = bytes.try_into().expect("the development key is 32 bytes");
        Self {
            keys: vec![PayloadKey {
                id: DEV_KEY_ID.to_owned(),
                key,
            }],
            development: true,
        }
    }

    /// `off`: nothing is encrypted (for measurements only).
    pub fn off() -> Self {
        Self {
            keys: Vec::new(),
            development: false,
        }
    }

    pub fn is_off(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether these are the development key (`PAYLOAD_KEYS` not set).
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// The id of the key that encrypts, unless `off`.
    pub fn encrypting_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// The ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// What to warn about at start: the development key, or no encryption at all.
    pub fn warning(&self) -> Option<&'static str> {
        if self.is_off() {
            Some("PAYLOAD_KEYS=off: payloads go to Temporal unencrypted (for measurements only)")
        } else if self.development {
            Some(
                "PAYLOAD_KEYS is not set: payloads are encrypted with the public development key \
                 `dev`, which protects nothing; set PAYLOAD_KEYS=id:base64key (docs/ENCRYPTION.md)",
            )
        } else {
            None
        }
    }
}

/// Why a payload could not be encoded or decoded. Never a panic; the key material and the
/// plaintext are never shown.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error(
        "the payload was encrypted with key id {id:?}, which PAYLOAD_KEYS does not list (it lists {known:?})"
    )]
    UnknownKey { id: String, known: Vec<String> },
    #[error("an encrypted payload has no `encryption-key-id` metadata")]
    NoKeyId,
    #[error(
        "the payload encrypted with key id {id:?} does not open: it was altered, or the key of that id is not the one that encrypted it"
    )]
    Tampered { id: String },
    #[error("an encrypted payload is too short to hold a nonce and a tag")]
    TooShort,
    #[error("a decrypted payload is not a Payload: {0}")]
    NotAPayload(String),
    #[error("encryption failed")]
    Encrypt,
}

/// Encrypts with the first key of [`PayloadKeys`], decrypts with any of them; with `off`,
/// encodes nothing (encrypted payloads then fail to decode, naming their key).
#[derive(Clone)]
pub struct EncryptionCodec {
    encrypting: Option<(String, Arc<Aes256Gcm>)>,
    decrypting: Arc<HashMap<String, Arc<Aes256Gcm>>>,
}

impl std::fmt::Debug for EncryptionCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionCodec")
            .field("encrypting", &self.encrypting.as_ref().map(|(id, _)| id))
            .field("decrypting", &self.decrypting.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EncryptionCodec {
    pub fn new(keys: &PayloadKeys) -> Self {
        let ciphers: Vec<(String, Arc<Aes256Gcm>)> = keys
            .keys
            .iter()
            .map(|k| {
                let cipher = Aes256Gcm::new_from_slice(&k.key).expect("a 32-byte key");
                (k.id.clone(), Arc::new(cipher))
            })
            .collect();
        Self {
            encrypting: ciphers.first().cloned(),
            decrypting: Arc::new(ciphers.into_iter().collect()),
        }
    }

    /// Encrypts every payload (or none, with `off`).
    pub fn encode_payloads(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        let Some((id, cipher)) = &self.encrypting else {
            return Ok(payloads);
        };
        payloads
            .into_iter()
            .map(|p| encrypt(id, cipher, &p))
            .collect()
    }

    /// Decrypts every encrypted payload; the others pass unchanged.
    pub fn decode_payloads(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.decrypt(p)).collect()
    }

    fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        if !is_encrypted(&payload) {
            return Ok(payload);
        }
        let id = payload
            .metadata
            .get(KEY_ID_METADATA)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or(CodecError::NoKeyId)?;
        let cipher = self
            .decrypting
            .get(&id)
            .ok_or_else(|| CodecError::UnknownKey {
                id: id.clone(),
                known: {
                    let mut known: Vec<String> = self.decrypting.keys().cloned().collect();
                    known.sort();
                    known
                },
            })?;
        if payload.data.len() < NONCE_LEN + 16 {
            return Err(CodecError::TooShort);
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CodecError::TooShort)?;
        let plain = cipher
            .decrypt(
                &nonce,
                Sealed {
                    msg: sealed,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| CodecError::Tampered { id: id.clone() })?;
        Payload::decode(plain.as_slice()).map_err(|e| CodecError::NotAPayload(e.to_string()))
    }
}

/// Whether the payload's metadata says `binary/encrypted`.
pub fn is_encrypted(payload: &Payload) -> bool {
    payload
        .metadata
        .get("encoding")
        .is_some_and(|e| e.as_slice() == ENCRYPTED_ENCODING.as_bytes())
}

fn encrypt(id: &str, cipher: &Aes256Gcm, payload: &Payload) -> Result<Payload, CodecError> {
    let nonce = Nonce::try_generate().map_err(|_| CodecError::Encrypt)?;
    let sealed = cipher
        .encrypt(
            &nonce,
            Sealed {
                msg: &payload.encode_to_vec(),
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| CodecError::Encrypt)?;
    let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
    data.extend_from_slice(&nonce);
    data.extend_from_slice(&sealed);
    Ok(Payload {
        metadata: HashMap::from([
            (
                "encoding".to_owned(),
                ENCRYPTED_ENCODING.as_bytes().to_vec(),
            ),
            (KEY_ID_METADATA.to_owned(), id.as_bytes().to_vec()),
        ]),
        data,
        ..Default::default()
    })
}

fn conversion(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

impl PayloadCodec for EncryptionCodec {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        futures::future::ready(self.encode_payloads(payloads).map_err(conversion)).boxed()
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        futures::future::ready(self.decode_payloads(payloads).map_err(conversion)).boxed()
    }
}

/// The SDK's default data converter (JSON payloads, default failures) with the
/// [`EncryptionCodec`] of `keys`.
pub fn data_converter(keys: &PayloadKeys) -> DataConverter {
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        EncryptionCodec::new(keys),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Payload {
        Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn key(id: &str, byte: u8) -> PayloadKey {
        PayloadKey::new(id, [byte; KEY_LEN]).unwrap()
    }

    fn keys(list: &[PayloadKey]) -> PayloadKeys {
        PayloadKeys::new(list.to_vec()).unwrap()
    }

    #[test]
    fn encoding_round_trips_and_hides_the_data() {
        let codec = EncryptionCodec::new(&keys(&[key("a", 1)]));
        let original = vec![json(r#"{"recipient":"Kim Minsu"}"#), json("42")];
        let encoded = codec.encode_payloads(original.clone()).unwrap();
        for p in &encoded {
            assert!(is_encrypted(p));
            assert_eq!(p.metadata[KEY_ID_METADATA], b"a");
            assert_eq!(p.metadata.len(), 2, "only the encoding and the key id");
            assert!(!String::from_utf8_lossy(&p.data).contains("Kim"));
        }
        assert_eq!(codec.decode_payloads(encoded).unwrap(), original);
    }

    #[test]
    fn every_payload_gets_a_fresh_nonce() {
        let codec = EncryptionCodec::new(&keys(&[key("a", 1)]));
        let twice = codec.encode_payloads(vec![json("1"), json("1")]).unwrap();
        assert_ne!(twice[0].data[..NONCE_LEN], twice[1].data[..NONCE_LEN]);
        assert_ne!(twice[0].data, twice[1].data);
    }

    #[test]
    fn unencrypted_payloads_decode_unchanged() {
        let codec = EncryptionCodec::new(&keys(&[key("a", 1)]));
        let plain = vec![json("\"before the codec\""), Payload::default()];
        assert_eq!(codec.decode_payloads(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn keys_rotate_the_first_encrypts_all_decrypt() {
        let (a, b) = (key("a", 1), key("b", 2));
        let old = EncryptionCodec::new(&keys(std::slice::from_ref(&a)))
            .encode_payloads(vec![json("\"old\"")])
            .unwrap();
        let rotated = EncryptionCodec::new(&keys(&[b.clone(), a]));
        assert_eq!(
            rotated.decode_payloads(old.clone()).unwrap(),
            [json("\"old\"")]
        );
        let new = rotated.encode_payloads(vec![json("\"new\"")]).unwrap();
        assert_eq!(new[0].metadata[KEY_ID_METADATA], b"b");
        let retired = EncryptionCodec::new(&keys(&[b]));
        assert_eq!(retired.decode_payloads(new).unwrap(), [json("\"new\"")]);
        let e = retired.decode_payloads(old).unwrap_err();
        assert_eq!(
            e,
            CodecError::UnknownKey {
                id: "a".into(),
                known: vec!["b".into()]
            }
        );
        assert!(e.to_string().contains("key id \"a\""), "{e}");
    }

    #[test]
    fn a_tampered_payload_fails_to_decode() {
        let codec = EncryptionCodec::new(&keys(&[key("a", 1), key("b", 2)]));
        let good = codec.encode_payloads(vec![json("\"x\"")]).unwrap();
        let mut flipped = good.clone();
        let last = flipped[0].data.len() - 1;
        flipped[0].data[last] ^= 1;
        assert_eq!(
            codec.decode_payloads(flipped).unwrap_err(),
            CodecError::Tampered { id: "a".into() }
        );
        // The key id is bound to the ciphertext: relabelling it does not open it.
        let mut relabelled = good.clone();
        relabelled[0]
            .metadata
            .insert(KEY_ID_METADATA.into(), b"b".to_vec());
        assert_eq!(
            codec.decode_payloads(relabelled).unwrap_err(),
            CodecError::Tampered { id: "b".into() }
        );
        let mut short = good.clone();
        short[0].data.truncate(10);
        assert_eq!(
            codec.decode_payloads(short).unwrap_err(),
            CodecError::TooShort
        );
        let mut unnamed = good;
        unnamed[0].metadata.remove(KEY_ID_METADATA);
        assert_eq!(
            codec.decode_payloads(unnamed).unwrap_err(),
            CodecError::NoKeyId
        );
    }

    #[test]
    fn off_encodes_nothing_and_names_the_key_it_lacks() {
        let encrypted = EncryptionCodec::new(&keys(&[key("a", 1)]))
            .encode_payloads(vec![json("1")])
            .unwrap();
        let off = EncryptionCodec::new(&PayloadKeys::off());
        assert_eq!(off.encode_payloads(vec![json("1")]).unwrap(), [json("1")]);
        assert!(matches!(
            off.decode_payloads(encrypted).unwrap_err(),
            CodecError::UnknownKey { id, .. } if id == "a"
        ));
    }

    #[test]
    fn payload_keys_parse() {
        let a = key("a", 1);
        let b = key("key-2.b_", 2);
        let both =
            PayloadKeys::parse(&format!(" {} , {} ", b.to_setting(), a.to_setting())).unwrap();
        assert_eq!(both.ids(), ["key-2.b_", "a"]);
        assert_eq!(both.encrypting_id(), Some("key-2.b_"));
        assert!(both.warning().is_none());
        assert!(PayloadKeys::parse("OFF").unwrap().is_off());
        assert!(PayloadKeys::parse("off").unwrap().warning().is_some());
        let dev = PayloadKeys::development();
        assert_eq!(dev.encrypting_id(), Some(DEV_KEY_ID));
        assert!(dev.warning().unwrap().contains("development key"));
        let short = format!("a:{}", STANDARD.encode([0u8; 16]));
        assert_eq!(
            PayloadKeys::parse(&short).unwrap_err(),
            KeyError::Length {
                id: "a".into(),
                len: 16
            }
        );
        let cases = [
            ("nokey", KeyError::Shape { position: 1 }),
            ("a:!!!", KeyError::Base64 { id: "a".into() }),
            (":abcd", KeyError::Id { id: "".into() }),
            ("a b:abcd", KeyError::Id { id: "a b".into() }),
            (",", KeyError::Empty),
        ];
        for (bad, expected) in cases {
            assert_eq!(PayloadKeys::parse(bad).unwrap_err(), expected, "{bad}");
        }
        let twice = format!("{},{}", a.to_setting(), a.to_setting());
        assert_eq!(
            PayloadKeys::parse(&twice).unwrap_err(),
            KeyError::Duplicate { id: "a".into() }
        );
        let secret = STANDARD.encode([7u8; 16]);
        let message = PayloadKeys::parse(&format!("a:{secret}"))
            .unwrap_err()
            .to_string();
        assert!(!message.contains(&secret), "{message}");
        assert!(!format!("{both:?}").contains(&STANDARD.encode([1u8; 32])));
    }
}
