//! The RESP parser and writer: every type, split reads at every byte boundary, limits,
//! inline commands, checked against the `redis-protocol` crate (an independent
//! implementation) and fuzzed with proptest.

use bytes::{Bytes, BytesMut};
use memmesh::resp::{parse, parse_command, write, Protocol, RespError, RespLimits, Value};
use proptest::prelude::*;
use redis_protocol::resp2::types::{OwnedFrame as F2, Resp2Frame as _};
use redis_protocol::resp3::types::{OwnedFrame as F3, Resp3Frame as _, VerbatimStringFormat};

fn limits() -> RespLimits {
    RespLimits::default()
}

fn enc3(f: &F3) -> Vec<u8> {
    let mut buf = vec![0u8; f.encode_len(false)];
    let n = redis_protocol::resp3::encode::complete::encode(&mut buf, f, false).unwrap();
    buf.truncate(n);
    buf
}

fn enc2(f: &F2) -> Vec<u8> {
    let mut buf = vec![0u8; f.encode_len(false)];
    let n = redis_protocol::resp2::encode::encode(&mut buf, f, false).unwrap();
    buf.truncate(n);
    buf
}

/// What our parser should make of a `redis-protocol` RESP3 frame.
fn from3(f: &F3) -> Value {
    match f {
        F3::BlobString { data, .. } => Value::Bulk(Bytes::from(data.clone())),
        F3::BlobError { data, .. } => Value::BlobError(Bytes::from(data.clone())),
        F3::SimpleString { data, .. } => Value::Simple(String::from_utf8_lossy(data).into()),
        F3::SimpleError { data, .. } => Value::Error(data.clone()),
        F3::Boolean { data, .. } => Value::Boolean(*data),
        F3::Null => Value::Null,
        F3::Number { data, .. } => Value::Integer(*data),
        F3::Double { data, .. } => Value::Double(*data),
        F3::BigNumber { data, .. } => Value::BigNumber(String::from_utf8_lossy(data).into()),
        F3::VerbatimString { data, format, .. } => Value::Verbatim(
            match format {
                VerbatimStringFormat::Text => "txt".into(),
                VerbatimStringFormat::Markdown => "mkd".into(),
            },
            Bytes::from(data.clone()),
        ),
        F3::Array { data, .. } => Value::Array(data.iter().map(from3).collect()),
        F3::Push { data, .. } => Value::Push(data.iter().map(from3).collect()),
        F3::Set { data, .. } => Value::Set(data.iter().map(from3).collect()),
        F3::Map { data, .. } => {
            Value::Map(data.iter().map(|(k, v)| (from3(k), from3(v))).collect())
        }
        other => panic!("no such frame in these tests: {other:?}"),
    }
}

fn from2(f: &F2) -> Value {
    match f {
        F2::SimpleString(s) => Value::Simple(String::from_utf8_lossy(s).into()),
        F2::Error(e) => Value::Error(e.clone()),
        F2::Integer(i) => Value::Integer(*i),
        F2::BulkString(b) => Value::Bulk(Bytes::from(b.clone())),
        F2::Array(a) => Value::Array(a.iter().map(from2).collect()),
        F2::Null => Value::Null,
    }
}

fn blob(s: &str) -> F3 {
    F3::BlobString {
        data: s.as_bytes().to_vec(),
        attributes: None,
    }
}

