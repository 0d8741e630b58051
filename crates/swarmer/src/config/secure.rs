//! The security-sensitive settings, resolved with safe defaults: where the
//! master listens for workers, and the secrets (cluster token, web
//! password, web token), which must not be empty.
//!
//! A worker that joins receives the script (its URLs, its data, whatever
//! secrets it holds) and a share of the users, so a master accepts workers
//! beyond loopback only when they must present a `--cluster-token`, or when
//! `--open-cluster` says an open port is wanted (a trusted network).

use std::net::IpAddr;

use super::{UsageError, usage};

/// Where the master listens for workers: loopback unless a token guards it.
pub fn master_bind_host(
    explicit: Option<&str>,
    token: Option<&str>,
    open_cluster: bool,
) -> Result<String, UsageError> {
    let guarded = token.is_some() || open_cluster;
    match explicit.map(str::trim) {
        None | Some("") if guarded => Ok("0.0.0.0".into()),
        None | Some("") => Ok("127.0.0.1".into()),
        Some(host) if guarded || is_loopback(host) => Ok(host.to_string()),
        Some(host) => Err(usage(format!(
            "--master-bind-host {host} would let any process that reaches it join as a worker \
             and receive the script: set --cluster-token SECRET (and give the workers the same), \
             or pass --open-cluster if this network is trusted"
        ))),
    }
}

/// "localhost", 127.0.0.0/8 and ::1. Other names may resolve anywhere.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A secret given but empty would turn on a check that anyone passes.
pub fn secret(value: Option<&str>, flag: &str, env: &str) -> Result<Option<String>, UsageError> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(usage(format!(
            "{flag} (or {env}) is empty: give a secret, or leave the flag and the variable unset"
        ))),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// `--web-auth USER:PASSWORD`, both parts non-empty.
pub fn web_auth(pair: Option<&str>) -> Result<Option<(String, String)>, UsageError> {
    let Some(pair) = pair else { return Ok(None) };
    match pair.split_once(':') {
        Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
            Ok(Some((user.to_string(), pass.to_string())))
        }
        Some((user, _)) if !user.is_empty() => Err(usage(
            "--web-auth (or SWARMER_WEB_AUTH) has an empty password: it must be USER:PASSWORD",
        )),
        _ => Err(usage(
            "--web-auth (or SWARMER_WEB_AUTH) must be USER:PASSWORD with a non-empty user",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_listen_on_loopback_unless_a_token_guards_the_port() {
        assert_eq!(master_bind_host(None, None, false).unwrap(), "127.0.0.1");
        assert_eq!(master_bind_host(None, Some("s"), false).unwrap(), "0.0.0.0");
        assert_eq!(master_bind_host(None, None, true).unwrap(), "0.0.0.0");
        assert_eq!(master_bind_host(Some("::1"), None, false).unwrap(), "::1");
        assert_eq!(
            master_bind_host(Some("localhost"), None, false).unwrap(),
            "localhost"
        );
        let e = master_bind_host(Some("0.0.0.0"), None, false).unwrap_err();
        assert!(e.to_string().contains("--cluster-token"), "{e}");
        assert!(master_bind_host(Some("10.0.0.5"), Some("s"), false).is_ok());
        assert!(master_bind_host(Some("10.0.0.5"), None, true).is_ok());
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(secret(None, "--x", "X").unwrap(), None);
        assert!(secret(Some(""), "--x", "X").is_err());
        assert!(secret(Some("  "), "--x", "X").is_err());
        assert_eq!(secret(Some("k"), "--x", "X").unwrap().as_deref(), Some("k"));
        assert!(
            web_auth(Some("admin:"))
                .unwrap_err()
                .to_string()
                .contains("empty password")
        );
        assert!(web_auth(Some(":pw")).is_err());
        assert!(web_auth(Some("nocolon")).is_err());
        assert_eq!(
            web_auth(Some("a:b:c")).unwrap(),
            Some(("a".into(), "b:c".into()))
        );
    }
}
