//! The flags that shape the script's HTTP client (`--accept-encoding`,
//! `--resolve`, `--ca-cert`, `--client-cert`/`--client-key`, `--proxy`,
//! `--http-version`),
//! in their own group so `--help` shows them together.
//! Checked once into [`script::HttpSettings`] before the run starts.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use script::HttpSettings;
use script::http_settings::{
    HostOverride, HttpVersion, Identity, Proxies, load_certs, load_key, parse_accept_encoding,
};

use crate::config::{UsageError, usage};

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP client")]
pub struct HttpArgs {
    /// `Accept-Encoding` sent when the script sets none (default "gzip,
    /// deflate, br, zstd"; "none" sends none). Compressed bodies are
    /// decoded either way.
    #[arg(long, env = "SWARMER_ACCEPT_ENCODING", value_name = "CODINGS")]
    pub accept_encoding: Option<String>,
    /// Connect to ADDR when a URL names HOST:PORT, as curl's --resolve:
    /// certificates and SNI still follow HOST. Repeatable.
    #[arg(
        long,
        env = "SWARMER_RESOLVE",
        value_name = "HOST:PORT:ADDR",
        value_delimiter = ','
    )]
    pub resolve: Vec<String>,
    /// PEM file of CA certificates to trust besides the public roots
    /// (verification stays on).
    #[arg(long, env = "SWARMER_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate (chain) to present to servers that ask for
    /// one (mTLS); needs --client-key.
    #[arg(
        long,
        env = "SWARMER_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        env = "SWARMER_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Send requests through this http:// proxy (user:password@ in the URL
    /// for its credentials; HTTPS goes through a CONNECT tunnel); "none"
    /// ignores HTTP_PROXY/HTTPS_PROXY. Without it those variables are used,
    /// except for localhost and loopback addresses.
    #[arg(long, env = "SWARMER_PROXY", value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that go direct (NO_PROXY's syntax: names and their subdomains,
    /// IP addresses, CIDR blocks, "*"); replaces NO_PROXY.
    #[arg(long, env = "SWARMER_NO_PROXY", value_name = "HOSTS")]
    pub no_proxy: Option<String>,
    /// HTTP version: "auto" (HTTPS offers h2 and HTTP/1.1 by ALPN and the
    /// server picks; plain HTTP is HTTP/1.1), "1.1", or "2" (h2 only over
    /// TLS, h2c by prior knowledge over plain TCP).
    #[arg(long, env = "SWARMER_HTTP_VERSION", value_name = "VERSION")]
    pub http_version: Option<String>,
}

impl HttpArgs {
    /// The checked settings; a bad value is an error naming its flag.
    pub fn settings(&self) -> Result<HttpSettings, UsageError> {
        let mut s = HttpSettings::default();
        if let Some(a) = &self.accept_encoding {
            s.accept_encoding =
                parse_accept_encoding(a).map_err(|e| usage(format!("--accept-encoding {e}")))?;
        }
        for r in &self.resolve {
            let o = HostOverride::parse_curl(r).map_err(|e| usage(format!("--resolve {e}")))?;
            s.resolve.push(o);
        }
        if let Some(ca) = &self.ca_cert {
            s.tls.extra_roots = load_certs(ca).map_err(|e| usage(format!("--ca-cert {e}")))?;
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let certs = load_certs(cert).map_err(|e| usage(format!("--client-cert {e}")))?;
            let key_der = load_key(key).map_err(|e| usage(format!("--client-key {e}")))?;
            let id = Identity::new(certs, key_der).map_err(|e| {
                usage(format!(
                    "--client-key {} / --client-cert {}: {e}",
                    key.display(),
                    cert.display()
                ))
            })?;
            s.tls.identity = Some(Arc::new(id));
        }
        s.proxies = Arc::new(self.proxies(|name| std::env::var(name).ok())?);
        if let Some(v) = &self.http_version {
            s.version = HttpVersion::parse(v).map_err(|e| usage(format!("--http-version {e}")))?;
        }
        Ok(s)
    }

    /// `--proxy`, `--no-proxy`, and the environment (read through `env`).
    fn proxies(&self, env: impl Fn(&str) -> Option<String>) -> Result<Proxies, UsageError> {
        let no_proxy = || {
            self.no_proxy
                .clone()
                .or_else(|| env("NO_PROXY"))
                .or_else(|| env("no_proxy"))
        };
        match self.proxy.as_deref().map(str::trim) {
            Some(p) if p.eq_ignore_ascii_case("none") => Ok(Proxies::none()),
            Some(p) => Proxies::explicit(p, no_proxy().as_deref())
                .map_err(|e| usage(format!("--proxy {e}"))),
            None => Proxies::from_env(|name| match name {
                "NO_PROXY" | "no_proxy" if self.no_proxy.is_some() => self.no_proxy.clone(),
                _ => env(name),
            })
            .map_err(|e| usage(format!("{e} (or set --proxy)"))),
        }
    }

    /// The same flags for a local worker process.
    pub fn worker_args(&self) -> Vec<String> {
        let accept = self
            .accept_encoding
            .iter()
            .map(|a| format!("--accept-encoding={a}"));
        let resolve = self.resolve.iter().map(|r| format!("--resolve={r}"));
        let files = [
            ("--ca-cert", &self.ca_cert),
            ("--client-cert", &self.client_cert),
            ("--client-key", &self.client_key),
        ];
        let files = files
            .into_iter()
            .filter_map(|(flag, path)| Some(format!("{flag}={}", path.as_ref()?.display())));
        let proxy = [
            ("--proxy", &self.proxy),
            ("--no-proxy", &self.no_proxy),
            ("--http-version", &self.http_version),
        ];
        let proxy = proxy
            .into_iter()
            .filter_map(|(flag, v)| Some(format!("{flag}={}", v.as_ref()?)));
        accept.chain(resolve).chain(files).chain(proxy).collect()
    }
}