/// One frame of every RESP3 type, some nested.
fn every_type() -> Vec<F3> {
    let a = None;
    vec![
        blob("hello"),
        blob(""),
        F3::BlobString {
            data: b"bin\r\n\x00\xff".to_vec(),
            attributes: a.clone(),
        },
        F3::BlobError {
            data: b"SYNTAX invalid".to_vec(),
            attributes: a.clone(),
        },
        F3::SimpleString {
            data: b"OK".to_vec(),
            attributes: a.clone(),
        },
        F3::SimpleError {
            data: "ERR bad".into(),
            attributes: a.clone(),
        },
        F3::Boolean {
            data: true,
            attributes: a.clone(),
        },
        F3::Boolean {
            data: false,
            attributes: a.clone(),
        },
        F3::Null,
        F3::Number {
            data: -1234567890123,
            attributes: a.clone(),
        },
        F3::Number {
            data: i64::MIN,
            attributes: a.clone(),
        },
        F3::Double {
            data: 3.25,
            attributes: a.clone(),
        },
        F3::Double {
            data: f64::INFINITY,
            attributes: a.clone(),
        },
        F3::BigNumber {
            data: b"3492890328409238509324850943850943825024385".to_vec(),
            attributes: a.clone(),
        },
        F3::VerbatimString {
            data: b"Some string".to_vec(),
            format: VerbatimStringFormat::Text,
            attributes: a.clone(),
        },
        F3::Array {
            data: vec![
                blob("a"),
                F3::Number {
                    data: 1,
                    attributes: None,
                },
                F3::Array {
                    data: vec![blob("nested"), F3::Null],
                    attributes: None,
                },
            ],
            attributes: a.clone(),
        },
        F3::Array {
            data: vec![],
            attributes: a.clone(),
        },
        F3::Map {
            data: [(blob("k1"), blob("v1")), (blob("k2"), F3::Null)]
                .into_iter()
                .collect(),
            attributes: a.clone(),
        },
        F3::Set {
            data: [blob("x"), blob("y")].into_iter().collect(),
            attributes: a.clone(),
        },
        F3::Push {
            data: vec![blob("message"), blob("chan"), blob("payload")],
            attributes: a,
        },
    ]
}

fn parse_all(bytes: &[u8]) -> Value {
    let (v, used) = parse(bytes, &limits()).unwrap().expect("complete");
    assert_eq!(used, bytes.len());
    v
}

