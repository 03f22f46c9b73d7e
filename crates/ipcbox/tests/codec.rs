//! The postcard payload encoding of WIRE.md against a peer written from WIRE.md alone: every
//! type of the serde data model, with its edge values, round-trips between Rust and a stdlib
//! Python encoder/decoder over a real connection, in both directions. And the decoding errors
//! WIRE.md promises.

mod util;

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipcbox::codec::{Block, Codec, Postcard};
use ipcbox::frame::ByteConnection;
use serde::de::{self, DeserializeOwned, Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const LIMIT: Duration = Duration::from_secs(60);
const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/postcard_peer.py");
const VAR: &str = "IPCBOX_POSTCARD_CONN";

// --- the types of the serde data model -------------------------------------------------------

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct UnitStruct;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Meters(u32);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(u8, String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(u32),
    Rect(u16, u16),
    Named { id: u8, label: String },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u32,
    name: String,
    score: f32,
    tags: Vec<String>,
    parent: Option<u64>,
    extra: BTreeMap<String, i16>,
    shape: Shape,
    pair: (i8, char),
}

/// A struct with `codec::Block` fields, one of them through `#[serde(with)]` on a `Vec`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct WithBlocks {
    id: u32,
    #[serde(with = "ipcbox::codec::block")]
    samples: Vec<f32>,
    pixels: Block<u16>,
}

/// A byte array in serde's sense (`serialize_bytes`), as `serde_bytes` makes one.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte array")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// The unit variant with index `.0` of an enum of 2^32 unit variants: indices that need a
/// varint of several bytes.
#[derive(Debug, PartialEq)]
struct Wide(u32);

impl Serialize for Wide {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit_variant("Wide", self.0, "variant")
    }
}

impl<'de> Deserialize<'de> for Wide {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Wide, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Wide;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a unit variant")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Wide, A::Error> {
                let (index, variant) = data.variant::<u32>()?;
                variant.unit_variant()?;
                Ok(Wide(index))
            }
        }
        d.deserialize_enum("Wide", &["variant"], V)
    }
}

// --- the cases, in the peer's order ----------------------------------------------------------

trait Case {
    fn name(&self) -> &'static str;
    fn len(&self) -> usize;
    /// The encoding of value `i`.
    fn encode(&self, i: usize) -> Vec<u8>;
    /// Decodes `payload` as value `i`'s type and checks it is value `i`, encoded the same way.
    fn check(&self, i: usize, payload: &[u8]) -> Result<(), String>;
}

struct Values<T>(&'static str, Vec<T>);

impl<T: Serialize + DeserializeOwned + Debug> Case for Values<T> {
    fn name(&self) -> &'static str {
        self.0
    }

    fn len(&self) -> usize {
        self.1.len()
    }

    fn encode(&self, i: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Postcard.encode(&self.1[i], &mut out).unwrap();
        out
    }

    fn check(&self, i: usize, payload: &[u8]) -> Result<(), String> {
        let want = &self.1[i];
        let label = format!("{}#{i}", self.0);
        let got: T = Postcard
            .decode(payload)
            .map_err(|e| format!("{label}: {e} in {}", hex(payload)))?;
        let mut again = Vec::new();
        Postcard.encode(&got, &mut again).unwrap();
        // Debug tells the values apart; the encodings also tell float bits (NaN, -0.0).
        if format!("{got:?}") != format!("{want:?}") || again != self.encode(i) {
            return Err(format!("{label}: decoded {got:?}, expected {want:?}"));
        }
        if payload != self.encode(i) {
            return Err(format!(
                "{label}: {want:?} encoded as {}, not {}",
                hex(payload),
                hex(&self.encode(i))
            ));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn case<T: Serialize + DeserializeOwned + Debug + 'static>(
    name: &'static str,
    values: Vec<T>,
) -> Box<dyn Case> {
    Box::new(Values(name, values))
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape::Empty,
        Shape::Circle(300),
        Shape::Rect(1, u16::MAX),
        Shape::Named {
            id: 255,
            label: "é".into(),
        },
    ]
}

fn map<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    pairs.into_iter().collect()
}

