//! The master's side of the handshake: version and token checks.
//!
//! Kept pure so the refusal messages can be tested without sockets.

use subtle::ConstantTimeEq;

use crate::{Hello, PROTOCOL_VERSION, SWARMER_VERSION};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "incompatible protocol: worker {worker_id} speaks protocol {worker_protocol} \
         (swarmer {worker_version}), this master speaks protocol {master_protocol} \
         (swarmer {master_version}); run the same swarmer version on both"
    )]
    Version {
        worker_id: String,
        worker_protocol: u32,
        worker_version: String,
        master_protocol: u32,
        master_version: String,
    },
    #[error("worker {worker_id} presented no cluster token, but this master requires one")]
    MissingToken { worker_id: String },
    #[error("worker {worker_id} presented a wrong cluster token")]
    WrongToken { worker_id: String },
    #[error("a worker id must be 1 to 253 printable characters, got {0:?}")]
    BadWorkerId(String),
}

/// Accepts `hello` when its protocol matches ours and, if the master has a
/// token, the worker's token equals it.
pub fn check_hello(hello: &Hello, master_token: Option<&str>) -> Result<(), HandshakeError> {
    let id = &hello.worker_id;
    if id.is_empty() || id.len() > 253 || id.chars().any(|c| c.is_control()) {
        return Err(HandshakeError::BadWorkerId(id.clone()));
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            worker_id: id.clone(),
            worker_protocol: hello.protocol_version,
            worker_version: hello.swarmer_version.clone(),
            master_protocol: PROTOCOL_VERSION,
            master_version: SWARMER_VERSION.to_string(),
        });
    }
    match (master_token, hello.token.as_deref()) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(HandshakeError::MissingToken {
            worker_id: id.clone(),
        }),
        (Some(want), Some(got)) if tokens_match(want, got) => Ok(()),
        (Some(_), Some(_)) => Err(HandshakeError::WrongToken {
            worker_id: id.clone(),
        }),
    }
}

/// Compares secrets in time independent of where they differ.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: u32, token: Option<&str>) -> Hello {
        Hello {
            protocol_version: version,
            swarmer_version: "9.9.9".into(),
            worker_id: "w1".into(),
            incarnation: 1,
            cores: 2,
            token: token.map(str::to_string),
        }
    }

    #[test]
    fn accepts_matching_version_and_token() {
        assert_eq!(check_hello(&hello(PROTOCOL_VERSION, None), None), Ok(()));
        let ok = hello(PROTOCOL_VERSION, Some("s3cret"));
        assert_eq!(check_hello(&ok, Some("s3cret")), Ok(()));
    }

    #[test]
    fn refusal_names_both_versions() {
        let err = check_hello(&hello(PROTOCOL_VERSION + 1, None), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("protocol {}", PROTOCOL_VERSION + 1)),
            "{text}"
        );
        assert!(
            text.contains(&format!("protocol {PROTOCOL_VERSION}")),
            "{text}"
        );
        assert!(
            text.contains("9.9.9") && text.contains(SWARMER_VERSION),
            "{text}"
        );
    }

    #[test]
    fn refuses_missing_or_wrong_token() {
        let none = hello(PROTOCOL_VERSION, None);
        assert!(matches!(
            check_hello(&none, Some("t")),
            Err(HandshakeError::MissingToken { .. })
        ));
        let wrong = hello(PROTOCOL_VERSION, Some("x"));
        assert!(matches!(
            check_hello(&wrong, Some("t")),
            Err(HandshakeError::WrongToken { .. })
        ));
    }

    #[test]
    fn refuses_bad_worker_ids() {
        let mut h = hello(PROTOCOL_VERSION, None);
        h.worker_id = String::new();
        assert!(check_hello(&h, None).is_err());
        h.worker_id = "a\nb".into();
        assert!(check_hello(&h, None).is_err());
    }
}
