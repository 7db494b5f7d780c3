//! What every frontend reads from a request, through well-kept parsers:
//! the query and form bodies (`form_urlencoded`), cookies (`cookie`), and
//! credentials from an `Authorization` value, plus the capped body reader.
//!
//! Invariant: nothing here is hand-parsed, and nothing reads more than its
//! limit; a malformed value is `None` or an error, never a panic.

use super::Request;
use crate::model::{Credentials, Password, Token};
use base64::Engine as _;
use std::io::Read;

/// Decodes `application/x-www-form-urlencoded` pairs (a query string or a
/// form body); malformed escapes are kept literally, and bytes that are not
/// UTF-8 become U+FFFD (validation of the values happens later).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// Parses an `Authorization` value: `Bearer <token>` or
/// `Basic <base64(user:password)>`; anything else is `None`.
pub fn credentials(value: &str) -> Option<Credentials> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Some(Credentials::Bearer(Token::new(rest)));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, pass) = text.split_once(':')?;
        if user.is_empty() {
            return None;
        }
        return Some(Credentials::Basic(user.to_string(), Password::new(pass)));
    }
    None
}

/// An `Authorization` header that is present but not credentials we read.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedCredentials;

impl Request<'_> {
    pub fn query(&self) -> Vec<(String, String)> {
        parse_query(self.url.split_once('?').map_or("", |(_, q)| q))
    }

    /// The credentials of the `Authorization` header: none when there is
    /// no header, an error when it holds something else.
    pub fn credentials(&self) -> Result<Option<Credentials>, MalformedCredentials> {
        match self.header("Authorization") {
            None => Ok(None),
            Some(v) => credentials(v).map(Some).ok_or(MalformedCredentials),
        }
    }

    /// The value of cookie `name` from the `Cookie` headers; unparsable
    /// cookies are skipped.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| cookie::Cookie::split_parse(v.as_str()).filter_map(Result::ok))
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Reads the whole body if it is at most `limit` bytes.  A declared
    /// length over the limit is refused before a byte is read; `None`
    /// means the body was larger (chunked) and was not kept.
    pub fn read_capped(&mut self, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        if self.content_length().is_some_and(|n| n > limit) {
            return Ok(None);
        }
        let mut buf = Vec::new();
        self.body.take(limit + 1).read_to_end(&mut buf)?;
        Ok((buf.len() as u64 <= limit).then_some(buf))
    }

    /// A form body (`application/x-www-form-urlencoded`) of at most `limit`
    /// bytes, decoded; `None` when it was larger.
    pub fn read_form(&mut self, limit: u64) -> std::io::Result<Option<Vec<(String, String)>>> {
        Ok(self.read_capped(limit)?.map(|b| form_urlencoded::parse(&b).into_owned().collect()))
    }

    /// Declared body length, if the client sent a valid `Content-Length`.
    pub fn content_length(&self) -> Option<u64> {
        self.header("Content-Length").and_then(|v| v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &[(&str, &str)], url: &str, body: &'a mut &'a [u8]) -> Request<'a> {
        Request {
            method: "POST".into(),
            url: url.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            remote_addr: None,
            local_addr: None,
            body,
        }
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("digest=sha256%3Aab&tag=a&tag=b&x&bad=%zz%4&sp=a+b"),
            vec![
                ("digest".into(), "sha256:ab".into()),
                ("tag".into(), "a".into()),
                ("tag".into(), "b".into()),
                ("x".into(), "".into()),
                ("bad".into(), "%zz%4".into()),
                ("sp".into(), "a b".into()),
            ]
        );
        assert_eq!(parse_query("k=%FF"), vec![("k".into(), "\u{fffd}".into())], "not UTF-8: replaced");
    }

    #[test]
    fn parses_authorization_values() {
        assert!(matches!(credentials("Bearer abc"), Some(Credentials::Bearer(t)) if t.expose() == "abc"));
        let b = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        match credentials(&format!("Basic {b}")) {
            Some(Credentials::Basic(u, p)) => assert_eq!((u.as_str(), p.expose()), ("alice", "pa:ss")),
            _ => panic!("basic not parsed"),
        }
        for bad in ["", "Bearer", "Bearer ", "Basic !!!", "Basic Og==", "Digest x", "Basic bm9jb2xvbg=="] {
            assert!(credentials(bad).is_none(), "{bad:?}");
        }
        let mut empty: &[u8] = b"";
        assert!(request(&[], "/", &mut empty).credentials().unwrap().is_none(), "no header: no credentials");
        let mut empty: &[u8] = b"";
        assert_eq!(
            request(&[("Authorization", "Digest x")], "/", &mut empty).credentials().err(),
            Some(MalformedCredentials)
        );
    }

    #[test]
    fn cookies_and_forms() {
        let mut body: &[u8] = b"a=1&b=x%20y";
        let mut r = request(
            &[
                ("Cookie", "theme=dark; mcr_session=abc%3D"),
                ("Cookie", "bad; other=2"),
                ("Content-Length", "11"),
            ],
            "/ui/login",
            &mut body,
        );
        assert_eq!(r.cookie("mcr_session").as_deref(), Some("abc%3D"), "values as sent");
        assert_eq!(r.cookie("other").as_deref(), Some("2"));
        assert_eq!(r.cookie("missing"), None);
        assert_eq!(
            r.read_form(64).unwrap(),
            Some(vec![("a".into(), "1".into()), ("b".into(), "x y".into())])
        );
        let mut body: &[u8] = b"a=1&b=2";
        let mut r = request(&[], "/", &mut body);
        assert_eq!(r.read_form(3).unwrap(), None, "over the limit: not kept");
    }
}
