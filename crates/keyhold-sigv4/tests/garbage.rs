//! Fuzz-ish: random and mangled inputs never panic, and never verify.
//!
//! A fixed-seed xorshift generator keeps the runs reproducible without a
//! fuzzing dependency. Inputs are assembled from SigV4's own vocabulary
//! plus arbitrary characters, so they reach deep into the parser instead
//! of failing on the first byte.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use keyhold_sigv4::{
    canonical_request, inspect, parse_authorization, payload_hash, sign, verify, RequestParts,
    SigV4Error,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "AWS4-HMAC-SHA256",
    "AWS4-",
    "AWS4-HMAC-SHA256 ",
    "Credential",
    "SignedHeaders",
    "Signature",
    "=",
    "==",
    ",",
    ", ",
    " ",
    "\t",
    "/",
    "//",
    ";",
    "aws4_request",
    "AKIDEXAMPLE",
    "20150830",
    "20150830T123600Z",
    "us-east-1",
    "kms",
    "host",
    "x-amz-date",
    "%",
    "%2",
    "%zz",
    "%E1%88%B4",
    ".",
    "..",
    "&",
    "?",
    "+",
    "\u{1234}",
    "é",
    "\u{0}",
    "\u{10FFFF}",
    "\r\n",
    "",
];

fn garbage(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(24) {
        if rng.below(4) == 0 {
            // Any char, including multi-byte ones at awkward offsets.
            let c = char::from_u32((rng.next() % 0x11_0000) as u32).unwrap_or('\u{fffd}');
            s.push(c);
        } else {
            s.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
    }
    s
}

#[test]
fn parse_authorization_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..50_000 {
        let header = garbage(&mut rng);
        let _ = parse_authorization(&header);
    }
}

#[test]
fn every_prefix_and_mutation_of_a_valid_header_is_safe() {
    let valid = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    parse_authorization(valid).expect("the base header is valid");
    for (i, _) in valid.char_indices() {
        let _ = parse_authorization(&valid[..i]);
        let _ = parse_authorization(&valid[i..]);
    }
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut s = valid.to_string();
        for _ in 0..=rng.below(3) {
            let at = rng.below(s.len() + 1);
            if s.is_char_boundary(at) {
                s.insert_str(at, TOKENS[rng.below(TOKENS.len())]);
            }
        }
        let _ = parse_authorization(&s);
    }
}

const NOW: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);

#[test]
fn random_requests_never_panic_and_never_verify() {
    let mut rng = Rng(7);
    let hash = payload_hash(b"");
    let mut verified = 0;
    let mut reached_verify = 0;
    for round in 0..10_000 {
        let method = garbage(&mut rng);
        let path = garbage(&mut rng);
        let query = garbage(&mut rng);
        let auth = if round % 2 == 0 {
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;{}, Signature={}",
                garbage(&mut rng),
                garbage(&mut rng)
            )
        } else {
            garbage(&mut rng)
        };
        let date = if round % 3 == 0 {
            "20150830T123600Z".to_string()
        } else {
            garbage(&mut rng)
        };
        let (n1, v1) = (garbage(&mut rng), garbage(&mut rng));
        let headers = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", date.as_str()),
            ("authorization", auth.as_str()),
            (n1.as_str(), v1.as_str()),
        ];
        let parts = RequestParts {
            method: &method,
            raw_path: &path,
            raw_query: &query,
            headers: &headers,
            payload_sha256_hex: &hash,
        };
        let names: Vec<String> = (0..rng.below(4)).map(|_| garbage(&mut rng)).collect();
        let _ = canonical_request(&parts, &names);
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let _ = sign(
            &parts,
            "AKID",
            "secret",
            "us-east-1",
            "kms",
            NOW,
            &name_refs,
        );
        if let Ok(parsed) = inspect(&parts) {
            let _ = parsed.check_scope(Some("us-east-1"), "service");
            reached_verify += 1;
            for skew in [Duration::minutes(15), Duration::MAX, Duration::MIN] {
                match verify(&parsed, &parts, "secret", NOW, skew) {
                    Ok(()) => verified += 1,
                    Err(e) => {
                        let _ = (e.to_string(), e.wire_name());
                    }
                }
            }
        }
    }
    assert_eq!(verified, 0, "random junk must never verify");
    assert!(
        reached_verify > 100,
        "only {reached_verify} inputs got past inspect()"
    );
}

#[test]
fn inspect_reports_rather_than_panics_on_junk_dates() {
    let mut rng = Rng(99);
    let hash = payload_hash(b"");
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;x-amz-date, Signature=00";
    for _ in 0..10_000 {
        let date = garbage(&mut rng);
        let header = if rng.below(2) == 0 {
            "X-Amz-Date"
        } else {
            "Date"
        };
        let headers = [
            ("host", "example.amazonaws.com"),
            (header, date.as_str()),
            ("authorization", auth),
        ];
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            payload_sha256_hex: &hash,
        };
        match inspect(&parts) {
            Ok(parsed) => assert_eq!(parsed.amz_date.len(), 16),
            Err(SigV4Error::IncompleteSignature(_) | SigV4Error::InvalidSignature(_)) => {}
            Err(other) => panic!("unexpected {other:?} for date {date:?}"),
        }
    }
}
