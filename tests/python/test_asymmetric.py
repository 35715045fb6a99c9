"""Asymmetric and HMAC keys through boto3, checked offline with `cryptography` and the openssl
CLI: signatures made by Keyhold verify with the public key from GetPublicKey, data encrypted
offline decrypts in Keyhold, ECDH secrets match a local computation, data key pairs are usable
key pairs, and wrong usage gets AWS's exceptions. SM2 keys (China Regions) are checked with the
openssl CLI; a Recipient with a garbage attestation document gets ValidationException."""

import hashlib
import os
import subprocess
import tempfile

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

MESSAGE = b"signed by keyhold"

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def create(kms, spec, usage):
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]


def public_key(kms, key_id):
    out = kms.get_public_key(KeyId=key_id)
    return serialization.load_der_public_key(out["PublicKey"]), out


def verify_offline(public, algorithm, message, signature, digest=False):
    """Verifies like a user would, with `cryptography`; raises InvalidSignature on failure."""
    bits = algorithm.rsplit("_", 1)[1]
    h = HASHES[bits]()
    chosen = utils.Prehashed(h) if digest else h
    if algorithm.startswith("RSASSA_PSS"):
        public.verify(signature, message, padding.PSS(padding.MGF1(h), h.digest_size), chosen)
    elif algorithm.startswith("RSASSA_PKCS1"):
        public.verify(signature, message, padding.PKCS1v15(), chosen)
    else:
        public.verify(signature, message, ec.ECDSA(chosen))


@pytest.mark.parametrize("spec,algorithms", [
    ("RSA_2048", ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                  "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"]),
    ("ECC_NIST_P256", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", ["ECDSA_SHA_384"]),
    ("ECC_NIST_P521", ["ECDSA_SHA_512"]),
    ("ECC_SECG_P256K1", ["ECDSA_SHA_256"]),
])
def test_signatures_verify_offline_raw_and_digest(kms, spec, algorithms):
    md = create(kms, spec, "SIGN_VERIFY")
    assert md["SigningAlgorithms"] == algorithms
    public, info = public_key(kms, md["KeyId"])
    assert (info["KeySpec"], info["KeyUsage"], info["SigningAlgorithms"]) == (spec, "SIGN_VERIFY", algorithms)
    for algorithm in algorithms:
        sig = kms.sign(KeyId=md["KeyId"], Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
        verify_offline(public, algorithm, MESSAGE, sig)
        with pytest.raises(InvalidSignature):
            verify_offline(public, algorithm, MESSAGE + b"!", sig)
        assert kms.verify(KeyId=md["KeyId"], Message=MESSAGE, Signature=sig,
                          SigningAlgorithm=algorithm)["SignatureValid"] is True
        # DIGEST: the caller hashes; Keyhold must not hash again.
        digest = hashlib.new("sha" + algorithm.rsplit("_", 1)[1], MESSAGE).digest()
        sig = kms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST",
                       SigningAlgorithm=algorithm)["Signature"]
        verify_offline(public, algorithm, digest, sig, digest=True)
        verify_offline(public, algorithm, MESSAGE, sig)
        with pytest.raises(ClientError) as e:
            kms.sign(KeyId=md["KeyId"], Message=digest[:-1], MessageType="DIGEST", SigningAlgorithm=algorithm)
        assert error_code(e) == "ValidationException"
        with pytest.raises(ClientError) as e:
            kms.verify(KeyId=md["KeyId"], Message=b"other", Signature=sig, SigningAlgorithm=algorithm)
        assert error_code(e) == "KMSInvalidSignatureException"


