//! SM2: vectors made with OpenSSL 3.0 (an independent implementation), round trips, and the
//! refusals.
//!
//! The key, ciphertext and signature below were produced with:
//! `openssl genpkey -algorithm SM2`, `openssl pkcs8 -topk8 -nocrypt -outform DER`,
//! `openssl pkeyutl -encrypt -pubin` (ASN.1 C1C3C2) and
//! `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678`, all over the
//! message `hello keyhold`.

use super::tests::hex_bytes;
use super::*;

const SPEC: AsymmetricSpec = AsymmetricSpec::Sm2;
const MESSAGE: &[u8] = b"hello keyhold";

const OPENSSL_PKCS8: &str = "308187020100301306072a8648ce3d020106082a811ccf5501822d046d306b0201010420f9498022c7fa86302eef7b3046cdb8b5960eb54c61344ec567ad27097d0facc0a1440342000458f27c7049d0154261356327377dedf1bf214671f05e61c5ee5e01053148c2f19502a5e50f950274ab174a9daff3444dcc3fa86f972bc95b36a8e48d843018af";
const OPENSSL_SPKI: &str = "3059301306072a8648ce3d020106082a811ccf5501822d0342000458f27c7049d0154261356327377dedf1bf214671f05e61c5ee5e01053148c2f19502a5e50f950274ab174a9daff3444dcc3fa86f972bc95b36a8e48d843018af";
const OPENSSL_CIPHERTEXT: &str = "30760221009d360fb43c713dee3cfd4024cf397b46076a41e420d387dc79f5dca3bb8d38a80220482d076905a944a763b9cc17deae592e65fc827159ce2dc2433482e526c070060420ac93a2c4f490f57ec0d62168a567c3cc141cc24f348410399181af502b6e904a040da0d8119870ed63a1977b2a984f";
const OPENSSL_SIGNATURE: &str = "304502203ad762b106b3ec67daf82dafda2633fe9b273c74216c8573135774f04c1e4778022100c045d780138a35b28304e37c33a3434008c9b9f3ce731281d2da3bebb06a8e2b";

fn openssl_key() -> SecretBytes {
    import_private_key(SPEC, &hex_bytes(OPENSSL_PKCS8)).expect("OpenSSL SM2 key imports")
}

#[test]
fn name_and_algorithms() {
    assert_eq!(AsymmetricSpec::from_aws_name("SM2"), Some(SPEC));
    assert_eq!(SPEC.aws_name(), "SM2");
    assert_eq!(SPEC.signing_algorithms(), &[SigningAlgorithm::Sm2dsa]);
    assert_eq!(
        SigningAlgorithm::from_aws_name("SM2DSA"),
        Some(SigningAlgorithm::Sm2dsa)
    );
    assert!(SPEC.has_key_agreement() && SPEC.is_sm2() && !SPEC.is_rsa());
}

#[test]
fn public_key_is_the_openssl_spki() {
    let key = openssl_key();
    assert_eq!(
        public_key_der(SPEC, key.expose()).unwrap(),
        hex_bytes(OPENSSL_SPKI)
    );
    // A generated key has the same SPKI shape: id-ecPublicKey + sm2p256v1, 65-byte point.
    let fresh = generate(SPEC).unwrap();
    let spki = public_key_der(SPEC, fresh.expose()).unwrap();
    assert_eq!(spki.len(), 91);
    assert_eq!(spki[..26], hex_bytes(OPENSSL_SPKI)[..26]);
}

#[test]
fn verifies_an_openssl_signature_raw_and_digest() {
    let key = openssl_key();
    let sig = hex_bytes(OPENSSL_SIGNATURE);
    let raw = verify(
        SPEC,
        key.expose(),
        SigningAlgorithm::Sm2dsa,
        MessageType::Raw,
        MESSAGE,
        &sig,
    );
    assert_eq!(raw, Ok(true));
    let e = sm2_message_digest(key.expose(), "1234567812345678", MESSAGE).unwrap();
    let digest = verify(
        SPEC,
        key.expose(),
        SigningAlgorithm::Sm2dsa,
        MessageType::Digest,
        &e,
        &sig,
    );
    assert_eq!(digest, Ok(true));
    // The same signature over a digest computed with another distinguishing ID is not valid.
    let other = sm2_message_digest(key.expose(), "alice@example.com", MESSAGE).unwrap();
    assert_ne!(other, e);
    let wrong = verify(
        SPEC,
        key.expose(),
        SigningAlgorithm::Sm2dsa,
        MessageType::Digest,
        &other,
        &sig,
    );
    assert_eq!(wrong, Ok(false));
}

