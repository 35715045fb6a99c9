//! Names, key formats, RSA OAEP, ECDH, HMAC and broken stored keys.

use spki::der::Tagged;
use spki::ObjectIdentifier;

use super::tests::{hex_bytes, key, other_key, ALL_SPECS};
use super::*;

const RSA_SPECS: [AsymmetricSpec; 3] = [
    AsymmetricSpec::Rsa2048,
    AsymmetricSpec::Rsa3072,
    AsymmetricSpec::Rsa4096,
];

const NIST_SPECS: [AsymmetricSpec; 3] = [
    AsymmetricSpec::EccNistP256,
    AsymmetricSpec::EccNistP384,
    AsymmetricSpec::EccNistP521,
];

fn oid(text: &str) -> ObjectIdentifier {
    ObjectIdentifier::new(text).expect("OID")
}

#[test]
fn names_round_trip_and_match_kms() {
    let names: Vec<&str> = ALL_SPECS.iter().map(AsymmetricSpec::aws_name).collect();
    assert_eq!(
        names,
        [
            "RSA_2048",
            "RSA_3072",
            "RSA_4096",
            "ECC_NIST_P256",
            "ECC_NIST_P384",
            "ECC_NIST_P521",
            "ECC_SECG_P256K1",
            "ECC_NIST_EDWARDS25519",
            "ML_DSA_44",
            "ML_DSA_65",
            "ML_DSA_87"
        ]
    );
    for spec in ALL_SPECS {
        assert_eq!(AsymmetricSpec::from_aws_name(spec.aws_name()), Some(spec));
        for &alg in spec.signing_algorithms() {
            assert_eq!(SigningAlgorithm::from_aws_name(alg.aws_name()), Some(alg));
        }
    }
    for other in [
        "SYMMETRIC_DEFAULT",
        "HMAC_256",
        "rsa_2048",
        "",
        "ECC_NIST_P256 ",
    ] {
        assert_eq!(AsymmetricSpec::from_aws_name(other), None, "{other}");
    }
    // SM2 exists only with the `sm2` feature (tested in tests_sm2).
    assert_eq!(
        AsymmetricSpec::from_aws_name("SM2").is_some(),
        cfg!(feature = "sm2")
    );
    assert_eq!(
        SigningAlgorithm::from_aws_name("SM2DSA").is_some(),
        cfg!(feature = "sm2")
    );
    assert_eq!(
        SigningAlgorithm::from_aws_name("RSASSA_PKCS1_V1_5_SHA_512"),
        Some(SigningAlgorithm::RsassaPkcs1V15Sha512)
    );
    assert_eq!(
        SigningAlgorithm::from_aws_name("ED25519_PH_SHA_512"),
        Some(SigningAlgorithm::Ed25519PhSha512)
    );
    for (name, alg, len) in [
        ("HMAC_SHA_224", MacAlgorithm::HmacSha224, 28),
        ("HMAC_SHA_256", MacAlgorithm::HmacSha256, 32),
        ("HMAC_SHA_384", MacAlgorithm::HmacSha384, 48),
        ("HMAC_SHA_512", MacAlgorithm::HmacSha512, 64),
    ] {
        assert_eq!(MacAlgorithm::from_aws_name(name), Some(alg));
        assert_eq!(alg.key_len(), len);
    }
    assert_eq!(MacAlgorithm::from_aws_name("HMAC_256"), None);
}

#[test]
fn spec_properties_match_kms() {
    use SigningAlgorithm as A;
    for spec in RSA_SPECS {
        assert!(spec.is_rsa() && !spec.has_key_agreement());
        assert_eq!(
            spec.signing_algorithms(),
            [
                A::RsassaPssSha256,
                A::RsassaPssSha384,
                A::RsassaPssSha512,
                A::RsassaPkcs1V15Sha256,
                A::RsassaPkcs1V15Sha384,
                A::RsassaPkcs1V15Sha512
            ]
        );
    }
    for spec in NIST_SPECS {
        assert!(!spec.is_rsa() && spec.has_key_agreement());
    }
    let ecdsa = |spec: AsymmetricSpec| spec.signing_algorithms().to_vec();
    assert_eq!(ecdsa(AsymmetricSpec::EccNistP256), [A::EcdsaSha256]);
    assert_eq!(ecdsa(AsymmetricSpec::EccNistP384), [A::EcdsaSha384]);
    assert_eq!(ecdsa(AsymmetricSpec::EccNistP521), [A::EcdsaSha512]);
    assert_eq!(ecdsa(AsymmetricSpec::EccSecgP256k1), [A::EcdsaSha256]);
    assert_eq!(
        ecdsa(AsymmetricSpec::EccNistEdwards25519),
        [A::Ed25519Sha512, A::Ed25519PhSha512]
    );
    for spec in [
        AsymmetricSpec::EccSecgP256k1,
        AsymmetricSpec::EccNistEdwards25519,
        AsymmetricSpec::MlDsa44,
        AsymmetricSpec::MlDsa65,
        AsymmetricSpec::MlDsa87,
    ] {
        assert!(!spec.is_rsa() && !spec.has_key_agreement(), "{spec:?}");
    }
    assert_eq!(ecdsa(AsymmetricSpec::MlDsa87), [A::MlDsaShake256]);
}

