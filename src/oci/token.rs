//! The Docker token endpoint (`GET /v2/token` with Basic credentials, and
//! the OAuth2 password grant on `POST /v2/token`).

use crate::app::Ctx;
use crate::auth::{Credentials, Password};
use crate::error::{Error, Result};
use crate::http::{parse_query, Request, Response};
use std::io::Read;

const FORM_LIMIT: u64 = 64 * 1024;

pub fn handle(ctx: &Ctx, req: &mut Request) -> Result<Response> {
    let (user, pass) = match req.method.as_str() {
        "GET" => match req.header("Authorization").and_then(Credentials::parse) {
            Some(Credentials::Basic(u, p)) => (u, p),
            _ => return Err(Error::Unauthenticated),
        },
        "POST" => {
            let mut body = Vec::new();
            req.body
                .take(FORM_LIMIT + 1)
                .read_to_end(&mut body)
                .map_err(|e| Error::BodyIncomplete(format!("token request body: {e}")))?;
            if body.len() as u64 > FORM_LIMIT {
                return Err(Error::BadRequest("token request body is too large".into()));
            }
            let form = parse_query(&String::from_utf8_lossy(&body));
            let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
            match get("grant_type").as_deref() {
                Some("password") => {}
                Some(other) => {
                    return Err(Error::BadRequest(format!(
                        "unsupported grant_type {other:?}; use \"password\""
                    )))
                }
                None => return Err(Error::BadRequest("grant_type is required".into())),
            }
            match (get("username"), get("password")) {
                (Some(u), Some(p)) if !u.is_empty() => (u, Password::new(p)),
                _ => return Err(Error::BadRequest("username and password are required".into())),
            }
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    let issued = crate::service::session::issue_token(ctx, &user, &pass)?;
    let now = ctx.app.now();
    let body = serde_json::json!({
        "token": issued.token.expose(),
        "access_token": issued.token.expose(),
        "expires_in": (issued.expires_at - now).max(0),
        "issued_at": rfc3339(now),
    });
    let mut resp = Response::json(200, body.to_string().into_bytes());
    resp.user = Some(user);
    Ok(resp)
}

/// Unix seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_862_096), "2026-11-28T10:34:56Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