/// Every strict prefix is incomplete (never an error, never a value).
fn every_prefix_incomplete(bytes: &[u8]) {
    for i in 0..bytes.len() {
        assert_eq!(
            parse(&bytes[..i], &limits()).unwrap(),
            None,
            "prefix of {i} bytes of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn every_resp3_type_encoded_by_the_oracle_parses_and_writes_back() {
    for f in every_type() {
        let bytes = enc3(&f);
        let ours = parse_all(&bytes);
        assert_eq!(ours, from3(&f), "{}", String::from_utf8_lossy(&bytes));
        every_prefix_incomplete(&bytes);
        // Written back by us, decoded by the oracle.
        let mut out = BytesMut::new();
        write(&mut out, &ours, Protocol::Resp3);
        let (back, used) = redis_protocol::resp3::decode::complete::decode(&out)
            .unwrap()
            .unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back, f);
    }
}

#[test]
fn resp2_frames_round_trip_through_the_oracle() {
    let frames = vec![
        F2::SimpleString(b"PONG".to_vec()),
        F2::Error("ERR x".into()),
        F2::Integer(42),
        F2::BulkString(b"v\r\nw".to_vec()),
        F2::Null,
        F2::Array(vec![
            F2::BulkString(b"SET".to_vec()),
            F2::BulkString(b"k".to_vec()),
            F2::Array(vec![F2::Integer(-7)]),
        ]),
    ];
    for f in frames {
        let bytes = enc2(&f);
        let ours = parse_all(&bytes);
        assert_eq!(ours, from2(&f));
        every_prefix_incomplete(&bytes);
        let mut out = BytesMut::new();
        write(&mut out, &ours, Protocol::Resp2);
        let (back, _) = redis_protocol::resp2::decode::decode(&out)
            .unwrap()
            .unwrap();
        assert_eq!(back, f);
    }
}

#[test]
fn resp3_only_types_are_downgraded_for_resp2_clients() {
    let cases = [
        (Value::Null, &b"$-1\r\n"[..]),
        (Value::NullArray, b"*-1\r\n"),
        (Value::Boolean(true), b":1\r\n"),
        (Value::Double(1.5), b"$3\r\n1.5\r\n"),
        (
            Value::Map(vec![(Value::bulk("a"), Value::Integer(1))]),
            b"*2\r\n$1\r\na\r\n:1\r\n",
        ),
        (Value::Set(vec![Value::Integer(1)]), b"*1\r\n:1\r\n"),
        (
            Value::Verbatim("txt".into(), Bytes::from("hi")),
            b"$2\r\nhi\r\n",
        ),
    ];
    for (v, wire) in cases {
        let mut out = BytesMut::new();
        write(&mut out, &v, Protocol::Resp2);
        assert_eq!(&out[..], wire, "{v:?}");
        assert!(redis_protocol::resp2::decode::decode(&out)
            .unwrap()
            .is_some());
    }
}

#[test]
fn attributes_and_nan_parse() {
    let bytes = b"|1\r\n+ttl\r\n:3\r\n,nan\r\n";
    let (attr, used) = parse(bytes, &limits()).unwrap().unwrap();
    assert_eq!(
        attr,
        Value::Attribute(vec![(Value::Simple("ttl".into()), Value::Integer(3))])
    );
    let (nan, _) = parse(&bytes[used..], &limits()).unwrap().unwrap();
    assert!(matches!(nan, Value::Double(d) if d.is_nan()));
    every_prefix_incomplete(&bytes[..used]);
    every_prefix_incomplete(&bytes[used..]);
}

#[test]
fn commands_split_at_every_byte_boundary_parse_the_same() {
    let cmd = F2::Array(vec![
        F2::BulkString(b"SET".to_vec()),
        F2::BulkString(b"key".to_vec()),
        F2::BulkString(b"a value\r\nwith CRLF".to_vec()),
    ]);
    let mut stream = enc2(&cmd);
    stream.extend_from_slice(b"GET key\r\n");
    stream.extend_from_slice(b"PING\n");
    let want: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"key", b"a value\r\nwith CRLF"],
        vec![b"GET", b"key"],
        vec![b"PING"],
    ];
    // Fed in two pieces split at every byte, as a reader would get them.
    for split in 0..=stream.len() {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in [&stream[..split], &stream[split..]] {
            buf.extend_from_slice(piece);
            while let Some((args, used)) = parse_command(&buf, &limits()).unwrap() {
                let _ = buf.split_to(used);
                got.push(args);
            }
        }
        assert!(buf.is_empty(), "split at {split}");
        let got: Vec<Vec<&[u8]>> = got
            .iter()
            .map(|a| a.iter().map(|b| &b[..]).collect())
            .collect();
        assert_eq!(got, want, "split at {split}");
    }
}

#[test]
fn inline_commands_split_like_redis() {
    let cases: [(&[u8], Vec<&[u8]>); 5] = [
        (b"set k v\r\n", vec![b"set", b"k", b"v"]),
        (b"  set   k  v  \n", vec![b"set", b"k", b"v"]),
        (
            b"set \"a b\\n\\x41\" 'it\\'s'\r\n",
            vec![b"set", b"a b\nA", b"it's"],
        ),
        (b"echo \"\"\r\n", vec![b"echo", b""]),
        (b"\r\n", vec![]),
    ];
    for (line, want) in cases {
        let (args, used) = parse_command(line, &limits()).unwrap().unwrap();
        assert_eq!(used, line.len());
        let got: Vec<&[u8]> = args.iter().map(|b| &b[..]).collect();
        assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
    }
    for bad in [&b"set \"open\r\n"[..], b"set 'x'y\r\n", b"set \"a\"b\r\n"] {
        assert!(matches!(
            parse_command(bad, &limits()),
            Err(RespError::Quotes)
        ));
    }
}