fn cases() -> Vec<Box<dyn Case>> {
    vec![
        case("bool", vec![false, true]),
        case("u8", vec![0u8, 1, 127, 128, 255]),
        case("i8", vec![0i8, 1, -1, 127, -128]),
        case(
            "u16",
            vec![0u16, 127, 128, 255, 256, 16383, 16384, u16::MAX],
        ),
        case(
            "i16",
            vec![0i16, -1, 1, 63, -64, 64, -65, i16::MAX, i16::MIN],
        ),
        case(
            "u32",
            vec![0u32, 127, 128, 255, 300, 2_097_151, 2_097_152, u32::MAX],
        ),
        case("i32", vec![0i32, -1, 1, -65, i32::MAX, i32::MIN]),
        case("u64", vec![0u64, 127, 128, 1 << 63, u64::MAX]),
        case("i64", vec![0i64, -1, 1, i64::MAX, i64::MIN]),
        case("u128", vec![0u128, 127, 128, 1 << 64, u128::MAX]),
        case("i128", vec![0i128, -1, 1, i128::MAX, i128::MIN]),
        case("usize", vec![0usize, 300, usize::MAX]),
        case("isize", vec![0isize, -2, isize::MAX, isize::MIN]),
        case(
            "f32",
            vec![
                0.0f32,
                -0.0,
                1.5,
                -2.25,
                f32::MIN_POSITIVE,
                f32::from_bits(1),
                f32::MAX,
                f32::MIN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
            ],
        ),
        case(
            "f64",
            vec![
                0.0f64,
                -0.0,
                1.5,
                0.1,
                f64::MIN_POSITIVE,
                f64::from_bits(1),
                f64::MAX,
                f64::MIN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
            ],
        ),
        case("char", vec!['a', '\0', 'é', '€', '🦀', '\u{10FFFF}']),
        case(
            "string",
            vec![
                String::new(),
                "a".into(),
                "héllo".into(),
                "日本語".into(),
                "🦀".into(),
                "x".repeat(200),
            ],
        ),
        case(
            "bytes",
            vec![
                Bytes(vec![]),
                Bytes(vec![0, 255]),
                Bytes((0..=255).collect()),
            ],
        ),
        case("unit", vec![()]),
        case("unit_struct", vec![UnitStruct]),
        case("newtype_struct", vec![Meters(0), Meters(300)]),
        case("option_u8", vec![None, Some(0u8), Some(255)]),
        case("option_option_u8", vec![None, Some(None), Some(Some(7u8))]),
        case(
            "option_string",
            vec![None, Some(String::new()), Some("é".to_owned())],
        ),
        case("seq_u16", vec![vec![], vec![1u16, 2, 300]]),
        case("seq_u8", vec![vec![], vec![0u8, 200, 255]]),
        case("seq_string", vec![vec![], vec![String::new(), "a".into()]]),
        case("seq_seq_u8", vec![vec![], vec![vec![], vec![1u8]]]),
        case("tuple", vec![(1u8, 300u16, "x".to_owned())]),
        case("tuple_struct", vec![Pair(1, "a".into())]),
        case("array_u16_3", vec![[1u16, 2, 300]]),
        case(
            "map_string_u32",
            vec![
                map([]),
                map([("a".to_owned(), 1u32), ("b".to_owned(), 300)]),
            ],
        ),
        case(
            "map_u8_seq_i8",
            vec![map([(0u8, vec![]), (200, vec![-1i8, 1])])],
        ),
        case("struct", vec![Point { x: 1, y: -1 }]),
        case("enum", shapes()),
        case("seq_enum", vec![vec![], shapes()]),
        case(
            "enum_wide_index",
            vec![Wide(0), Wide(127), Wide(128), Wide(300), Wide(u32::MAX)],
        ),
        case(
            "record",
            vec![
                Record {
                    id: 0,
                    name: String::new(),
                    score: 0.0,
                    tags: vec![],
                    parent: None,
                    extra: map([]),
                    shape: Shape::Empty,
                    pair: (0, 'a'),
                },
                Record {
                    id: u32::MAX,
                    name: "naïve".into(),
                    score: -1.5,
                    tags: vec!["x".into(), String::new()],
                    parent: Some(u64::MAX),
                    extra: map([("a".to_owned(), i16::MIN), ("b".to_owned(), i16::MAX)]),
                    shape: Shape::Named {
                        id: 1,
                        label: "🦀".into(),
                    },
                    pair: (-128, '€'),
                },
            ],
        ),
        // Whole messages the codec copies as one block: the same bytes as any sequence.
        case(
            "seq_u8_long",
            vec![(0..70_000).map(|i| (i % 251) as u8).collect::<Vec<u8>>()],
        ),
        case("seq_i8", vec![vec![], vec![-128i8, 0, 127]]),
        case(
            "seq_f32",
            vec![vec![], vec![1.5f32, -0.0, f32::NAN, f32::INFINITY]],
        ),
        case(
            "seq_f64",
            vec![vec![], vec![0.1f64, f64::NEG_INFINITY, f64::NAN]],
        ),
        case("block_u8", vec![Block(vec![]), Block(vec![0u8, 255])]),
        case(
            "block_u16",
            vec![Block(vec![]), Block(vec![1u16, 300, u16::MAX])],
        ),
        case("block_i32", vec![Block(vec![-1i32, i32::MIN, i32::MAX])]),
        case("block_u64", vec![Block(vec![0u64, u64::MAX])]),
        case("block_i128", vec![Block(vec![-1i128, i128::MIN])]),
        case("block_f32", vec![Block(vec![1.5f32, -0.0, f32::NAN])]),
        case("block_f64", vec![Block(vec![0.1f64, f64::NEG_INFINITY])]),
        case(
            "struct_block_field",
            vec![WithBlocks {
                id: 300,
                samples: vec![0.5, -1.0],
                pixels: Block(vec![7, u16::MAX]),
            }],
        ),
    ]
}

