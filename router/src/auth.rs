//! JWT authentication of `/v1/` requests (the router configuration's `auth` section): the
//! token's signature is checked against the issuer's JSON Web Key Set, then its claims by
//! [`kthena_core::auth`]. The key set is fetched at start (three tries, as Kthena), again
//! every [`REFRESH`] (Kthena: weekly), and at once (at most every [`NUDGE_GAP`]) when a token
//! names a key id the set lacks, so a key the issuer rotates in is accepted within seconds.
//! A failed fetch keeps the keys already known.
//!
//! With `auth.apiKeys: true`, API keys are accepted too (kthena-rs): each is a Secret labelled
//! [`API_KEY_LABEL`] holding `key`, `user` and optionally `groups` (comma-separated), in the
//! manifest folder or the cluster. The router keeps only each key's SHA-256 with its caller
//! ([`ApiKeys`]); a request presents a key as `x-api-key` or as a bearer token that is not a
//! JWT.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kthena_core::auth::{AuthConfig, ClaimError, Claims, Principal, TimeClaim};
use serde_json::{Map, Value};

/// The label of Secrets holding an API key (kthena-rs).
pub const API_KEY_LABEL: (&str, &str) = ("networking.serving.volcano.sh/api-key", "true");

/// The label of Secrets holding an ExternalModelProvider credential (Kthena's).
const CREDENTIAL_LABEL: (&str, &str) = (
    "networking.serving.volcano.sh/external-model-provider-credential",
    "true",
);

fn labelled(secret: &k8s_openapi::api::core::v1::Secret, (k, v): (&str, &str)) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(k))
        .is_some_and(|x| x == v)
}

/// Whether `secret` carries [`API_KEY_LABEL`].
pub fn is_api_key(secret: &k8s_openapi::api::core::v1::Secret) -> bool {
    labelled(secret, API_KEY_LABEL)
}

/// Whether `secret` is labelled as a provider credential.
pub fn is_credential(secret: &k8s_openapi::api::core::v1::Secret) -> bool {
    labelled(secret, CREDENTIAL_LABEL)
}

