//! The master's side of the handshake: the worker id, version and token
//! checks of a hello (the proof itself is [`crate::Exchange`]).
//!
//! Kept pure so the refusal messages can be tested without sockets.
//! Everything a refusal quotes from the hello is checked or made
//! [`printable`] first: refusals are logged.

use crate::{
    Hello, MAX_WORKER_ID_CHARS, NONCE_BYTES, PROTOCOL_VERSION, SWARMER_VERSION, printable,
};

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
    #[error(
        "worker {worker_id} has a cluster token but this master has none; \
         give both the same --cluster-token"
    )]
    UnexpectedToken { worker_id: String },
    #[error("worker {worker_id} sent a malformed handshake: {what}")]
    Malformed { worker_id: String, what: String },
    #[error(
        "a worker id must be 1 to {MAX_WORKER_ID_CHARS} characters among letters, digits \
         and - _ . : @, got \"{0}\""
    )]
    BadWorkerId(String),
}

/// Whether `id` may name a worker: short, and only characters that are
/// safe in a log line, a URL and a Kubernetes name.
pub fn valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_WORKER_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// Accepts `hello` when its worker id is valid, its protocol matches ours,
/// and it brings a nonce exactly when the master has a token (the proof
/// over that nonce comes next).
pub fn check_hello(hello: &Hello, master_token: Option<&str>) -> Result<(), HandshakeError> {
    let id = &hello.worker_id;
    if !valid_worker_id(id) {
        return Err(HandshakeError::BadWorkerId(printable(
            id,
            MAX_WORKER_ID_CHARS,
        )));
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version {
            worker_id: id.clone(),
            worker_protocol: hello.protocol_version,
            worker_version: printable(&hello.swarmer_version, 64),
            master_protocol: PROTOCOL_VERSION,
            master_version: SWARMER_VERSION.to_string(),
        });
    }
    let worker_id = id.clone();
    match (master_token, hello.nonce.as_deref()) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(HandshakeError::UnexpectedToken { worker_id }),
        (Some(_), None) => Err(HandshakeError::MissingToken { worker_id }),
        (Some(_), Some(n)) if n.len() == NONCE_BYTES => Ok(()),
        (Some(_), Some(n)) => Err(HandshakeError::Malformed {
            worker_id,
            what: format!("a nonce of {} bytes, not {NONCE_BYTES}", n.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: u32, nonce: Option<Vec<u8>>) -> Hello {
        Hello {
            protocol_version: version,
            swarmer_version: "9.9.9".into(),
            worker_id: "w1".into(),
            incarnation: 1,
            cores: 2,
            token: None,
            nonce,
        }
    }

    #[test]
    fn accepts_matching_version_and_a_nonce_exactly_when_the_master_has_a_token() {
        assert_eq!(check_hello(&hello(PROTOCOL_VERSION, None), None), Ok(()));
        let ok = hello(PROTOCOL_VERSION, Some(crate::new_nonce()));
        assert_eq!(check_hello(&ok, Some("s3cret")), Ok(()));
        assert!(matches!(
            check_hello(&ok, None),
            Err(HandshakeError::UnexpectedToken { .. })
        ));
        let short = hello(PROTOCOL_VERSION, Some(vec![1; 3]));
        assert!(matches!(
            check_hello(&short, Some("s3cret")),
            Err(HandshakeError::Malformed { .. })
        ));
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
    fn refuses_a_missing_token() {
        let none = hello(PROTOCOL_VERSION, None);
        assert!(matches!(
            check_hello(&none, Some("t")),
            Err(HandshakeError::MissingToken { .. })
        ));
    }

    #[test]
    fn refuses_bad_worker_ids_quoting_them_short_and_escaped() {
        let mut h = hello(PROTOCOL_VERSION, None);
        for ok in [
            "w1",
            "local-1",
            "pod-7f9c_0a1b2c",
            "host.example.com:1",
            "a@b",
        ] {
            h.worker_id = ok.into();
            assert_eq!(check_hello(&h, None), Ok(()), "{ok}");
        }
        h.worker_id = "x".repeat(MAX_WORKER_ID_CHARS);
        assert_eq!(check_hello(&h, None), Ok(()));
        for bad in ["", "a\nb", "a b", "é", "a/b", "<script>"] {
            h.worker_id = bad.into();
            assert!(
                matches!(check_hello(&h, None), Err(HandshakeError::BadWorkerId(_))),
                "{bad:?}"
            );
        }
        h.worker_id = format!("{}\nFORGED", "y".repeat(8 * 1024 * 1024));
        let text = check_hello(&h, None).unwrap_err().to_string();
        assert!(text.len() < 1024 && !text.contains('\n'), "{}", text.len());
    }
}
