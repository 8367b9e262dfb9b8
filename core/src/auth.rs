//! Who a request comes from: the rules of JWT authentication as Kthena's router configuration
//! (`auth: {issuer, audiences, jwksUri}`) sets them up, applied to the claims of a token
//! whose signature the router has already checked against the issuer's key set.
//!
//! As in Kthena: only `/v1/` paths are authenticated; the token is the second of exactly two
//! whitespace-separated fields of `Authorization`, the first being `Bearer` in any case;
//! `iss` must equal the issuer; `aud` (a string or a list) must contain one of the audiences
//! when any are configured; `exp` is required; `nbf` and `iat` are checked when present;
//! `sub` is the user. Unlike Kthena, every time claim allows the same clock skew
//! ([`LEEWAY_SECS`], Kthena: `iat` only), and a time claim that is not a number is an error
//! naming it.

use std::fmt;

/// The clock skew allowed between the token's issuer and the router, in seconds.
pub const LEEWAY_SECS: f64 = 60.0;

/// Kthena's answer when there is no usable `Authorization: Bearer` header.
pub const MISSING: &str = "Authorization header missing or invalid";

/// JWT authentication settings (the router configuration's `auth` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// Accepted `aud` values; empty: `aud` is not checked.
    pub audiences: Vec<String>,
    /// Where the issuer's JSON Web Key Set is published.
    pub jwks_uri: String,
    /// kthena-rs: the claim listing the user's groups (a string or a list of strings).
    pub groups_claim: String,
    /// kthena-rs: who may call which model, and what the engine sees of the credentials.
    pub access: Vec<Access>,
    /// kthena-rs: API keys (from labelled Secrets) are accepted too.
    pub api_keys: bool,
}

/// The claim read for groups unless `groupsClaim` names another.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// Who a request comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The user (`sub`).
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// kthena-rs (`auth.access[]`): the callers allowed to use one model name, and whether the
/// engine sees the client's `Authorization` / `x-api-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The model name (the request body's `model`) this entry is for.
    pub model_name: String,
    /// Users allowed; with `allowed_groups`, a caller in either list is allowed. Both empty:
    /// every authenticated caller.
    pub allowed_users: Vec<String>,
    /// Groups allowed.
    pub allowed_groups: Vec<String>,
    /// Send the client's credentials on to the engine (Kthena always does).
    pub forward_authorization: bool,
}

impl Access {
    /// Whether `p` may call the model.
    pub fn allows(&self, p: &Principal) -> bool {
        (self.allowed_users.is_empty() && self.allowed_groups.is_empty())
            || self.allowed_users.contains(&p.user)
            || p.groups.iter().any(|g| self.allowed_groups.contains(g))
    }
}

impl AuthConfig {
    /// The access entry of model name `model`, if any.
    pub fn access(&self, model: &str) -> Option<&Access> {
        self.access.iter().find(|a| a.model_name == model)
    }
}

/// The refusal of an authenticated caller a model's access entry does not allow (403).
pub fn forbidden(p: &Principal, model: &str) -> String {
    format!("Forbidden: user {:?} may not call model {model:?}", p.user)
}

/// Whether a request on `path` must be authenticated (Kthena: `/v1/` only).
pub fn applies_to(path: &str) -> bool {
    path.starts_with("/v1/")
}

/// The bearer token of an `Authorization` header value, as Kthena reads it.
pub fn bearer(header: &str) -> Option<&str> {
    let mut fields = header.split_ascii_whitespace();
    let (scheme, token) = (fields.next()?, fields.next()?);
    (fields.next().is_none() && scheme.eq_ignore_ascii_case("Bearer")).then_some(token)
}

/// A time claim as it came: absent, a number of seconds since the epoch, or something else.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeClaim {
    /// Not in the token.
    Absent,
    /// Seconds since the epoch.
    Seconds(f64),
    /// Present but not a number.
    Invalid,
}

/// The registered claims of a verified token, as the rules need them.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `iss`, when it is a string.
    pub iss: Option<String>,
    /// `aud`: one string or a list (`None`: absent or neither).
    pub aud: Option<Vec<String>>,
    /// `exp`.
    pub exp: TimeClaim,
    /// `nbf`.
    pub nbf: TimeClaim,
    /// `iat`.
    pub iat: TimeClaim,
    /// `sub`, when it is a string.
    pub sub: Option<String>,
    /// The groups claim: one string or a list (others ignored).
    pub groups: Vec<String>,
}

