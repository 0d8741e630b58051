//! The flags that shape the script's HTTP client (`--accept-encoding`,
//! `--resolve`), in their own group so `--help` shows them together.
//! Checked once into [`script::HttpSettings`] before the run starts.

use clap::Args;
use script::HttpSettings;
use script::http_settings::{HostOverride, parse_accept_encoding};

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
        Ok(s)
    }

    /// The same flags for a local worker process.
    pub fn worker_args(&self) -> Vec<String> {
        let accept = self
            .accept_encoding
            .iter()
            .map(|a| format!("--accept-encoding={a}"));
        let resolve = self.resolve.iter().map(|r| format!("--resolve={r}"));
        accept.chain(resolve).collect()
    }
}
