//! The `/v2` path parser: names may contain `/`, so routes are recognised
//! from the right-hand end of the path.

#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Base,
    /// The Docker token endpoint.
    Token,
    Catalog,
    Tags {
        name: &'a str,
    },
    Manifest {
        name: &'a str,
        reference: &'a str,
    },
    UploadStart {
        name: &'a str,
    },
    Upload {
        name: &'a str,
        id: &'a str,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    Referrers {
        name: &'a str,
        digest: &'a str,
    },
    Unknown,
}

pub fn parse(path: &str) -> Route<'_> {
    let rest = match path {
        "/v2" | "/v2/" => return Route::Base,
        p => match p.strip_prefix("/v2/") {
            Some(r) => r,
            None => return Route::Unknown,
        },
    };
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if rest == "token" {
        return Route::Token;
    }
    // Peel up to three trailing segments off the name.
    let mut segs = rest.rsplitn(4, '/');
    let last = segs.next().unwrap_or("");
    let second = segs.next();
    let third = segs.next();
    let name_before = |n: usize| -> &str {
        // The name is everything before the last `n` segments.
        let mut end = rest.len();
        for _ in 0..n {
            end = rest[..end].rfind('/').unwrap_or(0);
        }
        &rest[..end]
    };
    match (third, second, last) {
        (_, Some("tags"), "list") => Route::Tags { name: name_before(2) },
        (Some("blobs"), Some("uploads"), "") => Route::UploadStart { name: name_before(3) },
        (Some("blobs"), Some("uploads"), id) => Route::Upload { name: name_before(3), id },
        (_, Some("blobs"), "uploads") => Route::UploadStart { name: name_before(2) },
        (_, Some("manifests"), reference) => Route::Manifest { name: name_before(2), reference },
        (_, Some("blobs"), digest) => Route::Blob { name: name_before(2), digest },
        (_, Some("referrers"), digest) => Route::Referrers { name: name_before(2), digest },
        _ => Route::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::Route::*;
    use super::*;

    #[track_caller]
    fn check(path: &str, expect: Route) {
        assert_eq!(parse(path), expect, "{path}");
    }

    #[test]
    fn routes() {
        check("/v2/", Base);
        check("/v2", Base);
        check("/v2/_catalog", Catalog);
        check("/v2/token", Token);
        check("/v2/token/tags/list", Tags { name: "token" });
        check("/v2/a/tags/list", Tags { name: "a" });
        check("/v2/a/b/c/tags/list", Tags { name: "a/b/c" });
        check("/v2/a/b/manifests/latest", Manifest { name: "a/b", reference: "latest" });
        check("/v2/a/blobs/uploads/", UploadStart { name: "a" });
        check("/v2/a/blobs/uploads", UploadStart { name: "a" });
        check("/v2/x/y/blobs/uploads/abc-1", Upload { name: "x/y", id: "abc-1" });
        check("/v2/x/blobs/sha256:00", Blob { name: "x", digest: "sha256:00" });
        check("/v2/x/referrers/sha256:00", Referrers { name: "x", digest: "sha256:00" });
        // Names that contain route words still route by their tail.
        check("/v2/blobs/manifests/t", Manifest { name: "blobs", reference: "t" });
        check("/v2/tags/list/tags/list", Tags { name: "tags/list" });
        check("/v2/a/manifests/b/manifests/c", Manifest { name: "a/manifests/b", reference: "c" });
        check("/v2/manifests/x", Manifest { name: "", reference: "x" });
        check("/v2/a", Unknown);
        check("/v3/a", Unknown);
        check("/v2/a/unknown/b", Unknown);
    }
}