#[test]
fn limits_fail_at_once_with_clear_errors() {
    let small = RespLimits {
        max_bulk: 8,
        max_array: 4,
        max_inline: 16,
        max_depth: 2,
        ..RespLimits::default()
    };
    let e = parse_command(b"*1\r\n$9\r\n", &small).unwrap_err();
    assert!(
        matches!(e, RespError::BulkTooLong { len: 9, max: 8 }),
        "{e}"
    );
    assert!(e.to_string().contains("invalid bulk length"));
    let e = parse_command(b"*5\r\n", &small).unwrap_err();
    assert!(matches!(e, RespError::ArrayTooLong { len: 5, .. }), "{e}");
    assert!(e.to_string().contains("invalid multibulk length"));
    let e = parse_command(b"GET aaaaaaaaaaaaaaaaaaaaaaaaaa", &small).unwrap_err();
    assert!(matches!(e, RespError::InlineTooLong(16)), "{e}");
    let e = parse(b"+aaaaaaaaaaaaaaaaaaaaaaa", &small).unwrap_err();
    assert!(matches!(e, RespError::InlineTooLong(16)), "{e}");
    let e = parse(b"*1\r\n*1\r\n*1\r\n:1\r\n", &small).unwrap_err();
    assert!(matches!(e, RespError::TooDeep(2)), "{e}");
    for bad in [
        &b"?x\r\n"[..],
        b"$-2\r\n",
        b"*x\r\n",
        b"$3\r\nabcXY",
        b":12a\r\n",
        b"#x\r\n",
        b",1.2.3x\r\n",
    ] {
        assert!(
            parse(bad, &limits()).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Commands are arrays of bulk strings.
    assert!(matches!(
        parse_command(b"*1\r\n:1\r\n", &limits()),
        Err(RespError::NotACommand)
    ));
}

/// Whether every set member and map key is one the oracle can hash (a scalar that is not
/// a double).
fn oracle_hashes(v: &Value) -> bool {
    let scalar = |v: &Value| {
        !matches!(
            v,
            Value::Double(_)
                | Value::Array(_)
                | Value::Set(_)
                | Value::Map(_)
                | Value::Push(_)
                | Value::Attribute(_)
        )
    };
    match v {
        Value::Array(items) | Value::Push(items) => items.iter().all(oracle_hashes),
        Value::Set(items) => items.iter().all(|i| scalar(i) && oracle_hashes(i)),
        Value::Map(pairs) | Value::Attribute(pairs) => {
            pairs.iter().all(|(k, v)| scalar(k) && oracle_hashes(v))
        }
        _ => true,
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::Simple),
        "ERR [a-z ]{0,12}".prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Value::Bulk(b.into())),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        (-1e9f64..1e9).prop_map(Value::Double),
        "-?[1-9][0-9]{0,40}".prop_map(Value::BigNumber),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::BlobError(b.into())),
        ("txt|mkd", proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(f, b)| Value::Verbatim(f, b.into())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_bytes_make_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes, &limits());
        let _ = parse_command(&bytes, &limits());
    }

    #[test]
    fn typed_looking_bytes_do_not_panic_either(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"%".to_vec()),
                Just(b"\r\n".to_vec()), Just(b"-1".to_vec()), Just(b"3".to_vec()),
                Just(b"abc".to_vec()), Just(b"\"".to_vec()), Just(b"'".to_vec()),
                Just(b"\\x4".to_vec()), Just(b" ".to_vec()),
            ],
            0..40,
        )
    ) {
        let bytes: Vec<u8> = parts.concat();
        let _ = parse(&bytes, &limits());
        let _ = parse_command(&bytes, &limits());
    }

    #[test]
    fn what_we_write_we_parse_back_and_the_oracle_agrees(v in value()) {
        let mut out = BytesMut::new();
        write(&mut out, &v, Protocol::Resp3);
        let (back, used) = parse(&out, &limits()).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(&back, &v);
        // The oracle refuses set members and map keys it cannot hash (doubles,
        // aggregates): RESP allows them, so only that refusal is accepted.
        let decoded = redis_protocol::resp3::decode::complete::decode(&out);
        prop_assert!(
            !oracle_hashes(&v) || matches!(decoded, Ok(Some((_, n))) if n == out.len()),
            "{:?}",
            decoded
        );
        let mut two = BytesMut::new();
        write(&mut two, &v, Protocol::Resp2);
        let decoded = redis_protocol::resp2::decode::decode(&two);
        prop_assert!(matches!(decoded, Ok(Some((_, n))) if n == two.len()), "{:?}", decoded);
    }
}
