//! The Docker token endpoint (`GET /v2/token` with Basic credentials, and
//! the OAuth2 password grant on `POST /v2/token`).

use crate::app::Ctx;
use crate::auth::{Credentials, Password};
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::model::Scope;

const FORM_LIMIT: u64 = crate::http::FORM_BODY_LIMIT;

pub fn handle(ctx: &Ctx, req: &mut Request) -> Result<Response> {
    let (user, pass, scopes) = match req.method.as_str() {
        "GET" => match req.credentials() {
            Ok(Some(Credentials::Basic(u, p))) => {
                let q = req.query();
                let scopes: Vec<String> =
                    q.into_iter().filter(|(k, _)| k == "scope").map(|(_, v)| v).collect();
                (u, p, scopes)
            }
            _ => return Err(Error::Unauthenticated),
        },
        "POST" => {
            let form = req
                .read_form(FORM_LIMIT)
                .map_err(|e| Error::BodyIncomplete(format!("token request body: {e}")))?
                .ok_or(Error::BodyTooLarge { limit: FORM_LIMIT })?;
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
            // OAuth2 separates scopes with spaces; some clients repeat the field.
            let scopes: Vec<String> = form
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect();
            match (get("username"), get("password")) {
                (Some(u), Some(p)) if !u.is_empty() => (u, Password::new(p), scopes),
                _ => return Err(Error::BadRequest("username and password are required".into())),
            }
        }
        _ => return Err(Error::MethodNotAllowed),
    };
    // No scope asked for (docker login, mcrctl login): the user's full
    // authority.  Otherwise the token carries what policy grants of it.
    let requested = match scopes.is_empty() {
        true => None,
        false => Some(Scope::parse_requested(scopes.iter().map(String::as_str)).map_err(Error::BadRequest)?),
    };
    let issued = crate::service::session::issue_token(ctx, &user, &pass, requested)?;
    let now = ctx.app.now();
    let body = serde_json::json!({
        "token": issued.token.expose(),
        "access_token": issued.token.expose(),
        "expires_in": (issued.expires_at - now).max(0),
        "issued_at": crate::model::rfc3339(now),
    });
    let mut resp = Response::json(200, body.to_string().into_bytes());
    resp.user = Some(user);
    Ok(resp)
}
