//! The two URL forms of every SCIM endpoint: `/scim/v2/...`, where the
//! tenant is the bearer token's own, and `/tenants/{slug}/scim/v2/...`,
//! where the URL names it. The tenant form is rewritten to the plain one
//! before routing (so one set of routes serves both), leaving the slug in
//! the request's extensions; handlers read it back as a [`Scope`], send it
//! as the `tenant` of every gRPC request (the service refuses a token of
//! another tenant as unauthenticated) and build locations in the form that
//! was called.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::Uri;
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;

use crate::AppState;
use crate::wire::schema::BASE_PATH;

/// Path prefix of the tenant-addressed form.
const TENANTS_PREFIX: &str = "/tenants/";

/// The slug of a tenant-addressed request, set by [`address_tenant`] only.
#[derive(Clone, Debug)]
struct TenantPath(Arc<str>);

/// Which tenant a request addresses and where its resources live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The slug the URL names; empty on `/scim/v2`, which means the token's
    /// own tenant.
    pub tenant: Arc<str>,
    /// Public base URL of the form that was called, without `/scim/v2`:
    /// `{public_url}` or `{public_url}/tenants/{slug}`, so every location
    /// built on it points back into the same form.
    pub base_url: Arc<str>,
}

impl Scope {
    fn of(public_url: &Arc<str>, tenant: Option<&TenantPath>) -> Scope {
        match tenant {
            None => Scope {
                tenant: Arc::from(""),
                base_url: Arc::clone(public_url),
            },
            Some(TenantPath(slug)) => Scope {
                tenant: Arc::clone(slug),
                base_url: Arc::from(format!("{public_url}/tenants/{slug}")),
            },
        }
    }
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Scope::of(&state.base_url, parts.extensions.get()))
    }
}

/// Runs before routing: `/tenants/{slug}/scim/v2/rest?query` becomes
/// `/scim/v2/rest?query` with the slug in the extensions. Anything else is
/// left alone, a malformed slug included, so that it reaches no route and
/// gets the SCIM 404 of the fallback.
pub fn address_tenant(mut request: Request) -> Request {
    let Some((slug, path_and_query)) = split_tenant_path(request.uri()) else {
        return request;
    };
    let slug = TenantPath(Arc::from(slug));
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    let Ok(uri) = Uri::from_parts(parts) else {
        return request;
    };
    *request.uri_mut() = uri;
    request.extensions_mut().insert(slug);
    request
}

/// The slug and the plain-form path (with the query) of a tenant-addressed URI.
fn split_tenant_path(uri: &Uri) -> Option<(&str, PathAndQuery)> {
    let rest = uri.path().strip_prefix(TENANTS_PREFIX)?;
    let (slug, tail) = rest.split_once('/')?;
    let tail = format!("/{tail}");
    let under_base = tail
        .strip_prefix(BASE_PATH)
        .is_some_and(|after| after.is_empty() || after.starts_with('/'));
    // A malformed slug is answered 404 without a call; the service decides
    // whether a well-formed one names a tenant.
    if !(identity_proto::is_valid_slug(slug) && under_base) {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{tail}?{query}"),
        None => tail,
    };
    PathAndQuery::try_from(path_and_query)
        .ok()
        .map(|pq| (slug, pq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn rewritten(uri: &str) -> (String, Option<String>) {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .unwrap_or_default();
        let request = address_tenant(request);
        let slug = request
            .extensions()
            .get::<TenantPath>()
            .map(|t| t.0.to_string());
        (request.uri().to_string(), slug)
    }

    #[test]
    fn tenant_form_is_rewritten_with_its_query() {
        assert_eq!(
            rewritten("/tenants/acme-2/scim/v2/Users?filter=userName%20eq%20%22a%22"),
            (
                "/scim/v2/Users?filter=userName%20eq%20%22a%22".to_owned(),
                Some("acme-2".to_owned())
            )
        );
        assert_eq!(
            rewritten("/tenants/acme/scim/v2"),
            ("/scim/v2".to_owned(), Some("acme".to_owned()))
        );
        assert_eq!(
            rewritten("http://h:1/tenants/acme/scim/v2/Groups/g1"),
            (
                "http://h:1/scim/v2/Groups/g1".to_owned(),
                Some("acme".to_owned())
            )
        );
    }

    #[test]
    fn other_paths_and_malformed_slugs_are_left_alone() {
        for uri in [
            "/scim/v2/Users",
            "/tenants/Acme/scim/v2/Users",
            "/tenants/a/scim/v2/Users",
            "/tenants/ac%2Fme/scim/v2/Users",
            "/tenants/acme/healthz",
            "/tenants/acme/scim/v2x/Users",
            "/tenants/acme",
            "/tenants//scim/v2/Users",
        ] {
            assert_eq!(rewritten(uri), (uri.to_owned(), None), "{uri}");
        }
        let long = format!("/tenants/{}/scim/v2/Users", "a".repeat(64));
        assert_eq!(rewritten(&long).1, None);
    }

    #[test]
    fn scope_builds_locations_in_the_form_called() {
        let public: Arc<str> = Arc::from("https://scim.example.com");
        let plain = Scope::of(&public, None);
        assert_eq!(&*plain.tenant, "");
        assert_eq!(&*plain.base_url, "https://scim.example.com");
        let addressed = Scope::of(&public, Some(&TenantPath(Arc::from("acme"))));
        assert_eq!(&*addressed.tenant, "acme");
        assert_eq!(
            &*addressed.base_url,
            "https://scim.example.com/tenants/acme"
        );
    }
}