/// The SHA-256 of an API key: all the router keeps of it.
fn key_hash(key: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// One API-key Secret, read: the key's hash and its caller, or why it is unusable.
#[derive(Debug, Clone)]
pub struct ApiKeyEntry {
    secret: kthena_core::ObjectRef,
    read: Result<([u8; 32], Principal), String>,
}

impl ApiKeyEntry {
    /// Reads Secret `secret` with values `data` (`key`, `user`, `groups`).
    pub fn from_secret(
        secret: &kthena_core::ObjectRef,
        data: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
    ) -> Self {
        let text = |name: &str| {
            data.and_then(|d| d.get(name))
                .map(|v| String::from_utf8_lossy(v).trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let read = match (data.and_then(|d| d.get("key")), text("user")) {
            (None, _) => Err("no `key`".to_owned()),
            (Some(k), _) if k.iter().all(u8::is_ascii_whitespace) => {
                Err("an empty `key`".to_owned())
            }
            (_, None) => Err("no `user`".to_owned()),
            (Some(k), Some(user)) => Ok((
                key_hash(k.trim_ascii()),
                Principal {
                    user,
                    groups: text("groups")
                        .map(|g| {
                            g.split(',')
                                .map(str::trim)
                                .filter(|g| !g.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            )),
        };
        Self {
            secret: secret.clone(),
            read,
        }
    }
}

/// The API keys in force: callers by key hash.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_hash: std::collections::HashMap<[u8; 32], Principal>,
}

impl ApiKeys {
    /// The keys of `entries`; unusable Secrets and a key held by two Secrets (the first by
    /// name is kept) are logged without the key.
    pub fn new(mut entries: Vec<ApiKeyEntry>) -> Self {
        entries.sort_by(|a, b| a.secret.cmp(&b.secret));
        let mut by_hash = std::collections::HashMap::new();
        for e in entries {
            match e.read {
                Err(why) => {
                    tracing::warn!(secret = %e.secret, "API-key Secret left out: {why}");
                }
                Ok((hash, caller)) => match by_hash.entry(hash) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        tracing::warn!(secret = %e.secret, "API-key Secret left out: another Secret holds the same key");
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(caller);
                    }
                },
            }
        }
        Self { by_hash }
    }

    /// The caller of `key`.
    pub fn caller(&self, key: &str) -> Option<&Principal> {
        self.by_hash.get(&key_hash(key.trim().as_bytes()))
    }

    /// How many keys are in force.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no key is in force.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Whether `token` has a JWT's shape (three dot-separated parts); other bearer tokens are
/// API keys.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// How often the key set is fetched again.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// The least time between two fetches a token with an unknown key id asks for.
pub const NUDGE_GAP: Duration = Duration::from_secs(30);
/// The longest a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest key set read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// One verification key of the set.
struct Key {
    kid: Option<String>,
    /// The algorithm the key is for, when the set says.
    alg: Option<Algorithm>,
    /// The algorithms its type can verify.
    family: &'static [Algorithm],
    key: DecodingKey,
}

/// Verifies bearer tokens of one issuer.
pub struct Authenticator {
    config: AuthConfig,
    keys: ArcSwap<Option<Vec<Key>>>,
    /// A token named a key id the set lacks: fetch again soon.
    nudge: tokio::sync::Notify,
    nudged: AtomicBool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a request was not authenticated: the text after `Unauthorized: ` (Kthena's forms), or
/// Kthena's `Authorization header missing or invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl Authenticator {
    /// An authenticator without keys yet: [`run`] fetches them.
    pub fn new(config: AuthConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            keys: ArcSwap::from_pointee(None),
            nudge: tokio::sync::Notify::new(),
            nudged: AtomicBool::new(false),
        })
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Replaces the key set with the JWKS document `body`; the number of usable keys, or why
    /// the document is not a key set. Keys of unsupported types or for encryption are left out.
    pub fn set_keys(&self, body: &[u8]) -> Result<usize, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err("no \"keys\" list".to_owned());
        };
        let mut keys = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            match key(raw) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    tracing::warn!(uri = %self.config.jwks_uri, index = i, "JWKS key left out: {e}")
                }
            }
        }
        let n = keys.len();
        self.keys.store(Arc::new(Some(keys)));
        Ok(n)
    }

    /// The caller (`sub`, empty when the token has none, and groups) of a request with
    /// `authorization` and `x_api_key` (the headers' values, if any), or why it is refused.
    /// With `auth.apiKeys`, an `x-api-key`, or a bearer token that is not a JWT (or any when no
    /// `jwksUri` is set), is looked up in `keys`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
        keys: &ApiKeys,
    ) -> Result<Principal, Refusal> {
        let bearer = authorization.and_then(kthena_core::auth::bearer);
        if self.config.api_keys {
            let jwt_on = !self.config.jwks_uri.is_empty();
            let key = x_api_key.or(bearer.filter(|t| !jwt_on || !looks_like_jwt(t)));
            if let Some(key) = key {
                return keys
                    .caller(key)
                    .cloned()
                    .ok_or_else(|| Refusal("Unauthorized: invalid API key".to_owned()));
            }
        }
        let Some(token) = bearer.filter(|_| !self.config.jwks_uri.is_empty()) else {
            return Err(Refusal(kthena_core::auth::MISSING.to_owned()));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.verify(token, now)
            .map_err(|e| Refusal(format!("Unauthorized: {e}")))
    }

    fn verify(&self, token: &str, now: f64) -> Result<Principal, String> {
        let keys = self.keys.load();
        let Some(keys) = keys.as_ref() else {
            return Err("no JWKS available for token validation".to_owned());
        };
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("failed to parse jwt: {e}"))?;
        let alg = header.alg;
        let mut candidates = keys
            .iter()
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .filter(|k| k.alg.map_or(k.family.contains(&alg), |a| a == alg))
            .peekable();
        if candidates.peek().is_none() {
            if let Some(kid) = &header.kid
                && !keys.iter().any(|k| k.kid.as_ref() == Some(kid))
            {
                self.want_refresh();
                return Err(format!(
                    "failed to parse jwt: no key with kid {kid:?} in the JWKS"
                ));
            }
            return Err(format!(
                "failed to parse jwt: no key in the JWKS verifies {alg:?}"
            ));
        }
        let mut validation = Validation::new(alg);
        // The claims are checked by core's rules below, with Kthena's texts.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let mut last = String::new();
        for k in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &validation) {
                Ok(data) => {
                    let claims = claims(&data.claims, &self.config.groups_claim);
                    return kthena_core::auth::validate(&self.config, &claims, now)
                        .map_err(|e: ClaimError| format!("failed to validate claims: {e}"));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("failed to parse jwt: {last}"))
    }

    fn want_refresh(&self) {
        if !self.nudged.swap(true, Ordering::Relaxed) {
            self.nudge.notify_one();
        }
    }
}

