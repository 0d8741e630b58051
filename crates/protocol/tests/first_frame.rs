//! Fuzzing what a stranger controls before it has proven anything: the
//! first frames on the master port and the hello inside them. Whatever the
//! bytes, the master's guarded codec reserves no more than the handshake
//! limit, never panics, and everything it or the hello check would log is
//! short and free of control characters (no forged log lines).

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use protocol::{
    CodecError, HandshakeError, Hello, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES,
    MAX_WORKER_ID_CHARS, MasterMessage, MessageCodec, PROTOCOL_VERSION, WorkerMessage, check_hello,
    valid_worker_id,
};
use serde::Serialize;
use tokio_util::codec::{Decoder, Encoder};

type Guarded = MessageCodec<WorkerMessage, MasterMessage>;

/// The longest text a refusal or a log line may quote from a hello.
const QUOTE_LIMIT: usize = 1024;

fn frame(body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(body.len() as u32);
    buf.extend_from_slice(body);
    buf
}

/// Decodes as the master does before the handshake: the first error ends it.
fn decode_first(buf: &mut BytesMut) -> Result<Vec<WorkerMessage>, CodecError> {
    let mut codec = Guarded::guarded();
    let mut out = Vec::new();
    while let Some(m) = codec.decode(buf)? {
        out.push(m);
    }
    Ok(out)
}

fn safe_to_log(text: &str) -> bool {
    text.len() <= QUOTE_LIMIT && !text.chars().any(char::is_control)
}

/// A hello of any version and shape: the fields a stranger picks.
#[derive(Serialize)]
enum AnyHello {
    Hello {
        protocol_version: u32,
        swarmer_version: String,
        worker_id: String,
        extra: Vec<u8>,
    },
}

fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-z\\n\\r\\x1b\\x00\\t ]{0,200}",
        (0usize..3000).prop_map(|n| format!("{}\nFORGED LINE", "x".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_first_bytes_cost_at_most_the_handshake_limit(
        bytes in prop::collection::vec(any::<u8>(), 0..(2 * MAX_HANDSHAKE_FRAME_BYTES)),
    ) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_first(&mut buf);
        prop_assert!(buf.capacity() <= bytes.len().max(MAX_HANDSHAKE_FRAME_BYTES) + 8);
    }

    #[test]
    fn any_declared_length_over_the_limit_is_refused_unread(len in (MAX_HANDSHAKE_FRAME_BYTES as u32 + 1)..) {
        let mut buf = BytesMut::new();
        buf.put_u32(len);
        let err = decode_first(&mut buf);
        prop_assert!(matches!(err, Err(CodecError::Io(_))), "{err:?}");
        prop_assert!(buf.capacity() < 64 * 1024, "reserved {}", buf.capacity());
    }

    #[test]
    fn a_hello_of_any_version_and_content_is_quoted_safely(
        protocol_version in any::<u32>(),
        swarmer_version in nasty_text(),
        worker_id in nasty_text(),
        extra in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let hello = AnyHello::Hello { protocol_version, swarmer_version, worker_id, extra };
        let body = rmp_serde::to_vec_named(&hello).expect("encode");
        match decode_first(&mut frame(&body)) {
            Err(CodecError::OtherVersion { worker_id, swarmer_version, .. }) => {
                prop_assert!(safe_to_log(&worker_id), "{worker_id:?}");
                prop_assert!(safe_to_log(&swarmer_version), "{swarmer_version:?}");
            }
            Err(e) => prop_assert!(safe_to_log(&e.to_string()) || body.len() > MAX_HANDSHAKE_FRAME_BYTES),
            Ok(msgs) => prop_assert!(msgs.is_empty() || protocol_version == PROTOCOL_VERSION),
        }
    }

    #[test]
    fn the_hello_check_accepts_only_valid_ids_and_quotes_safely(
        worker_id in nasty_text(),
        protocol_version in prop_oneof![Just(PROTOCOL_VERSION), any::<u32>()],
        swarmer_version in nasty_text(),
        nonce in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        token in prop::option::of("[a-z]{1,8}"),
    ) {
        let hello = Hello {
            protocol_version,
            swarmer_version,
            worker_id: worker_id.clone(),
            incarnation: 1,
            cores: 1,
            token: None,
            nonce,
        };
        match check_hello(&hello, token.as_deref()) {
            Ok(()) => prop_assert!(valid_worker_id(&worker_id)),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(safe_to_log(&text), "{text:?}");
                if !valid_worker_id(&worker_id) {
                    prop_assert!(matches!(e, HandshakeError::BadWorkerId(_)));
                }
            }
        }
    }
}

#[test]
fn the_limit_opens_only_when_told() {
    let big = WorkerMessage::ScriptError {
        message: "x".repeat(2 * MAX_HANDSHAKE_FRAME_BYTES),
    };
    let mut bytes = BytesMut::new();
    MessageCodec::<MasterMessage, WorkerMessage>::default()
        .encode(big, &mut bytes)
        .expect("encode");
    let mut codec = Guarded::guarded();
    assert_eq!(codec.read_limit(), MAX_HANDSHAKE_FRAME_BYTES);
    assert!(codec.decode(&mut bytes.clone()).is_err(), "too big before");
    codec.open();
    assert_eq!(codec.read_limit(), MAX_FRAME_BYTES);
    assert!(matches!(
        codec.decode(&mut bytes),
        Ok(Some(WorkerMessage::ScriptError { .. }))
    ));
}

#[test]
fn a_real_hello_fits_the_handshake_limit_many_times_over() {
    let hello = WorkerMessage::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        swarmer_version: protocol::SWARMER_VERSION.into(),
        worker_id: "w".repeat(MAX_WORKER_ID_CHARS),
        incarnation: u64::MAX,
        cores: u32::MAX,
        token: None,
        nonce: Some(protocol::new_nonce()),
    });
    let mut bytes = BytesMut::new();
    MessageCodec::<MasterMessage, WorkerMessage>::default()
        .encode(hello, &mut bytes)
        .expect("encode");
    assert!(
        bytes.len() * 4 < MAX_HANDSHAKE_FRAME_BYTES,
        "{}",
        bytes.len()
    );
    assert_eq!(decode_first(&mut bytes).expect("decodes").len(), 1);
}