/// Why a token's claims were refused (after `Unauthorized: ` in the answer).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimError {
    /// `iss` is not the configured issuer.
    Issuer {
        expected: String,
        got: Option<String>,
    },
    /// Audiences are configured and the token has none.
    AudienceMissing,
    /// None of the token's audiences is configured.
    AudienceMismatch { got: Vec<String> },
    /// No `exp`.
    ExpirationMissing,
    /// `exp` (plus the skew) has passed.
    Expired,
    /// `nbf` (less the skew) has not come yet.
    NotYetValid,
    /// `iat` is later than now plus the skew.
    IssuedInFuture,
    /// A time claim that is not a number.
    InvalidTime(&'static str),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::Issuer { expected, got } => write!(
                f,
                "issuer validation failed: invalid issuer: expected {expected}, got {}",
                got.as_deref().unwrap_or("none")
            ),
            ClaimError::AudienceMissing => {
                f.write_str("audience validation failed: audience claim missing")
            }
            ClaimError::AudienceMismatch { got } => write!(
                f,
                "audience validation failed: audience mismatch: got {}",
                got.join(",")
            ),
            ClaimError::ExpirationMissing => {
                f.write_str("time claims validation failed: expiration claim (exp) missing")
            }
            ClaimError::Expired => f.write_str("time claims validation failed: token has expired"),
            ClaimError::NotYetValid => {
                f.write_str("time claims validation failed: token not yet valid")
            }
            ClaimError::IssuedInFuture => {
                f.write_str("time claims validation failed: token issued in the future")
            }
            ClaimError::InvalidTime(claim) => write!(
                f,
                "time claims validation failed: {claim} is not a number of seconds"
            ),
        }
    }
}

