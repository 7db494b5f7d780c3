//! The external MCIAS identity service over HTTPS (TLS 1.3 only):
//! `POST <base>/v1/auth/login` and `POST <base>/v1/token/validate`.
//!
//! Invariant: the client speaks TLS 1.3 or nothing (the crypto provider
//! offers TLS 1.3 cipher suites only), trusts the configured CA (or the
//! WebPKI roots), and never logs the token or password it carries.

use super::{Issued, Password, Token};
use crate::error::{Error, Result};
use crate::policy::{AccountType, Principal};
use serde::Deserialize;
use std::time::Duration;

pub struct McIasProvider {
    base: String,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct LoginReply {
    token: String,
    expires_at: serde_json::Value,
}

#[derive(Deserialize)]
struct ValidateReply {
    valid: bool,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    account_type: String,
    #[serde(default)]
    expires_at: serde_json::Value,
}

/// `expires_at` as Unix seconds: a number, or an RFC 3339 UTC timestamp.
fn expiry(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("identity service: {what}: {e}"))
}

impl McIasProvider {
    /// `base` is the service's https URL; `ca_pem` an optional CA bundle.
    pub fn new(base: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<McIasProvider> {
        anyhow::ensure!(
            base.starts_with("https://"),
            "auth.mcias_url must be an https:// URL (TLS 1.3 is required)"
        );
        let timeouts = crate::outbound::Timeouts {
            global: Some(Duration::from_secs(10)),
            connect: Duration::from_secs(10),
            response: Duration::from_secs(10),
        };
        let agent =
            crate::outbound::agent(ca_pem, timeouts).map_err(|e| anyhow::anyhow!("auth.mcias_ca {e}"))?;
        Ok(McIasProvider { base: base.trim_end_matches('/').to_string(), agent })
    }

    fn post(&self, path: &str, body: serde_json::Value) -> Result<(u16, ureq::Body)> {
        let url = format!("{}{path}", self.base);
        let resp = self.agent.post(&url).send_json(body).map_err(|e| unavailable(path, e))?;
        let status = resp.status().as_u16();
        Ok((status, resp.into_body()))
    }
}

impl super::IdentityProvider for McIasProvider {
    /// MCIAS issues its own tokens, which carry no scope: a token from it
    /// has its user's full authority (see the README).
    fn login(&self, username: &str, password: &Password, _scope: &super::ScopeFor) -> Result<Option<Issued>> {
        let body = serde_json::json!({ "username": username, "password": password.expose() });
        let (status, mut reply) = self.post("/v1/auth/login", body)?;
        match status {
            200 => {
                let r: LoginReply = reply
                    .with_config()
                    .limit(64 * 1024)
                    .read_json()
                    .map_err(|e| unavailable("login reply", e))?;
                let expires_at =
                    expiry(&r.expires_at).ok_or_else(|| unavailable("login reply", "bad expires_at"))?;
                Ok(Some(Issued { token: Token::new(r.token), expires_at }))
            }
            401 | 403 => Ok(None),
            other => Err(unavailable("login", format!("status {other}"))),
        }
    }

    fn validate(&self, token: &Token) -> Result<Option<(Principal, i64)>> {
        let (status, mut reply) =
            self.post("/v1/token/validate", serde_json::json!({ "token": token.expose() }))?;
        match status {
            200 => {
                let r: ValidateReply = reply
                    .with_config()
                    .limit(64 * 1024)
                    .read_json()
                    .map_err(|e| unavailable("validate reply", e))?;
                if !r.valid || r.username.is_empty() {
                    return Ok(None);
                }
                let until = expiry(&r.expires_at).unwrap_or(i64::MAX);
                let account_type =
                    if r.account_type == "system" { AccountType::System } else { AccountType::Human };
                let subject = if r.sub.is_empty() { format!("mcias:{}", r.username) } else { r.sub };
                Ok(Some((
                    Principal { subject, username: r.username, roles: r.roles, account_type, scope: None },
                    until,
                )))
            }
            401 | 403 => Ok(None),
            other => Err(unavailable("validate", format!("status {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-28T10:34:56Z"), Some(1_795_862_096));
        assert_eq!(parse_rfc3339("2026-11-28T11:34:56.123+01:00"), Some(1_795_862_096));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        for bad in
            ["", "2026-11-28", "2026-13-01T00:00:00Z", "2026-11-28T10:34:56", "2026-11-28T10:34:56+0100"]
        {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