fn claims(c: &Map<String, Value>, groups_claim: &str) -> Claims {
    let time = |name: &str| match c.get(name) {
        None | Some(Value::Null) => TimeClaim::Absent,
        Some(Value::Number(n)) => n.as_f64().map_or(TimeClaim::Invalid, TimeClaim::Seconds),
        Some(_) => TimeClaim::Invalid,
    };
    let string = |name: &str| c.get(name).and_then(Value::as_str).map(str::to_owned);
    let aud = match c.get("aud") {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    };
    Claims {
        iss: string("iss"),
        aud,
        exp: time("exp"),
        nbf: time("nbf"),
        iat: time("iat"),
        sub: string("sub"),
        groups: match c.get(groups_claim) {
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
    }
}

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn key(raw: &Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("\"use\": \"enc\" (an encryption key)".to_owned());
    }
    let family: &'static [Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            jsonwebtoken::jwk::EllipticCurve::P256 => &[Algorithm::ES256],
            jsonwebtoken::jwk::EllipticCurve::P384 => &[Algorithm::ES384],
            ref c => return Err(format!("unsupported curve {c:?}")),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            jsonwebtoken::jwk::EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            ref c => return Err(format!("unsupported curve {c:?}")),
        },
        AlgorithmParameters::OctetKey(_) => HMAC,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(signing(a).ok_or_else(|| format!("\"alg\" {a:?} is not a signature"))?),
    };
    if let Some(a) = alg
        && !family.contains(&a)
    {
        return Err(format!("\"alg\" {a:?} does not fit the key's type"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Key {
        kid: jwk.common.key_id,
        alg,
        family,
        key,
    })
}

fn signing(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Fetches `auth`'s key set now (three tries, as Kthena), then every [`REFRESH`] and when a
/// token names an unknown key. Runs on the actix system (awc), until the process ends.
pub fn run(auth: Arc<Authenticator>) {
    actix_rt::spawn(async move {
        let client = client();
        for attempt in 1..=3 {
            match fetch(&client, &auth).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(uri = %auth.config.jwks_uri, attempt, "fetching the JWKS: {e}");
                    actix_rt::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        loop {
            let nudged = tokio::select! {
                _ = actix_rt::time::sleep(REFRESH) => false,
                _ = auth.nudge.notified() => true,
            };
            if let Err(e) = fetch(&client, &auth).await {
                tracing::error!(uri = %auth.config.jwks_uri, "fetching the JWKS (the keys already known stay): {e}");
            }
            if nudged {
                actix_rt::time::sleep(NUDGE_GAP).await;
                auth.nudged.store(false, Ordering::Relaxed);
            }
        }
    });
}

async fn fetch(client: &awc::Client, auth: &Authenticator) -> Result<(), String> {
    let mut resp = client
        .get(&auth.config.jwks_uri)
        .insert_header(("accept", "application/json"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    let body = resp
        .body()
        .limit(MAX_JWKS_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let n = auth.set_keys(&body)?;
    tracing::info!(uri = %auth.config.jwks_uri, keys = n, "JWKS fetched");
    Ok(())
}

/// An HTTP(S) client trusting the platform's roots.
fn client() -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!("loading the platform's CA certificates: {e}");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            "no CA certificate of the platform was loaded: an https jwksUri will not verify"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let connector = awc::Connector::new().timeout(FETCH_TIMEOUT);
    let connector = match config {
        Ok(mut c) => {
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            connector.rustls_0_23(Arc::new(c))
        }
        Err(e) => {
            tracing::error!("TLS for the JWKS client: {e}");
            connector
        }
    };
    awc::Client::builder()
        .connector(connector)
        .timeout(FETCH_TIMEOUT)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn b64(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    struct Signer {
        jwk: Value,
        key: EncodingKey,
        alg: Algorithm,
    }

    fn ed25519(kid: &str) -> Signer {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        Signer {
            jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref())}),
            key: EncodingKey::from_ed_der(doc.as_ref()),
            alg: Algorithm::EdDSA,
        }
    }

    fn p256(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        Signer {
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
            key: EncodingKey::from_ec_der(doc.as_ref()),
            alg: Algorithm::ES256,
        }
    }

    fn now() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    fn token(s: &Signer, kid: Option<&str>, claims: Value) -> String {
        let mut h = Header::new(s.alg);
        h.kid = kid.map(str::to_owned);
        encode(&h, &claims, &s.key).unwrap()
    }

    fn good_claims() -> Value {
        let t = now() as u64;
        serde_json::json!({"iss": "https://idp", "aud": ["kthena"], "sub": "alice",
            "groups": ["ml", 7, "ops"], "iat": t, "exp": t + 300})
    }

    fn authenticator(signers: &[&Signer]) -> Arc<Authenticator> {
        let a = Authenticator::new(AuthConfig {
            issuer: "https://idp".into(),
            audiences: vec!["kthena".into()],
            jwks_uri: "http://127.0.0.1:1/jwks".into(),
            groups_claim: "groups".into(),
            access: vec![],
            api_keys: false,
        });
        let keys: Vec<_> = signers.iter().map(|s| s.jwk.clone()).collect();
        let n = a
            .set_keys(serde_json::json!({"keys": keys}).to_string().as_bytes())
            .unwrap();
        assert_eq!(n, signers.len());
        a
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn a_token_signed_by_a_key_of_the_set_names_its_user() {
        let (ed, ec) = (ed25519("ed"), p256("ec"));
        let a = authenticator(&[&ed, &ec]);
        for (s, kid) in [
            (&ed, Some("ed")),
            (&ec, Some("ec")),
            (&ed, None),
            (&ec, None),
        ] {
            let t = token(s, kid, good_claims());
            let p = a
                .authenticate(Some(&bearer(&t)), None, &ApiKeys::default())
                .expect("authenticated");
            assert_eq!(p.user, "alice", "{kid:?}");
            assert_eq!(p.groups, ["ml", "ops"], "strings of the groups claim");
        }
    }

    #[test]
    fn forged_tampered_and_unknown_tokens_are_refused() {
        let (ed, other) = (ed25519("ed"), ed25519("other"));
        let a = authenticator(&[&ed]);
        let refused = |h: Option<&str>| a.authenticate(h, None, &ApiKeys::default()).unwrap_err().0;
        assert_eq!(refused(None), "Authorization header missing or invalid");
        assert_eq!(
            refused(Some("Basic x")),
            "Authorization header missing or invalid"
        );
        // Signed by a key not in the set, under the set's kid.
        let forged = token(&other, Some("ed"), good_claims());
        assert!(refused(Some(&bearer(&forged))).starts_with("Unauthorized: failed to parse jwt"));
        // A claim changed after signing.
        let t = token(&ed, Some("ed"), good_claims());
        let parts: Vec<&str> = t.split('.').collect();
        let mut evil = good_claims();
        evil["sub"] = "mallory".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(evil.to_string().as_bytes()),
            parts[2]
        );
        assert!(refused(Some(&bearer(&tampered))).starts_with("Unauthorized: failed to parse jwt"));
        // An unsigned token.
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(good_claims().to_string().as_bytes())
        );
        assert!(refused(Some(&bearer(&none))).starts_with("Unauthorized: failed to parse jwt"));
        // A kid the set lacks asks for a fetch.
        let t = token(&other, Some("new"), good_claims());
        assert!(refused(Some(&bearer(&t))).contains("no key with kid \"new\""));
        assert!(a.nudged.load(Ordering::Relaxed));
    }

    #[test]
    fn the_claims_are_checked_with_kthenas_texts() {
        let ed = ed25519("ed");
        let a = authenticator(&[&ed]);
        let t = now() as u64;
        let cases = [
            (
                serde_json::json!({"iss": "https://idp", "aud": "kthena", "exp": t - 120}),
                "Unauthorized: failed to validate claims: time claims validation failed: token has expired",
            ),
            (
                serde_json::json!({"iss": "https://idp", "aud": "kthena"}),
                "Unauthorized: failed to validate claims: time claims validation failed: expiration claim (exp) missing",
            ),
            (
                serde_json::json!({"iss": "https://x", "aud": "kthena", "exp": t + 60}),
                "Unauthorized: failed to validate claims: issuer validation failed: invalid issuer: expected https://idp, got https://x",
            ),
            (
                serde_json::json!({"iss": "https://idp", "aud": "other", "exp": t + 60}),
                "Unauthorized: failed to validate claims: audience validation failed: audience mismatch: got other",
            ),
            (
                serde_json::json!({"iss": "https://idp", "aud": "kthena", "exp": t + 60, "nbf": t + 600}),
                "Unauthorized: failed to validate claims: time claims validation failed: token not yet valid",
            ),
        ];
        for (claims, want) in cases {
            let tok = token(&ed, Some("ed"), claims.clone());
            assert_eq!(
                a.authenticate(Some(&bearer(&tok)), None, &ApiKeys::default())
                    .unwrap_err()
                    .0,
                want,
                "{claims}"
            );
        }
    }

    #[test]
    fn before_any_key_set_every_token_is_refused() {
        let a = Authenticator::new(AuthConfig {
            issuer: "i".into(),
            audiences: vec![],
            jwks_uri: "http://x".into(),
            groups_claim: "groups".into(),
            access: vec![],
            api_keys: false,
        });
        let t = token(&ed25519("ed"), None, good_claims());
        assert_eq!(
            a.authenticate(Some(&bearer(&t)), None, &ApiKeys::default())
                .unwrap_err()
                .0,
            "Unauthorized: no JWKS available for token validation"
        );
    }

    fn entry(name: &str, data: &[(&str, &str)]) -> ApiKeyEntry {
        let data: std::collections::BTreeMap<String, Vec<u8>> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect();
        ApiKeyEntry::from_secret(&kthena_core::ObjectRef::new("default", name), Some(&data))
    }

    #[test]
    fn api_keys_are_kept_hashed_with_their_caller() {
        let keys = ApiKeys::new(vec![
            entry(
                "a",
                &[
                    ("key", "sk-alice\n"),
                    ("user", "alice"),
                    ("groups", "ml, ops,"),
                ],
            ),
            entry("b", &[("key", "sk-bob"), ("user", "bob")]),
            entry("c", &[("user", "nokey")]),
            entry("d", &[("key", "sk-x")]),
            entry("e", &[("key", "  "), ("user", "blank")]),
            entry("z", &[("key", "sk-bob"), ("user", "mallory")]),
        ]);
        assert_eq!(
            keys.len(),
            2,
            "no key, no user, a blank key and a duplicate left out"
        );
        let alice = keys.caller("sk-alice").expect("alice");
        assert_eq!(
            (alice.user.as_str(), alice.groups.clone()),
            ("alice", vec!["ml".to_owned(), "ops".to_owned()])
        );
        assert_eq!(
            keys.caller("sk-bob").expect("bob").user,
            "bob",
            "the first Secret by name"
        );
        assert!(keys.caller("sk-nope").is_none());
        assert!(
            !format!("{keys:?}").contains("sk-"),
            "the keys themselves are not kept"
        );
    }

    #[test]
    fn a_key_is_an_x_api_key_or_a_bearer_token_that_is_not_a_jwt() {
        let ed = ed25519("ed");
        let keys = ApiKeys::new(vec![entry("a", &[("key", "sk-alice"), ("user", "alice")])]);
        // JWT and keys: a JWT-shaped bearer is verified as a JWT, any other is a key.
        let both = authenticator(&[&ed]);
        let mut cfg = both.config.clone();
        cfg.api_keys = true;
        let both = Authenticator::new(cfg.clone());
        both.set_keys(serde_json::json!({"keys": [ed.jwk]}).to_string().as_bytes())
            .expect("keys");
        let jwt = token(&ed, Some("ed"), good_claims());
        let who = |a: &Authenticator, auth: Option<&str>, key: Option<&str>| {
            a.authenticate(auth, key, &keys)
                .map(|p| p.user)
                .map_err(|r| r.0)
        };
        assert_eq!(who(&both, Some(&bearer(&jwt)), None), Ok("alice".into()));
        assert_eq!(
            who(&both, Some("Bearer sk-alice"), None),
            Ok("alice".into())
        );
        assert_eq!(who(&both, None, Some("sk-alice")), Ok("alice".into()));
        assert_eq!(
            who(&both, None, Some("sk-wrong")),
            Err("Unauthorized: invalid API key".into())
        );
        assert_eq!(
            who(&both, None, None),
            Err("Authorization header missing or invalid".into())
        );
        // Keys only: every bearer token is a key.
        cfg.jwks_uri.clear();
        let keys_only = Authenticator::new(cfg);
        assert_eq!(
            who(&keys_only, Some(&bearer(&jwt)), None),
            Err("Unauthorized: invalid API key".into())
        );
        assert_eq!(
            who(&keys_only, Some("Bearer sk-alice"), None),
            Ok("alice".into())
        );
        // JWT only: an API key is not looked at.
        assert!(
            who(&authenticator(&[&ed]), None, Some("sk-alice")).is_err(),
            "apiKeys is off"
        );
    }

    #[test]
    fn keys_of_other_kinds_are_left_out_and_bad_documents_refused() {
        let ed = ed25519("ed");
        let a = authenticator(&[]);
        let doc = serde_json::json!({"keys": [
            ed.jwk,
            {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "alg": "RS256", "x": "AA", "y": "AA"},
            {"kty": "nope"},
        ]});
        assert_eq!(a.set_keys(doc.to_string().as_bytes()), Ok(1));
        assert!(a.set_keys(b"[]").is_err());
        assert!(a.set_keys(b"not json").is_err());
    }
}