def test_openssl_cli_verifies_rsa_and_ecdsa_signatures(kms):
    with tempfile.TemporaryDirectory() as tmp:
        msg = os.path.join(tmp, "msg")
        open(msg, "wb").write(MESSAGE)
        for spec, algorithm in [("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256"), ("ECC_NIST_P384", "ECDSA_SHA_384")]:
            key_id = create(kms, spec, "SIGN_VERIFY")["KeyId"]
            der = kms.get_public_key(KeyId=key_id)["PublicKey"]
            pub, sig = os.path.join(tmp, "pub.der"), os.path.join(tmp, "sig")
            open(pub, "wb").write(der)
            open(sig, "wb").write(kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"])
            digest = "-sha" + algorithm.rsplit("_", 1)[1]
            out = subprocess.run(["openssl", "dgst", digest, "-verify", pub, "-keyform", "DER",
                                  "-signature", sig, msg], capture_output=True, text=True)
            assert out.returncode == 0 and "Verified OK" in out.stdout, out.stderr


def test_ed25519_and_ml_dsa(kms):
    md = create(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    assert md["SigningAlgorithms"] == ["ED25519_SHA_512", "ED25519_PH_SHA_512"]
    public, _ = public_key(kms, md["KeyId"])
    assert isinstance(public, ed25519.Ed25519PublicKey)
    sig = kms.sign(KeyId=md["KeyId"], Message=MESSAGE, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    public.verify(sig, MESSAGE)
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=md["KeyId"], Message=hashlib.sha512(MESSAGE).digest(), MessageType="DIGEST",
                 SigningAlgorithm="ED25519_SHA_512")
    assert error_code(e) == "ValidationException"
    # Ed25519ph: a signature over the SHA-512 digest is one over the message.
    sig = kms.sign(KeyId=md["KeyId"], Message=hashlib.sha512(MESSAGE).digest(), MessageType="DIGEST",
                   SigningAlgorithm="ED25519_PH_SHA_512")["Signature"]
    assert kms.verify(KeyId=md["KeyId"], Message=MESSAGE, Signature=sig,
                      SigningAlgorithm="ED25519_PH_SHA_512")["SignatureValid"] is True

    for spec in ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]:
        key_id = create(kms, spec, "SIGN_VERIFY")["KeyId"]
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
        assert len(der) > 1000
        sig = kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
        assert kms.verify(KeyId=key_id, Message=MESSAGE, Signature=sig,
                          SigningAlgorithm="ML_DSA_SHAKE_256")["SignatureValid"] is True
        with pytest.raises(ClientError) as e:
            kms.verify(KeyId=key_id, Message=MESSAGE + b"x", Signature=sig, SigningAlgorithm="ML_DSA_SHAKE_256")
        assert error_code(e) == "KMSInvalidSignatureException"


@pytest.mark.parametrize("algorithm,hash_cls,max_len", [
    ("RSAES_OAEP_SHA_1", hashes.SHA1, 214),
    ("RSAES_OAEP_SHA_256", hashes.SHA256, 190),
])
def test_rsa_encryption_interoperates(kms, algorithm, hash_cls, max_len):
    md = create(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    assert md["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    public, _ = public_key(kms, md["KeyId"])
    oaep = padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
    offline = public.encrypt(b"encrypted offline", oaep)
    out = kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=offline, EncryptionAlgorithm=algorithm)
    assert out["Plaintext"] == b"encrypted offline" and out["EncryptionAlgorithm"] == algorithm
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x" * max_len, EncryptionAlgorithm=algorithm)["CiphertextBlob"]
    assert len(blob) == 256
    assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm=algorithm)["Plaintext"] == b"x" * max_len
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x" * (max_len + 1), EncryptionAlgorithm=algorithm)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x")
    assert error_code(e) == "InvalidKeyUsageException"


def test_ecdh_matches_a_local_computation(kms):
    for spec, curve in [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
                        ("ECC_NIST_P521", ec.SECP521R1())]:
        md = create(kms, spec, "KEY_AGREEMENT")
        assert md["KeyAgreementAlgorithms"] == ["ECDH"]
        theirs, _ = public_key(kms, md["KeyId"])
        mine = ec.generate_private_key(curve)
        mine_der = mine.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        out = kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=mine_der)
        assert out["SharedSecret"] == mine.exchange(ec.ECDH(), theirs)
        assert out["KeyOrigin"] == "AWS_KMS"
        with pytest.raises(ClientError) as e:
            kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=b"not a key")
        assert error_code(e) == "ValidationException"


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
                                  "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"])
def test_data_key_pairs_are_usable_key_pairs(kms, spec):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    out = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec=spec, EncryptionContext={"app": "t"})
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public_der == out["PublicKey"] and out["KeyPairSpec"] == spec
    back = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"app": "t"})
    assert back["Plaintext"] == out["PrivateKeyPlaintext"]
    if isinstance(private, rsa.RSAPrivateKey):
        sig = private.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
        private.public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())
    without = kms.generate_data_key_pair_without_plaintext(KeyId=key_id, KeyPairSpec=spec)
    assert "PrivateKeyPlaintext" not in without
    serialization.load_der_public_key(without["PublicKey"])