#[test]
fn public_keys_are_spki_with_the_right_oid() {
    let ec_public_key = oid("1.2.840.10045.2.1");
    for spec in ALL_SPECS {
        let der = public_key_der(spec, key(spec)).expect("public key");
        let spki = spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).expect("SPKI");
        let bits = spki.subject_public_key.raw_bytes();
        let params = spki.algorithm.parameters;
        let (algorithm_oid, length) = match spec {
            AsymmetricSpec::Rsa2048 | AsymmetricSpec::Rsa3072 | AsymmetricSpec::Rsa4096 => {
                let null = params.expect("NULL parameters");
                assert_eq!(null.tag(), spki::der::Tag::Null);
                (oid("1.2.840.113549.1.1.1"), None)
            }
            AsymmetricSpec::EccNistEdwards25519 => (oid("1.3.101.112"), Some(32)),
            AsymmetricSpec::MlDsa44 => (oid("2.16.840.1.101.3.4.3.17"), Some(1312)),
            AsymmetricSpec::MlDsa65 => (oid("2.16.840.1.101.3.4.3.18"), Some(1952)),
            AsymmetricSpec::MlDsa87 => (oid("2.16.840.1.101.3.4.3.19"), Some(2592)),
            ecc_spec => {
                let (curve, len) = match ecc_spec {
                    AsymmetricSpec::EccNistP256 => ("1.2.840.10045.3.1.7", 65),
                    AsymmetricSpec::EccNistP384 => ("1.3.132.0.34", 97),
                    AsymmetricSpec::EccNistP521 => ("1.3.132.0.35", 133),
                    _ => ("1.3.132.0.10", 65),
                };
                let named = params.expect("named curve").decode_as::<ObjectIdentifier>();
                assert_eq!(named, Ok(oid(curve)), "{spec:?}");
                assert_eq!(bits[0], 0x04, "uncompressed point");
                (ec_public_key, Some(len))
            }
        };
        assert_eq!(spki.algorithm.oid, algorithm_oid, "{spec:?}");
        if length.is_some() {
            assert_eq!(Some(bits.len()), length, "{spec:?}");
        }
        if matches!(spec, AsymmetricSpec::EccNistEdwards25519) || spec.aws_name().starts_with("ML")
        {
            assert!(params.is_none(), "{spec:?} has no parameters");
        }
        assert_ne!(der, public_key_der(spec, other_key(spec)).unwrap());
    }
}

#[test]
fn private_keys_are_pkcs8_except_ml_dsa_seeds() {
    for spec in ALL_SPECS {
        let sk = key(spec);
        if spec.aws_name().starts_with("ML_DSA") {
            assert_eq!(sk.len(), 32, "ML-DSA stores the seed");
            continue;
        }
        let info = pkcs8::PrivateKeyInfo::try_from(sk).expect("PKCS#8");
        let public =
            spki::SubjectPublicKeyInfoRef::try_from(public_key_der(spec, sk).unwrap().as_slice())
                .map(|s| s.algorithm.oid)
                .unwrap();
        assert_eq!(info.algorithm.oid, public, "{spec:?}");
        if spec == AsymmetricSpec::EccNistEdwards25519 {
            assert_eq!(sk.len(), 48, "RFC 8410 v1 form without the public key");
            assert!(info.public_key.is_none());
        }
    }
}