// --- the round trips -------------------------------------------------------------------------

#[test]
fn every_serde_type_round_trips_through_a_python_peer_written_from_wire_md() {
    let _w = util::watchdog("postcard round trips with python", LIMIT);
    let (mut conn, theirs) = ByteConnection::pair().unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(PEER).stderr(Stdio::piped());
    theirs.pass_to_child(&mut cmd, VAR).unwrap();
    let mut child = util::ChildGuard::new(cmd.spawn().expect("run python3"));
    drop(cmd);
    let mut stderr = child.get().stderr.take().expect("piped stderr");
    // The peer explains a mismatch on stderr and exits; read it once it has.
    let mut peer_failed = move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        format!("the python peer failed: {err}")
    };
    let cases = cases();

    // Rust encodes, Python decodes, checks, encodes again; Rust decodes that.
    let mut values = 0;
    for case in &cases {
        for i in 0..case.len() {
            let sent = case.encode(i);
            conn.send_bytes(format!("{}#{i}", case.name()).as_bytes())
                .unwrap();
            conn.send_bytes(&sent).unwrap();
            let back = conn
                .recv_bytes()
                .unwrap_or_else(|e| panic!("{e}: {}", peer_failed()));
            case.check(i, &back).unwrap();
            values += 1;
        }
    }
    assert!(values > 100, "{values} values");

    // Python encodes every value itself; Rust decodes and compares.
    conn.send_bytes(b"emit").unwrap();
    for case in &cases {
        for i in 0..case.len() {
            let label = conn
                .recv_bytes()
                .unwrap_or_else(|e| panic!("{e}: {}", peer_failed()));
            assert_eq!(label, format!("{}#{i}", case.name()).as_bytes());
            case.check(i, &conn.recv_bytes().unwrap()).unwrap();
        }
    }
    assert_eq!(conn.recv_bytes().unwrap(), b"end");
    drop(conn);
    let status = child.wait();
    assert!(status.success(), "{status}: {}", peer_failed());
}

// --- what WIRE.md says is an error -----------------------------------------------------------

fn decode<T: Serialize + DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    Postcard.decode(payload).map_err(|e| e.to_string())
}

#[test]
fn malformed_payloads_are_refused_as_wire_md_says() {
    assert!(
        decode::<bool>(&[2]).is_err(),
        "a bool byte other than 0 or 1"
    );
    assert!(decode::<Option<u8>>(&[2, 0]).is_err(), "an option tag of 2");
    assert!(
        decode::<u32>(&[0xff, 0xff, 0xff, 0xff, 0x10]).is_err(),
        "a u32 above 32 bits"
    );
    assert!(
        decode::<u16>(&[0x80, 0x80, 0x80, 0x00]).is_err(),
        "a u16 of 4 bytes"
    );
    assert!(decode::<String>(&[2, 0xc3, 0x28]).is_err(), "invalid UTF-8");
    assert!(
        decode::<char>(&[2, b'a', b'b']).is_err(),
        "a char of two characters"
    );
    assert!(decode::<String>(&[5, b'a']).is_err(), "a string cut short");
    assert!(decode::<u8>(&[1, 2]).is_err(), "a trailing byte");
    assert!(
        decode::<Shape>(&[4]).is_err(),
        "a variant Shape does not have"
    );
    // Padded varints are accepted (WIRE.md: "do not rely on that").
    assert_eq!(decode::<u32>(&[0x80, 0x00]), Ok(0));
    // Bulk data, whole or in blocks: lengths are checked against what is there.
    assert!(
        decode::<Vec<u8>>(&[3, 1, 2]).is_err(),
        "a Vec<u8> cut short"
    );
    assert!(
        decode::<Vec<f32>>(&[1, 0, 0, 0]).is_err(),
        "an f32 cut short"
    );
    assert_eq!(
        decode::<Vec<u8>>(&[1, 7, 8]).unwrap_err(),
        "message could not be decoded: 1 trailing byte after a message of 2 bytes"
    );
    let err = decode::<Block<u32>>(&[3, 1, 2, 3]).unwrap_err();
    assert!(
        err.contains("a block of u32 is 3 bytes long, not a multiple of 4"),
        "{err}"
    );
    assert!(
        decode::<Block<u64>>(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1]).is_err(),
        "a block longer than the payload"
    );
}