def test_hmac_keys_and_wrong_usage(kms):
    for spec, algorithm, size in [("HMAC_224", "HMAC_SHA_224", 28), ("HMAC_256", "HMAC_SHA_256", 32),
                                  ("HMAC_384", "HMAC_SHA_384", 48), ("HMAC_512", "HMAC_SHA_512", 64)]:
        md = create(kms, spec, "GENERATE_VERIFY_MAC")
        assert md["MacAlgorithms"] == [algorithm]
        mac = kms.generate_mac(KeyId=md["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)["Mac"]
        assert len(mac) == size
        assert kms.generate_mac(KeyId=md["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)["Mac"] == mac
        assert kms.verify_mac(KeyId=md["KeyId"], Message=MESSAGE, Mac=mac, MacAlgorithm=algorithm)["MacValid"]
        with pytest.raises(ClientError) as e:
            kms.verify_mac(KeyId=md["KeyId"], Message=MESSAGE + b"!", Mac=mac, MacAlgorithm=algorithm)
        assert error_code(e) == "KMSInvalidMacException"
    with pytest.raises(ClientError) as e:
        kms.generate_mac(KeyId=md["KeyId"], Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.create_key(KeySpec="HMAC_256")
    assert error_code(e) == "ValidationException"

    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.get_public_key(KeyId=symmetric)
    assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=symmetric, Message=MESSAGE, SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    signing = create(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=signing, Message=MESSAGE, SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=signing, Plaintext=b"x")
    assert error_code(e) == "InvalidKeyUsageException"


# SM2 (China Regions only), checked with the openssl CLI (`cryptography` has no SM2).

SM2_ID = b"1234567812345678"
SM2_A = bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
SM2_B = bytes.fromhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
SM2_GX = bytes.fromhex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
SM2_GY = bytes.fromhex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")


def sm2_digest(spki, message, distid=SM2_ID):
    """e = SM3(ZA || M), ZA = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    point = spki[-64:]
    za = hashlib.new("sm3", len(distid * 8).to_bytes(2, "big") + distid + SM2_A + SM2_B + SM2_GX + SM2_GY
                     + point).digest()
    return hashlib.new("sm3", za + message).digest()


def test_sm2_only_in_china_regions(server, kms):
    with pytest.raises(ClientError) as e:
        kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")
    assert error_code(e) == "UnsupportedOperationException"
    assert e.value.response["Error"]["Message"] == "KeySpec SM2 is not supported in this Region"
    cn = server.client(region="cn-northwest-1")
    md = cn.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert md["Arn"].startswith("arn:aws-cn:kms:cn-northwest-1:")
    assert md["SigningAlgorithms"] == ["SM2DSA"]


def test_sm2_interoperates_with_openssl(server):
    cn = server.client(region="cn-north-1")
    with tempfile.TemporaryDirectory() as tmp:
        path = lambda name: os.path.join(tmp, name)  # noqa: E731
        open(path("msg"), "wb").write(MESSAGE)

        # SM2DSA: a RAW signature verifies with OpenSSL and distid 1234567812345678; a DIGEST
        # signature over e = SM3(ZA || M) is the same kind of signature.
        key_id = cn.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        spki = cn.get_public_key(KeyId=key_id)["PublicKey"]
        open(path("pub.der"), "wb").write(spki)
        e = sm2_digest(spki, MESSAGE)
        for kind, message in [("RAW", MESSAGE), ("DIGEST", e)]:
            sig = cn.sign(KeyId=key_id, Message=message, MessageType=kind, SigningAlgorithm="SM2DSA")["Signature"]
            open(path("sig"), "wb").write(sig)
            out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey",
                                  path("pub.der"), "-rawin", "-digest", "sm3", "-in", path("msg"), "-sigfile",
                                  path("sig"), "-pkeyopt", "distid:1234567812345678"],
                                 capture_output=True, text=True)
            assert out.returncode == 0 and "Signature Verified Successfully" in out.stdout, (kind, out.stderr)

        # SM2PKE: OpenSSL's ASN.1 ciphertext decrypts in Keyhold.
        key_id = cn.create_key(KeySpec="SM2", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
        open(path("enc.der"), "wb").write(cn.get_public_key(KeyId=key_id)["PublicKey"])
        out = subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey",
                              path("enc.der"), "-in", path("msg"), "-out", path("ct")], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        plain = cn.decrypt(KeyId=key_id, CiphertextBlob=open(path("ct"), "rb").read(),
                           EncryptionAlgorithm="SM2PKE")["Plaintext"]
        assert plain == MESSAGE
        ct = cn.encrypt(KeyId=key_id, Plaintext=MESSAGE, EncryptionAlgorithm="SM2PKE")["CiphertextBlob"]
        open(path("kms-ct"), "wb").write(ct)
        out = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", path("kms-ct")],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.count("OCTET STRING") == 2, out.stdout


def test_recipient_with_garbage_attestation_document(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    recipient = {"AttestationDocument": b"this is not an attestation document",
                 "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}
    for call in [lambda: kms.decrypt(CiphertextBlob=blob, Recipient=recipient),
                 lambda: kms.generate_data_key(KeyId=key_id, NumberOfBytes=32, Recipient=recipient),
                 lambda: kms.generate_random(NumberOfBytes=16, Recipient=recipient)]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "ValidationException"
        assert "attestation document" in e.value.response["Error"]["Message"]
