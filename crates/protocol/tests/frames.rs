//! Frame decoding against anything a socket can carry: every message
//! round-trips, frames split at any byte decode the same, and random,
//! mutated, truncated, oversized or absurdly nested input is an error, never
//! a panic, a hang or a huge allocation. The master reads these bytes from
//! strangers on its port; one bad connection must cost that connection only.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use protocol::{
    CodecError, Hello, MAX_FRAME_BYTES, MasterMessage, MessageCodec, PROTOCOL_VERSION, Report,
    ScriptBundle, ScriptRef, SpawnPlan, WorkerMessage, WorkerState, WorkerStatus,
};
use stats::{RequestStats, Sample};
use tokio_util::codec::{Decoder, Encoder};

type MasterSide = MessageCodec<WorkerMessage, MasterMessage>;
type WorkerSide = MessageCodec<MasterMessage, WorkerMessage>;

fn encode_worker(msgs: &[WorkerMessage]) -> BytesMut {
    let mut codec = WorkerSide::default();
    let mut out = BytesMut::new();
    for m in msgs {
        codec.encode(m.clone(), &mut out).expect("encode");
    }
    out
}

/// Decodes everything in `buf` as the master does, stopping at the first
/// error (the connection would be closed there).
fn decode_all(buf: &mut BytesMut) -> (Vec<WorkerMessage>, Option<CodecError>) {
    let mut codec = MasterSide::default();
    let mut out = Vec::new();
    loop {
        match codec.decode(buf) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Messages hold floats and histograms without `PartialEq`; their
/// encodings are compared instead (msgpack of the same value is the same).
fn same(a: &[WorkerMessage], b: &[WorkerMessage]) -> bool {
    encode_worker(a) == encode_worker(b)
}

fn stats_strategy() -> impl Strategy<Value = RequestStats> {
    let sample = (
        prop::sample::select(vec!["GET", "POST", "PUT"]),
        "[a-z/]{1,12}",
        0u64..10_000_000,
        prop::option::of(0u64..10_000_000),
        0u64..1_000_000,
        prop::option::of("[a-z ]{1,20}"),
        0u64..30_000,
    );
    prop::collection::vec(sample, 0..60).prop_map(|samples| {
        let start = 1_700_000_000_000;
        let mut stats = RequestStats::new(start);
        for (method, name, rt, due, len, error, offset) in &samples {
            let sample = Sample {
                method,
                name,
                response_time_us: *rt,
                due_latency_us: *due,
                content_length: *len,
                error: error.as_deref(),
            };
            stats.record(&sample, start + offset);
        }
        stats
    })
}

fn worker_message() -> impl Strategy<Value = WorkerMessage> {
    let hello = (
        any::<u32>(),
        ".{0,20}",
        "[a-z0-9-]{1,40}",
        any::<u64>(),
        any::<u32>(),
        prop::option::of(".{0,30}"),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(|(v, sv, id, inc, cores, token, nonce)| {
            WorkerMessage::Hello(Hello {
                protocol_version: v,
                swarmer_version: sv,
                worker_id: id,
                incarnation: inc,
                cores,
                token,
                nonce,
            })
        });
    let state = prop::sample::select(vec![
        WorkerState::Ready,
        WorkerState::Spawning,
        WorkerState::Running,
        WorkerState::Stopping,
    ]);
    let heartbeat = (
        prop::option::of(state),
        any::<u32>(),
        0f32..10_000.0,
        any::<u64>(),
    )
        .prop_map(|(state, user_count, cpu_percent, memory_bytes)| {
            WorkerMessage::Heartbeat(WorkerStatus {
                state,
                user_count,
                cpu_percent,
                memory_bytes,
            })
        });
    let users = prop::collection::btree_map("[A-Z][a-z]{0,8}", any::<u32>(), 0..4);
    let report = (
        any::<u64>(),
        any::<u64>(),
        stats_strategy(),
        any::<u32>(),
        users,
    )
        .prop_map(|(run_id, seq, stats, user_count, users_by_type)| {
            WorkerMessage::Report(Box::new(Report {
                run_id,
                seq,
                stats,
                pool_users: user_count / 2,
                released_indexes: Vec::new(),
                user_count,
                users_by_type,
            }))
        });
    prop_oneof![
        hello,
        heartbeat,
        report,
        ".{0,200}".prop_map(|message| WorkerMessage::ScriptError { message }),
        ".{0,200}".prop_map(|code| WorkerMessage::ScriptWanted {
            hash: ScriptBundle::script("s.lua", &code).hash()
        }),
        any::<u64>().prop_map(|run_id| WorkerMessage::Stopped { run_id }),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|mac| WorkerMessage::Proof { mac }),
        Just(WorkerMessage::Quitting),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_worker_message_round_trips(msgs in prop::collection::vec(worker_message(), 1..5)) {
        let mut buf = encode_worker(&msgs);
        let (decoded, err) = decode_all(&mut buf);
        prop_assert!(err.is_none(), "{err:?}");
        prop_assert!(same(&msgs, &decoded));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(
        msgs in prop::collection::vec(worker_message(), 1..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        // Bytes arrive in pieces of any size; the decoder sees each piece
        // appended to what it had.
        let whole = encode_worker(&msgs);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(whole.len() + 1)).collect();
        points.push(whole.len());
        points.sort_unstable();
        let mut codec = MasterSide::default();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for to in points {
            buf.extend_from_slice(&whole[from..to]);
            from = to;
            while let Some(m) = codec.decode(&mut buf).expect("valid frames") {
                decoded.push(m);
            }
        }
        prop_assert!(same(&msgs, &decoded));
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_all(&mut buf);
        // The worker's side reads the master's messages with the same code.
        let mut buf = BytesMut::from(&bytes[..]);
        let mut codec = WorkerSide::default();
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }

    #[test]
    fn random_bodies_in_valid_frames_never_panic(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        let _ = decode_all(&mut buf);
    }

    #[test]
    fn mutated_messages_never_panic(
        msg in worker_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        keep in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_worker(&[msg]).to_vec();
        // Keep the length prefix honest for the body's edits, then also try
        // the frame cut short anywhere.
        for (at, value) in &edits {
            let i = 4 + at.index(bytes.len() - 4);
            bytes[i] = *value;
        }
        let _ = decode_all(&mut BytesMut::from(&bytes[..]));
        let cut = keep.index(bytes.len() + 1);
        let _ = decode_all(&mut BytesMut::from(&bytes[..cut]));
    }
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read() {
    let mut buf = BytesMut::new();
    buf.put_u32((MAX_FRAME_BYTES + 1) as u32);
    // Not one byte of the body is needed to refuse it.
    let (msgs, err) = decode_all(&mut buf);
    assert!(msgs.is_empty());
    assert!(matches!(err, Some(CodecError::Io(_))), "{err:?}");

    let mut codec = WorkerSide::default();
    let huge = WorkerMessage::ScriptError {
        message: "x".repeat(MAX_FRAME_BYTES),
    };
    assert!(
        codec.encode(huge, &mut BytesMut::new()).is_err(),
        "nor is one sent"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for opener in [0x91u8, 0x81] {
        // 100,000 one-element arrays (or maps) inside each other.
        let body = vec![opener; 100_000];
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.extend_from_slice(&body);
        let (msgs, err) = decode_all(&mut buf);
        assert!(msgs.is_empty() && err.is_some());
    }
}

#[test]
fn a_huge_declared_length_inside_a_frame_allocates_nothing_huge() {
    // A msgpack array header claiming 4 billion elements in a 6-byte body.
    let body = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x00];
    let mut buf = BytesMut::new();
    buf.put_u32(body.len() as u32);
    buf.extend_from_slice(&body);
    let (msgs, err) = decode_all(&mut buf);
    assert!(msgs.is_empty() && err.is_some());
}

#[test]
fn a_hello_of_another_shape_is_read_for_its_version() {
    // {"Hello": {"protocol_version": 99, "worker_id": "w"}}: fields missing.
    let mut body = vec![0x81, 0xa5];
    body.extend_from_slice(b"Hello");
    body.extend_from_slice(&[0x82, 0xb0]);
    body.extend_from_slice(b"protocol_version");
    body.extend_from_slice(&[0x63, 0xa9]);
    body.extend_from_slice(b"worker_id");
    body.extend_from_slice(&[0xa1, b'w']);
    assert_eq!(other_version(&body), (99, String::new(), "w".to_string()));
}

/// The version, release and id a frame of `body` is refused with.
fn other_version(body: &[u8]) -> (u32, String, String) {
    let mut buf = BytesMut::new();
    buf.put_u32(body.len() as u32);
    buf.extend_from_slice(body);
    match decode_all(&mut buf).1 {
        Some(CodecError::OtherVersion {
            protocol_version,
            swarmer_version,
            worker_id,
        }) => (protocol_version, swarmer_version, worker_id),
        other => panic!("expected OtherVersion, got {other:?}"),
    }
}

/// A later version's hello, positional with fields this one does not know,
/// is still read for its version and id.
#[test]
fn a_positional_hello_with_more_fields_is_read_for_its_version() {
    let later = (
        PROTOCOL_VERSION + 1,
        "9.9.9",
        "w-later",
        7u64,
        2u32,
        None::<String>,
        None::<Vec<u8>>,
        "a field of the future",
    );
    let body = rmp_serde::to_vec(&BTreeMap::from([("Hello", later)])).unwrap();
    assert_eq!(
        other_version(&body),
        (PROTOCOL_VERSION + 1, "9.9.9".into(), "w-later".into())
    );
}

#[test]
fn master_messages_round_trip() {
    let plan = SpawnPlan {
        run_id: 3,
        users: BTreeMap::from([("A".to_string(), 5)]),
        spawn_rate: 2.5,
        host: Some("http://x".into()),
        tags: vec!["t".into()],
        exclude_tags: vec![],
        arrivals: Default::default(),
        indexes: None,
        script: ScriptRef::sending(bundle_with_a_file()),
    };
    let by_hash = SpawnPlan {
        script: ScriptRef::by_hash(plan.script.hash.clone()),
        ..plan.clone()
    };
    let msgs = vec![
        MasterMessage::Welcome {
            heartbeat_interval_ms: 1000,
            report_interval_ms: 1000,
            master_id: 42,
            proof: Some(vec![7; 32]),
        },
        MasterMessage::Challenge { nonce: vec![1; 32] },
        MasterMessage::Refused {
            reason: "no".into(),
        },
        MasterMessage::Ack { seq: 9 },
        MasterMessage::Spawn(Box::new(plan)),
        MasterMessage::Spawn(Box::new(by_hash)),
        MasterMessage::Stop {
            run_id: 3,
            stop_timeout_ms: 10,
        },
        MasterMessage::ResetStats,
        MasterMessage::Heartbeat,
        MasterMessage::Quit,
    ];
    let mut master = MasterSide::default();
    let mut worker = WorkerSide::default();
    let mut buf = BytesMut::new();
    for m in &msgs {
        master.encode(m.clone(), &mut buf).expect("encode");
    }
    for m in &msgs {
        let got = worker.decode(&mut buf).expect("decode").expect("a message");
        assert_eq!(format!("{got:?}"), format!("{m:?}"));
    }
    assert_eq!(PROTOCOL_VERSION, 6, "bump this test with the version");
}

/// A bundle with one file of every byte value.
fn bundle_with_a_file() -> ScriptBundle {
    let mut bundle = ScriptBundle::script("s.lua", "-- code");
    bundle.files.push(protocol::BundleFile {
        path: "data/all.bin".into(),
        bytes: (0..=255u8).collect(),
    });
    bundle
}

#[test]
fn bundle_files_travel_as_binary_not_as_arrays_of_integers() {
    let encoded = rmp_serde::to_vec(&bundle_with_a_file()).unwrap();
    // As an array, the 128 bytes above 127 would take two bytes each.
    assert!(encoded.len() < 256 + 64, "{} bytes", encoded.len());
    let back: ScriptBundle = rmp_serde::from_slice(&encoded).unwrap();
    assert_eq!(back, bundle_with_a_file());
}