#[test]
fn sign_verify_round_trips() {
    let key = generate(SPEC).unwrap();
    let sig = sign(
        SPEC,
        key.expose(),
        SigningAlgorithm::Sm2dsa,
        MessageType::Raw,
        MESSAGE,
    )
    .unwrap();
    assert_eq!(sig[0], 0x30, "DER SEQUENCE");
    let ok = |t, m: &[u8], s: &[u8]| verify(SPEC, key.expose(), SigningAlgorithm::Sm2dsa, t, m, s);
    assert_eq!(ok(MessageType::Raw, MESSAGE, &sig), Ok(true));
    assert_eq!(ok(MessageType::Raw, b"other", &sig), Ok(false));
    assert_eq!(ok(MessageType::Raw, MESSAGE, b"garbage"), Ok(false));
    // A DIGEST signed by KMS verifies as RAW when it is SM3(ZA || M) with the default ID.
    let e = sm2_message_digest(key.expose(), DEFAULT_ID, MESSAGE).unwrap();
    let sig = sign(
        SPEC,
        key.expose(),
        SigningAlgorithm::Sm2dsa,
        MessageType::Digest,
        &e,
    )
    .unwrap();
    assert_eq!(ok(MessageType::Raw, MESSAGE, &sig), Ok(true));
}

const DEFAULT_ID: &str = "1234567812345678";

#[test]
fn sm2dsa_refusals() {
    let key = generate(SPEC).unwrap();
    let s = |t, m: &[u8]| sign(SPEC, key.expose(), SigningAlgorithm::Sm2dsa, t, m);
    assert_eq!(
        s(MessageType::Digest, &[0; 31]),
        Err(AsymError::DigestLength {
            expected: 32,
            actual: 31
        })
    );
    assert!(matches!(
        s(MessageType::ExternalMu, &[0; 64]),
        Err(AsymError::Unsupported(_))
    ));
    assert!(matches!(
        sign(
            SPEC,
            key.expose(),
            SigningAlgorithm::EcdsaSha256,
            MessageType::Raw,
            MESSAGE
        ),
        Err(AsymError::Unsupported(_))
    ));
}

#[test]
fn decrypts_an_openssl_ciphertext() {
    let key = openssl_key();
    let plain = sm2_decrypt(SPEC, key.expose(), &hex_bytes(OPENSSL_CIPHERTEXT)).unwrap();
    assert_eq!(plain.expose(), MESSAGE);
}

#[test]
fn sm2pke_round_trips_and_refuses_tampering() {
    let key = generate(SPEC).unwrap();
    for len in [1, 31, 32, 33, 100, SM2PKE_MAX_PLAINTEXT] {
        let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let ct = sm2_encrypt(SPEC, key.expose(), &plain).unwrap();
        assert_eq!(ct[0], 0x30, "ASN.1 SEQUENCE");
        assert_eq!(
            sm2_decrypt(SPEC, key.expose(), &ct).unwrap().expose(),
            &plain[..]
        );
        let mut tampered = ct.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            sm2_decrypt(SPEC, key.expose(), &tampered).err(),
            Some(AsymError::DecryptFailed)
        );
    }
    assert_eq!(
        sm2_encrypt(SPEC, key.expose(), &[0; 1025]),
        Err(AsymError::PlaintextTooLong {
            max: 1024,
            actual: 1025
        })
    );
    for garbage in [&b""[..], b"\x30\x00", b"not a ciphertext"] {
        assert_eq!(
            sm2_decrypt(SPEC, key.expose(), garbage).err(),
            Some(AsymError::DecryptFailed)
        );
    }
    // Another key's ciphertext does not decrypt.
    let other = generate(SPEC).unwrap();
    let ct = sm2_encrypt(SPEC, other.expose(), MESSAGE).unwrap();
    assert_eq!(
        sm2_decrypt(SPEC, key.expose(), &ct).err(),
        Some(AsymError::DecryptFailed)
    );
    let rsa = generate(AsymmetricSpec::Rsa2048).unwrap();
    assert!(matches!(
        sm2_encrypt(AsymmetricSpec::Rsa2048, rsa.expose(), MESSAGE),
        Err(AsymError::Unsupported(_))
    ));
}

#[test]
fn ecdh_agrees_and_refuses_other_curves() {
    let a = generate(SPEC).unwrap();
    let b = generate(SPEC).unwrap();
    let pa = public_key_der(SPEC, a.expose()).unwrap();
    let pb = public_key_der(SPEC, b.expose()).unwrap();
    let ab = ecdh(SPEC, a.expose(), &pb).unwrap();
    let ba = ecdh(SPEC, b.expose(), &pa).unwrap();
    assert_eq!(ab.expose(), ba.expose());
    assert_eq!(ab.expose().len(), 32);
    let p256 = generate(AsymmetricSpec::EccNistP256).unwrap();
    let p256_pub = public_key_der(AsymmetricSpec::EccNistP256, p256.expose()).unwrap();
    assert!(matches!(
        ecdh(SPEC, a.expose(), &p256_pub),
        Err(AsymError::InvalidPublicKey(_))
    ));
}

#[test]
fn import_canonicalises_and_refuses_other_curves() {
    let key = openssl_key();
    assert_eq!(
        import_private_key(SPEC, key.expose()).unwrap().expose(),
        key.expose()
    );
    let p256 = generate(AsymmetricSpec::EccNistP256).unwrap();
    assert!(import_private_key(SPEC, p256.expose()).is_err());
}
