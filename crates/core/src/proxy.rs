//! The HTTP proxy downloads go through, decided once for every client that fetches from the internet (the hub, its
//! CDN redirects, URLs, the mirror's pull-through, llama.cpp's releases) and for every message about a failure:
//! the `proxy` setting (its user and password kept as the hub token is), else the environment's `HTTPS_PROXY`,
//! `HTTP_PROXY` and `ALL_PROXY` (or their lower-case forms, as curl reads them), with `NO_PROXY` honoured either way.
//!
//! The same decision goes to reqwest ([`Proxies::apply`]) and to errors ([`Proxies::for_url`]), so that a proxy's
//! refusal (`407`, or no answer at all) is said to be the proxy's, not taken for the hub's. The hub token is a
//! header of the hub's requests, never the proxy's: through a tunnel (`https://`) the proxy does not see it; a plain
//! `http://` hub (a LAN mirror) is seen whole by the proxy it goes through, as any plain request is. The proxy's own
//! `Proxy-Authorization` carries only the proxy's credentials.

use hyper_util::client::proxy::matcher::Matcher;
use reqwest::Url;
use std::sync::Arc;

/// The proxies in effect: none, or one per scheme with the hosts reached directly.
#[derive(Clone, Default)]
pub struct Proxies {
    inner: Option<Arc<Chosen>>,
}

struct Chosen {
    /// For `http://` targets, credentials included.
    http: Option<Url>,
    /// For `https://` targets.
    https: Option<Url>,
    /// Says which targets go through a proxy (`NO_PROXY` and the schemes set), as reqwest itself would.
    matcher: Matcher,
    /// From the `proxy` setting rather than the environment.
    from_setting: bool,
}

impl Proxies {
    /// The environment's proxies, read through `var` (`std::env::var` in the app).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Proxies {
        let first = |names| first_set(&var, names);
        let all = first(["ALL_PROXY", "all_proxy"]);
        // Under CGI, `HTTP_PROXY` is a request's `Proxy:` header (httpoxy), never the machine's proxy.
        let cgi = var("REQUEST_METHOD").is_some();
        let http = first(["HTTP_PROXY", "http_proxy"]).filter(|_| !cgi).or_else(|| all.clone());
        let https = first(["HTTPS_PROXY", "https_proxy"]).or(all);
        Proxies::chosen(http, https, first(["NO_PROXY", "no_proxy"]), false)
    }

    /// The process environment's proxies.
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// The `proxy` setting (`credentials`: `USER:PASSWORD`, kept apart from it) for both schemes, the environment's
    /// `NO_PROXY` still naming the hosts reached directly.
    pub fn from_setting(setting: &str, credentials: Option<&str>) -> Proxies {
        let mut url = setting.to_string();
        if let (Some(credentials), Ok(mut parsed)) = (credentials, Url::parse(setting)) {
            let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
            if parsed.set_username(user).is_ok() && parsed.set_password(Some(password)).is_ok() {
                url = parsed.to_string();
            }
        }
        let no = first_set(&|name: &str| std::env::var(name).ok(), ["NO_PROXY", "no_proxy"]);
        Proxies::chosen(Some(url.clone()), Some(url), no, true)
    }

    fn chosen(http: Option<String>, https: Option<String>, no: Option<String>, from_setting: bool) -> Proxies {
        let parse = |text: Option<String>| -> Option<Url> {
            let text = text?;
            let text = text.trim();
            // `host:port` alone means an HTTP proxy, as curl reads it.
            let with_scheme = if text.contains("://") { text.to_string() } else { format!("http://{text}") };
            match Url::parse(&with_scheme) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
                _ => {
                    tracing::warn!(
                        proxy = %shown(&with_scheme),
                        "this proxy is not an http(s) URL (SOCKS is not spoken here); downloads go without it"
                    );
                    None
                }
            }
        };
        let (http, https) = (parse(http), parse(https));
        if http.is_none() && https.is_none() {
            return Proxies::default();
        }
        let mut matcher = Matcher::builder();
        if let Some(url) = &http {
            matcher = matcher.http(url.to_string());
        }
        if let Some(url) = &https {
            matcher = matcher.https(url.to_string());
        }
        let matcher = matcher.no(no.unwrap_or_default()).build();
        Proxies { inner: Some(Arc::new(Chosen { http, https, matcher, from_setting })) }
    }

    /// The proxy a request for `url` goes through (credentials included), if any.
    fn proxy_of(&self, url: &Url) -> Option<&Url> {
        let chosen = self.inner.as_deref()?;
        let uri: http::Uri = url.as_str().parse().ok()?;
        chosen.matcher.intercept(&uri)?;
        match url.scheme() {
            "http" => chosen.http.as_ref(),
            _ => chosen.https.as_ref(),
        }
    }

    /// The proxy a request for `url` goes through, as messages show it (no credentials), if any.
    pub fn for_url(&self, url: &Url) -> Option<String> {
        self.proxy_of(url).map(|p| shown(p.as_str()))
    }

    /// Whether a request for `url` goes through a proxy with a user and password.
    pub fn has_credentials_for(&self, url: &Url) -> bool {
        self.proxy_of(url).is_some_and(|p| !p.username().is_empty() || p.password().is_some())
    }

    /// Whether the proxy comes from the `proxy` setting (which the Xet engine, reading only the environment, cannot
    /// be given).
    pub fn from_the_setting(&self) -> bool {
        self.inner.as_ref().is_some_and(|c| c.from_setting)
    }

    /// `builder` going through these proxies and no other (reqwest's own reading of the environment is replaced by
    /// this one, so that the two never disagree).
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builder = builder.no_proxy();
        match &self.inner {
            None => builder,
            Some(_) => {
                let proxies = self.clone();
                builder.proxy(reqwest::Proxy::custom(move |url| proxies.proxy_of(url).cloned()))
            }
        }
    }
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials are never printed.
        let shown = |u: &Option<Url>| u.as_ref().map(|u| shown(u.as_str()));
        match &self.inner {
            None => f.write_str("Proxies(none)"),
            Some(c) => f
                .debug_struct("Proxies")
                .field("http", &shown(&c.http))
                .field("https", &shown(&c.https))
                .field("from_setting", &c.from_setting)
                .finish(),
        }
    }
}