#[test]
fn broken_stored_keys_are_invalid_private_keys() {
    let broken: [&[u8]; 3] = [b"", b"\x30\x03\x02\x01\x00", &[0xa5; 40]];
    for spec in ALL_SPECS {
        let alg = spec.signing_algorithms()[0];
        for sk in broken {
            let invalid =
                |r: Result<(), AsymError>| matches!(r, Err(AsymError::InvalidPrivateKey(_)));
            assert!(invalid(public_key_der(spec, sk).map(drop)), "{spec:?}");
            assert!(invalid(
                sign(spec, sk, alg, MessageType::Raw, b"m").map(drop)
            ));
            assert!(invalid(
                verify(spec, sk, alg, MessageType::Raw, b"m", &[1]).map(drop)
            ));
            if spec.is_rsa() {
                assert!(invalid(
                    rsa_encrypt(spec, sk, OaepAlgorithm::Sha256, b"m").map(drop)
                ));
                assert!(invalid(
                    rsa_decrypt(spec, sk, OaepAlgorithm::Sha256, &[1]).map(drop)
                ));
            }
            if spec.has_key_agreement() {
                let peer = public_key_der(spec, key(spec)).unwrap();
                assert!(invalid(ecdh(spec, sk, &peer).map(drop)));
            }
        }
    }
    // A well-formed key of another spec is just as broken.
    let mismatched = [
        (AsymmetricSpec::Rsa3072, AsymmetricSpec::Rsa2048),
        (AsymmetricSpec::EccNistP256, AsymmetricSpec::EccNistP384),
        (AsymmetricSpec::EccSecgP256k1, AsymmetricSpec::EccNistP256),
        (
            AsymmetricSpec::EccNistEdwards25519,
            AsymmetricSpec::EccNistP256,
        ),
        (
            AsymmetricSpec::EccNistP521,
            AsymmetricSpec::EccNistEdwards25519,
        ),
    ];
    for (spec, key_of) in mismatched {
        assert!(
            matches!(
                public_key_der(spec, key(key_of)),
                Err(AsymError::InvalidPrivateKey(_))
            ),
            "{spec:?} with a {key_of:?} key"
        );
    }
}

#[test]
fn oaep_max_plaintext_is_k_minus_two_hashes_minus_two() {
    let expected = [(214, 190), (342, 318), (470, 446)];
    for (spec, (sha1, sha256)) in RSA_SPECS.into_iter().zip(expected) {
        assert_eq!(rsa_max_plaintext(spec, OaepAlgorithm::Sha1), sha1);
        assert_eq!(rsa_max_plaintext(spec, OaepAlgorithm::Sha256), sha256);
    }
    assert_eq!(
        rsa_max_plaintext(AsymmetricSpec::EccNistP256, OaepAlgorithm::Sha256),
        0
    );
}

#[test]
fn oaep_round_trips_up_to_the_maximum_for_every_size_and_hash() {
    for spec in RSA_SPECS {
        let sk = key(spec);
        for alg in [OaepAlgorithm::Sha1, OaepAlgorithm::Sha256] {
            let max = rsa_max_plaintext(spec, alg);
            for len in [0, 1, 32, max] {
                let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ciphertext = rsa_encrypt(spec, sk, alg, &plaintext).unwrap();
                assert_eq!(ciphertext.len(), rsa_bytes(spec));
                let decrypted = rsa_decrypt(spec, sk, alg, &ciphertext).unwrap();
                assert_eq!(
                    decrypted.expose(),
                    plaintext.as_slice(),
                    "{spec:?} {alg:?} {len}"
                );
            }
            let too_long = vec![0u8; max + 1];
            assert_eq!(
                rsa_encrypt(spec, sk, alg, &too_long),
                Err(AsymError::PlaintextTooLong {
                    max,
                    actual: max + 1
                })
            );
        }
    }
}

fn rsa_bytes(spec: AsymmetricSpec) -> usize {
    match spec {
        AsymmetricSpec::Rsa2048 => 256,
        AsymmetricSpec::Rsa3072 => 384,
        _ => 512,
    }
}

#[test]
fn oaep_failures_are_decrypt_failed() {
    let spec = AsymmetricSpec::Rsa2048;
    let sk = key(spec);
    let ciphertext = rsa_encrypt(spec, sk, OaepAlgorithm::Sha256, b"secret").unwrap();
    let failed = Err(AsymError::DecryptFailed);
    assert_eq!(
        rsa_decrypt(spec, sk, OaepAlgorithm::Sha1, &ciphertext),
        failed
    );
    assert_eq!(
        rsa_decrypt(spec, other_key(spec), OaepAlgorithm::Sha256, &ciphertext),
        failed
    );
    let mut tampered = ciphertext.clone();
    tampered[100] ^= 0x80;
    assert_eq!(
        rsa_decrypt(spec, sk, OaepAlgorithm::Sha256, &tampered),
        failed
    );
    assert_eq!(
        rsa_decrypt(spec, sk, OaepAlgorithm::Sha256, &ciphertext[1..]),
        failed
    );
    assert_eq!(rsa_decrypt(spec, sk, OaepAlgorithm::Sha256, &[]), failed);
    assert_eq!(
        rsa_decrypt(spec, sk, OaepAlgorithm::Sha256, &[0xff; 256]),
        failed
    );
    for other in [AsymmetricSpec::EccNistP256, AsymmetricSpec::MlDsa44] {
        assert!(matches!(
            rsa_encrypt(other, key(other), OaepAlgorithm::Sha256, b"x"),
            Err(AsymError::Unsupported(_))
        ));
        assert!(matches!(
            rsa_decrypt(other, key(other), OaepAlgorithm::Sha256, &ciphertext),
            Err(AsymError::Unsupported(_))
        ));
    }
}

