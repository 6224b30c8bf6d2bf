//! The target: a parsed `http://` URL resolved to one socket address, with
//! the loopback-only safety rule applied.

use std::net::{SocketAddr, ToSocketAddrs};

use hyper::header::HeaderValue;
use hyper::Uri;

use super::error::LoadError;

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given, for reports.
    pub url: String,
    /// `host[:port]`, for the `Host` header and HTTP/2's `:authority`.
    pub authority: String,
    pub host_header: HeaderValue,
    pub addr: SocketAddr,
    /// The URL's path without a trailing `/` (`""` for the root); scenario paths are appended.
    pub base_path: String,
    /// The URL's path and query, for runs without a scenario.
    pub path_and_query: String,
}

impl Target {
    /// Parses and resolves `url`; refuses non-loopback addresses unless `allow_remote`.
    pub fn resolve(url: &str, allow_remote: bool) -> Result<Self, LoadError> {
        let uri: Uri = url.parse().map_err(|e| LoadError::invalid(format!("--url `{url}`: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(LoadError::invalid(
                    "https targets are not supported: run the load tester next to the server and target its plain-HTTP port",
                ))
            }
            _ => return Err(LoadError::invalid(format!("--url `{url}` must start with http://"))),
        }
        let authority = uri.authority().ok_or_else(|| LoadError::invalid(format!("--url `{url}` has no host")))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| LoadError::Resolve { host: host.clone(), source })?
            .collect();
        let addr = *addrs.first().ok_or_else(|| LoadError::Resolve {
            host: host.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        })?;
        if !allow_remote {
            if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                return Err(LoadError::RemoteTarget { host, addr: remote.ip().to_string() });
            }
        }
        let path = uri.path();
        let base_path = path.trim_end_matches('/').to_string();
        let path_and_query = uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| LoadError::invalid(format!("--url `{url}`: bad host")))?;
        Ok(Target {
            url: url.to_string(),
            authority: authority.as_str().to_string(),
            host_header,
            addr,
            base_path,
            path_and_query,
        })
    }

    /// The request target for a scenario path (`/embed` under `http://h/api` → `/api/embed`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base_path, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_accepted() {
        let t = Target::resolve("http://127.0.0.1:8080/api/", false).expect("loopback");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.join("/embed"), "/api/embed");
        assert_eq!(t.authority, "127.0.0.1:8080");
        let t = Target::resolve("http://[::1]:9/x?y=1", false).expect("loopback v6");
        assert_eq!(t.path_and_query, "/x?y=1");
        assert!(Target::resolve("http://localhost:1/", false).is_ok());
        assert_eq!(Target::resolve("http://127.0.0.1", false).expect("default port").addr.port(), 80);
    }

    #[test]
    fn remote_needs_permission() {
        let err = Target::resolve("http://192.0.2.1:80/", false).expect_err("remote refused");
        assert!(matches!(err, LoadError::RemoteTarget { .. }), "{err}");
        assert!(Target::resolve("http://192.0.2.1:80/", true).is_ok());
        assert!(Target::resolve("https://127.0.0.1/", false).is_err());
        assert!(Target::resolve("ftp://127.0.0.1/", false).is_err());
    }
}
