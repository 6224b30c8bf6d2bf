//! Secrets kept out of logs and printed settings.

/// `url` with its credentials masked: the password in the userinfo
/// (`user:***@host`), a bare userinfo on Redis URLs (`redis://secret@host`
/// is a password there, a user name elsewhere), and `pass`/`password` query
/// parameters. A string that is not a URL is masked whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "***".to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None if scheme.starts_with("redis") => format!("***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") => {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A credential from the settings (an admin token, an API key). It never
/// shows itself: `Debug`, `Display` and `Serialize` all print `***`, so
/// `osprey config print`, logs and `GET /performance/config` cannot leak it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The credential itself, for the one place that compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, Secret};

    #[test]
    fn passwords_are_masked_and_the_rest_kept() {
        assert_eq!(redact_url("postgres://app:s3cr@t@db:5432/osprey"), "postgres://app:***@db:5432/osprey");
        assert_eq!(
            redact_url("postgres://app@db/x?password=pw&sslmode=disable"),
            "postgres://app@db/x?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("redis://:s3cret@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
        assert_eq!(redact_url("redis+unix:///tmp/r.sock?db=1&pass=s3cret"), "redis+unix:///tmp/r.sock?db=1&pass=***");
        assert_eq!(redact_url("sqlite://data/osprey.db"), "sqlite://data/osprey.db");
        assert_eq!(redact_url("not a url"), "***");
    }

    #[test]
    fn secrets_never_show_themselves() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(serde_json::to_string(&s).expect("serialise"), "\"***\"");
        let back: Secret = serde_json::from_str("\"abc\"").expect("parse");
        assert_eq!(back.expose(), "abc");
    }
}