/// The first of two variables that is set, empty or not (`HTTPS_PROXY=` turns it off), as reqwest reads them;
/// none when that one is empty.
fn first_set(var: &impl Fn(&str) -> Option<String>, names: [&str; 2]) -> Option<String> {
    names.iter().find_map(|n| var(n)).filter(|v| !v.trim().is_empty())
}

/// A proxy's address without its user and password.
pub fn shown(proxy: &str) -> String {
    match Url::parse(proxy) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => "(an unreadable proxy address)".into(),
    }
}

/// A proxy URL split into the address the settings file keeps and the `USER:PASSWORD` kept as a secret.
pub fn split_credentials(proxy: &str) -> (String, Option<String>) {
    match Url::parse(proxy) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            let credentials = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or("")));
            (shown(proxy), Some(credentials))
        }
        _ => (proxy.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn each_scheme_has_its_proxy_and_no_proxy_names_the_hosts_reached_directly() {
        let p = Proxies::from_vars(env(&[
            ("HTTPS_PROXY", "http://u:p@secure.proxy:3128"),
            ("http_proxy", "plain.proxy:8080"),
            ("NO_PROXY", "localhost,.internal,10.0.0.0/8"),
        ]));
        assert_eq!(p.for_url(&url("https://huggingface.co/x")).as_deref(), Some("http://secure.proxy:3128"));
        assert_eq!(p.for_url(&url("http://example.com/x")).as_deref(), Some("http://plain.proxy:8080"));
        for direct in ["http://localhost:8080/", "https://cas.internal/x", "http://10.1.2.3/"] {
            assert_eq!(p.for_url(&url(direct)), None, "{direct}");
        }
        assert_eq!(p.proxy_of(&url("https://huggingface.co/")).unwrap().password(), Some("p"), "credentials kept");
        assert!(!p.from_the_setting());
        assert!(!format!("{p:?}").contains(":p@"), "{p:?}");
    }

    #[test]
    fn all_proxy_serves_both_schemes_and_socks_is_set_aside() {
        let p = Proxies::from_vars(env(&[("ALL_PROXY", "http://all:1")]));
        assert_eq!(p.for_url(&url("https://a/")).as_deref(), Some("http://all:1"));
        assert_eq!(p.for_url(&url("http://a/")).as_deref(), Some("http://all:1"));
        let socks = Proxies::from_vars(env(&[("ALL_PROXY", "socks5://s:1")]));
        assert_eq!(socks.for_url(&url("https://a/")), None);
        assert_eq!(Proxies::from_vars(env(&[])).for_url(&url("https://a/")), None);
    }

    #[test]
    fn the_setting_wins_with_its_credentials_kept_apart() {
        let (address, credentials) = split_credentials("http://alice:s%40cret@proxy.corp:3128");
        assert_eq!(address, "http://proxy.corp:3128");
        assert_eq!(credentials.as_deref(), Some("alice:s@cret"));
        assert_eq!(split_credentials("http://proxy.corp:3128"), ("http://proxy.corp:3128".into(), None));
        let p = Proxies::from_setting(&address, credentials.as_deref());
        assert!(p.from_the_setting());
        let chosen = p.proxy_of(&url("https://huggingface.co/")).unwrap();
        assert_eq!((chosen.username(), chosen.password()), ("alice", Some("s%40cret")));
        assert_eq!(p.for_url(&url("http://a/")).as_deref(), Some("http://proxy.corp:3128"));
    }
}
