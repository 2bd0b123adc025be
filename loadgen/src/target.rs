//! Plain-HTTP base URLs (`http://host:port[/prefix]`) resolved once to socket addresses.

use std::net::SocketAddr;

use anyhow::{Context, bail};

/// A frontend the viewers connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Path prefix without a trailing slash (usually empty).
    pub prefix: String,
}

/// Splits a comma-separated list, dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Target {
    /// Parses and resolves `url`.
    pub async fn resolve(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("{url}: only http:// URLs are supported");
        };
        let (host, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {url}"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{url}: no IPv4 address"))?;
        Ok(Target {
            addr,
            host: host.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_urls() {
        let t = Target::resolve("http://127.0.0.1:8080/").await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((t.host.as_str(), t.prefix.as_str()), ("127.0.0.1:8080", ""));
        let t = Target::resolve("http://127.0.0.1/x/").await.unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.prefix, "/x");
        assert!(Target::resolve("https://127.0.0.1").await.is_err());
        assert_eq!(split_list(" a, b,,"), ["a", "b"]);
    }
}