/// Checks `claims` against `config` at `now` (seconds since the epoch); the caller (`sub`,
/// empty when the token has none, and the groups) when they pass.
pub fn validate(config: &AuthConfig, claims: &Claims, now: f64) -> Result<Principal, ClaimError> {
    if claims.iss.as_deref() != Some(config.issuer.as_str()) {
        return Err(ClaimError::Issuer {
            expected: config.issuer.clone(),
            got: claims.iss.clone(),
        });
    }
    if !config.audiences.is_empty() {
        let Some(aud) = &claims.aud else {
            return Err(ClaimError::AudienceMissing);
        };
        if !aud.iter().any(|a| config.audiences.contains(a)) {
            return Err(ClaimError::AudienceMismatch { got: aud.clone() });
        }
    }
    match claims.exp {
        TimeClaim::Absent => return Err(ClaimError::ExpirationMissing),
        TimeClaim::Invalid => return Err(ClaimError::InvalidTime("exp")),
        TimeClaim::Seconds(exp) if now > exp + LEEWAY_SECS => return Err(ClaimError::Expired),
        TimeClaim::Seconds(_) => {}
    }
    match claims.nbf {
        TimeClaim::Invalid => return Err(ClaimError::InvalidTime("nbf")),
        TimeClaim::Seconds(nbf) if now + LEEWAY_SECS < nbf => {
            return Err(ClaimError::NotYetValid);
        }
        _ => {}
    }
    match claims.iat {
        TimeClaim::Invalid => return Err(ClaimError::InvalidTime("iat")),
        TimeClaim::Seconds(iat) if now + LEEWAY_SECS < iat => {
            return Err(ClaimError::IssuedInFuture);
        }
        _ => {}
    }
    Ok(Principal {
        user: claims.sub.clone().unwrap_or_default(),
        groups: claims.groups.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(audiences: &[&str]) -> AuthConfig {
        AuthConfig {
            issuer: "https://idp.example".into(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            jwks_uri: "https://idp.example/jwks".into(),
            groups_claim: DEFAULT_GROUPS_CLAIM.into(),
            access: Vec::new(),
            api_keys: false,
        }
    }

    fn alice() -> Result<Principal, ClaimError> {
        Ok(Principal {
            user: "alice".into(),
            groups: vec!["ml".into()],
        })
    }

    const NOW: f64 = 1_800_000_000.0;

    fn good() -> Claims {
        Claims {
            iss: Some("https://idp.example".into()),
            aud: Some(vec!["kthena".into()]),
            exp: TimeClaim::Seconds(NOW + 300.0),
            nbf: TimeClaim::Absent,
            iat: TimeClaim::Seconds(NOW - 10.0),
            sub: Some("alice".into()),
            groups: vec!["ml".into()],
        }
    }

    #[test]
    fn the_bearer_token_is_the_second_of_two_fields() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("BEARER\tabc"), Some("abc"));
        for bad in ["", "Bearer", "Bearer a b", "Basic abc", "abc", "Bearerabc"] {
            assert_eq!(bearer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_v1_paths_are_authenticated() {
        assert!(applies_to("/v1/chat/completions"));
        assert!(applies_to("/v1/models"));
        assert!(!applies_to("/healthz"));
        assert!(!applies_to("/v1"));
        assert!(!applies_to("/v2/x"));
    }

    #[test]
    fn a_good_token_names_its_subject() {
        assert_eq!(validate(&config(&["kthena"]), &good(), NOW), alice());
        let anonymous = Claims {
            sub: None,
            groups: vec![],
            ..good()
        };
        assert_eq!(
            validate(&config(&[]), &anonymous, NOW),
            Ok(Principal::default())
        );
    }

    #[test]
    fn the_claims_matrix() {
        let c = config(&["kthena", "other"]);
        let cases: Vec<(&str, Claims, Result<Principal, ClaimError>)> = vec![
            (
                "wrong issuer",
                Claims {
                    iss: Some("https://evil".into()),
                    ..good()
                },
                Err(ClaimError::Issuer {
                    expected: c.issuer.clone(),
                    got: Some("https://evil".into()),
                }),
            ),
            (
                "no issuer",
                Claims {
                    iss: None,
                    ..good()
                },
                Err(ClaimError::Issuer {
                    expected: c.issuer.clone(),
                    got: None,
                }),
            ),
            (
                "no audience",
                Claims {
                    aud: None,
                    ..good()
                },
                Err(ClaimError::AudienceMissing),
            ),
            (
                "another audience",
                Claims {
                    aud: Some(vec!["x".into(), "y".into()]),
                    ..good()
                },
                Err(ClaimError::AudienceMismatch {
                    got: vec!["x".into(), "y".into()],
                }),
            ),
            (
                "one of the listed audiences",
                Claims {
                    aud: Some(vec!["x".into(), "other".into()]),
                    ..good()
                },
                alice(),
            ),
            (
                "no exp",
                Claims {
                    exp: TimeClaim::Absent,
                    ..good()
                },
                Err(ClaimError::ExpirationMissing),
            ),
            (
                "exp a string",
                Claims {
                    exp: TimeClaim::Invalid,
                    ..good()
                },
                Err(ClaimError::InvalidTime("exp")),
            ),
            (
                "expired beyond the skew",
                Claims {
                    exp: TimeClaim::Seconds(NOW - LEEWAY_SECS - 1.0),
                    ..good()
                },
                Err(ClaimError::Expired),
            ),
            (
                "expired within the skew",
                Claims {
                    exp: TimeClaim::Seconds(NOW - LEEWAY_SECS + 1.0),
                    ..good()
                },
                alice(),
            ),
            (
                "not before, beyond the skew",
                Claims {
                    nbf: TimeClaim::Seconds(NOW + LEEWAY_SECS + 1.0),
                    ..good()
                },
                Err(ClaimError::NotYetValid),
            ),
            (
                "not before, within the skew",
                Claims {
                    nbf: TimeClaim::Seconds(NOW + LEEWAY_SECS - 1.0),
                    ..good()
                },
                alice(),
            ),
            (
                "nbf a string",
                Claims {
                    nbf: TimeClaim::Invalid,
                    ..good()
                },
                Err(ClaimError::InvalidTime("nbf")),
            ),
            (
                "issued in the future",
                Claims {
                    iat: TimeClaim::Seconds(NOW + LEEWAY_SECS + 1.0),
                    ..good()
                },
                Err(ClaimError::IssuedInFuture),
            ),
            (
                "no iat",
                Claims {
                    iat: TimeClaim::Absent,
                    ..good()
                },
                alice(),
            ),
            (
                "iat a string",
                Claims {
                    iat: TimeClaim::Invalid,
                    ..good()
                },
                Err(ClaimError::InvalidTime("iat")),
            ),
        ];
        for (name, claims, want) in cases {
            assert_eq!(validate(&c, &claims, NOW), want, "{name}");
        }
    }

    #[test]
    fn an_access_entry_allows_its_users_and_groups() {
        let entry = |users: &[&str], groups: &[&str]| Access {
            model_name: "m".into(),
            allowed_users: users.iter().map(|u| (*u).to_owned()).collect(),
            allowed_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            forward_authorization: true,
        };
        let p = |user: &str, groups: &[&str]| Principal {
            user: user.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        assert!(entry(&[], &[]).allows(&p("anyone", &[])));
        assert!(entry(&["alice"], &[]).allows(&p("alice", &[])));
        assert!(!entry(&["alice"], &[]).allows(&p("bob", &["ml"])));
        assert!(entry(&["alice"], &["ml"]).allows(&p("bob", &["ops", "ml"])));
        assert!(!entry(&[], &["ml"]).allows(&p("bob", &["ops"])));
        let mut c = config(&[]);
        c.access.push(entry(&["alice"], &[]));
        assert!(c.access("m").is_some() && c.access("n").is_none());
        assert_eq!(
            forbidden(&p("bob", &[]), "m"),
            "Forbidden: user \"bob\" may not call model \"m\""
        );
    }

    #[test]
    fn refusals_read_as_kthena_writes_them() {
        assert_eq!(
            ClaimError::Expired.to_string(),
            "time claims validation failed: token has expired"
        );
        assert_eq!(
            ClaimError::Issuer {
                expected: "a".into(),
                got: Some("b".into())
            }
            .to_string(),
            "issuer validation failed: invalid issuer: expected a, got b"
        );
    }
}