// --- bulk data between processes -------------------------------------------------------------

/// A message of every bulk kind, several MiB each: the codec's block paths on both sides.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Bulk {
    Bytes(Vec<u8>),
    Floats(Vec<f64>),
    Fields(WithBlocks),
}

const BULK_LEN: usize = 3 << 20;

fn bulk_bytes() -> Vec<u8> {
    (0..BULK_LEN).map(|i| (i % 251) as u8).collect()
}

fn bulk_floats() -> Vec<f64> {
    (0..BULK_LEN / 8).map(|i| i as f64 / 3.0).collect()
}

fn bulk_fields() -> WithBlocks {
    WithBlocks {
        id: 9,
        samples: (0..BULK_LEN / 8).map(|i| -(i as f32)).collect(),
        pixels: Block((0..BULK_LEN / 4).map(|i| i as u16).collect()),
    }
}

#[test]
fn role_bulk_echo() {
    let Some(queue_name) = util::role_arg("codec-bulk-echo") else {
        return;
    };
    // Whole Vec messages over a connection, echoed; then the same through a named Queue.
    let mut conn = ipcbox::Connection::<Vec<u8>>::from_env(VAR).unwrap();
    conn.set_max_frame_len(16 << 20);
    let bytes = conn.recv().unwrap();
    assert_eq!(bytes, bulk_bytes());
    conn.send(&bytes).unwrap();
    let queue = ipcbox::Queue::<Bulk>::open(&queue_name).unwrap();
    let floats: Vec<f64> = ipcbox::Queue::<Vec<f64>>::open(&format!("{queue_name}-f"))
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(floats, bulk_floats());
    queue.put(&Bulk::Floats(floats)).unwrap();
    queue.put(&Bulk::Bytes(bytes)).unwrap();
    queue.put(&Bulk::Fields(bulk_fields())).unwrap();
}

#[test]
fn bulk_data_crosses_processes_over_a_connection_and_a_queue() {
    let _w = util::watchdog("bulk data between processes", LIMIT);
    let name = util::unique_name("codec-bulk");
    let big = |n: usize| {
        let mut o = ipcbox::queue::Options::new();
        o.capacity(2).byte_capacity(2 * n).max_message_size(n);
        o
    };
    let queue = big(BULK_LEN + 1024).named::<Bulk>(&name).unwrap();
    let floats = big(BULK_LEN + 16)
        .named::<Vec<f64>>(&format!("{name}-f"))
        .unwrap();
    let (ours, theirs) = ipcbox::socket::Stream::pair().unwrap();
    let mut conn = ipcbox::Connection::<Vec<u8>>::new(ours).unwrap();
    conn.set_max_frame_len(16 << 20);
    let mut cmd = util::role_command("role_bulk_echo", "codec-bulk-echo", &name);
    ipcbox::Connection::<Vec<u8>>::new(theirs)
        .unwrap()
        .pass_to_child(&mut cmd, VAR)
        .unwrap();
    let child = util::ChildGuard::spawn(&mut cmd);
    drop(cmd);
    conn.send(&bulk_bytes()).unwrap();
    assert_eq!(conn.recv().unwrap(), bulk_bytes());
    floats.put(&bulk_floats()).unwrap();
    assert_eq!(queue.get().unwrap(), Bulk::Floats(bulk_floats()));
    assert_eq!(queue.get().unwrap(), Bulk::Bytes(bulk_bytes()));
    assert_eq!(queue.get().unwrap(), Bulk::Fields(bulk_fields()));
    child.expect_success("the echoing child");
    drop((queue, floats));
    assert!(!util::shm_exists(&name));
}

/// A receiver of the wrong version of an enum is told which enum and which index.
#[test]
fn an_unknown_variant_over_a_connection_names_the_enum_and_the_index() {
    let (mut a, mut b) = ipcbox::frame::duplex::<Record>().unwrap();
    // id, name, score (4 bytes), tags, parent, extra: all zero or empty; then shape 200.
    a.send_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc8, 0x01])
        .unwrap();
    let err = b.recv().unwrap_err().to_string();
    assert_eq!(
        err,
        "message could not be decoded: Record > Shape: unknown variant index 200 of enum \
         Shape, which has 4 variants"
    );
    let good = Record {
        id: 1,
        name: "n".into(),
        score: 0.5,
        tags: vec![],
        parent: None,
        extra: map([]),
        shape: Shape::Circle(2),
        pair: (3, 'c'),
    };
    a.send(&good).unwrap();
    assert_eq!(b.recv().unwrap(), good);
}