#[test]
fn oaep_decrypts_what_the_rsa_crate_encrypts_to_the_spki() {
    use ::rsa::pkcs8::DecodePublicKey;
    let spec = AsymmetricSpec::Rsa3072;
    let public =
        ::rsa::RsaPublicKey::from_public_key_der(&public_key_der(spec, key(spec)).unwrap())
            .unwrap();
    let mut rng = rand::rngs::OsRng;
    let sealed = public
        .encrypt(&mut rng, ::rsa::Oaep::new::<sha1::Sha1>(), b"from outside")
        .unwrap();
    let opened = rsa_decrypt(spec, key(spec), OaepAlgorithm::Sha1, &sealed).unwrap();
    assert_eq!(opened.expose(), b"from outside");
}

#[test]
fn ecdh_agrees_both_ways_on_every_nist_curve() {
    for (spec, len) in NIST_SPECS.into_iter().zip([32, 48, 66]) {
        let (a, b) = (key(spec), other_key(spec));
        let a_pub = public_key_der(spec, a).unwrap();
        let b_pub = public_key_der(spec, b).unwrap();
        let ab = ecdh(spec, a, &b_pub).unwrap();
        let ba = ecdh(spec, b, &a_pub).unwrap();
        assert_eq!(ab, ba, "{spec:?}");
        assert_eq!(ab.len(), len);
        assert_ne!(ab, ecdh(spec, a, &a_pub).unwrap());
    }
}

#[test]
fn ecdh_refuses_peers_on_other_curves_and_garbage() {
    for spec in NIST_SPECS {
        let sk = key(spec);
        for other in ALL_SPECS.into_iter().filter(|s| *s != spec && !s.is_rsa()) {
            let peer = public_key_der(other, key(other)).unwrap();
            assert!(
                matches!(ecdh(spec, sk, &peer), Err(AsymError::InvalidPublicKey(_))),
                "{spec:?} with a {other:?} peer"
            );
        }
        let rsa_peer = public_key_der(AsymmetricSpec::Rsa2048, key(AsymmetricSpec::Rsa2048));
        let mut off_curve = public_key_der(spec, other_key(spec)).unwrap();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 0x01;
        for peer in [
            rsa_peer.unwrap(),
            off_curve,
            vec![],
            vec![0x30, 0x82, 0xff],
            vec![0xaa; 91],
        ] {
            assert!(
                matches!(ecdh(spec, sk, &peer), Err(AsymError::InvalidPublicKey(_))),
                "{spec:?}"
            );
        }
    }
    for spec in ALL_SPECS.into_iter().filter(|s| !s.has_key_agreement()) {
        let peer = public_key_der(spec, other_key(spec)).unwrap();
        assert!(matches!(
            ecdh(spec, key(spec), &peer),
            Err(AsymError::Unsupported(_))
        ));
    }
}

#[test]
fn hmac_matches_rfc_4231_test_case_2() {
    let key = b"Jefe";
    let data = b"what do ya want for nothing?";
    let vectors = [
        (
            MacAlgorithm::HmacSha224,
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
        ),
        (
            MacAlgorithm::HmacSha256,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            MacAlgorithm::HmacSha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            MacAlgorithm::HmacSha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (alg, hex) in vectors {
        let tag = mac(alg, key, data);
        assert_eq!(tag, hex_bytes(hex), "{alg:?}");
        assert!(verify_mac(alg, key, data, &tag));
    }
}

#[test]
fn hmac_verification_refuses_anything_but_the_tag() {
    for alg in [
        MacAlgorithm::HmacSha224,
        MacAlgorithm::HmacSha256,
        MacAlgorithm::HmacSha384,
        MacAlgorithm::HmacSha512,
    ] {
        let key = vec![0x42; alg.key_len()];
        let tag = mac(alg, &key, b"message");
        let mut flipped = tag.clone();
        flipped[tag.len() - 1] ^= 0x01;
        let mut extended = tag.clone();
        extended.push(0);
        assert!(!verify_mac(alg, &key, b"message", &flipped));
        assert!(!verify_mac(alg, &key, b"message", &tag[..tag.len() - 1]));
        assert!(!verify_mac(alg, &key, b"message", &extended));
        assert!(!verify_mac(alg, &key, b"message", &[]));
        assert!(!verify_mac(alg, &key, b"messagE", &tag));
        assert!(!verify_mac(alg, &[0x43; 32], b"message", &tag));
    }
}
