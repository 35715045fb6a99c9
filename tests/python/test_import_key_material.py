"""Imported key material (Origin EXTERNAL) with boto3: the material is generated and wrapped
offline with `cryptography`, using only the public key GetParametersForImport returns, for every
wrapping algorithm; imported symmetric material encrypts and decrypts, an imported ECC or RSA
private key signs (verified offline), an imported HMAC key matches a local HMAC.
"""

import hashlib
import hmac
import os

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

ALGORITHMS = [
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
]


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """Wraps `material` as AWS documents for `algorithm`, with the wrapping public key only."""
    public_key = serialization.load_der_public_key(public_key_der)
    digest = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=digest), algorithm=digest, label=None)
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        aes_key = os.urandom(32)
        return public_key.encrypt(aes_key, oaep) + aes_key_wrap_with_padding(aes_key, material)
    return public_key.encrypt(material, oaep)


def import_material(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", spec="RSA_2048", **extra):
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )
    assert params["KeyId"].endswith(f":key/{key_id}")
    extra.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
        **extra,
    )


def external_key(kms, **kwargs):
    meta = kms.create_key(Origin="EXTERNAL", **kwargs)["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport"
    assert meta["Origin"] == "EXTERNAL"
    assert meta["Enabled"] is False
    assert "CurrentKeyMaterialId" not in meta
    return meta["KeyId"]


@pytest.mark.parametrize(
    "algorithm,spec",
    [
        ("RSAES_OAEP_SHA_1", "RSA_2048"),
        ("RSAES_OAEP_SHA_256", "RSA_3072"),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_2048"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_4096"),
    ],
)
def test_symmetric_material_wrapped_offline_encrypts_and_decrypts(kms, algorithm, spec):
    key_id = external_key(kms)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert e.value.response["Error"]["Code"] == "KMSInvalidStateException"
    assert e.value.response["Error"]["Message"].endswith("is pending import.")

    material = os.urandom(32)
    out = import_material(kms, key_id, material, algorithm, spec)
    material_id = out["KeyMaterialId"]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert meta["CurrentKeyMaterialId"] == material_id

    blob = kms.encrypt(KeyId=key_id, Plaintext=b"offline wrapped")["CiphertextBlob"]
    got = kms.decrypt(CiphertextBlob=blob)
    assert got["Plaintext"] == b"offline wrapped"
    assert got["KeyMaterialId"] == material_id

    # Deleted, then reimported with another algorithm: the old ciphertext decrypts again.
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    other = ALGORITHMS[(ALGORITHMS.index(algorithm) + 1) % len(ALGORITHMS)]
    assert import_material(kms, key_id, material, other)["KeyMaterialId"] == material_id
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"offline wrapped"


def test_errors_as_aws_reports_them(kms):
    key_id = external_key(kms)
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    material = os.urandom(32)
    wrapped = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material)

    def code(**kwargs):
        args = dict(
            KeyId=key_id,
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrapped,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
        args.update(kwargs)
        with pytest.raises(ClientError) as e:
            kms.import_key_material(**args)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert code(ImportToken=os.urandom(400))[0] == "InvalidImportTokenException"
    assert code(EncryptedKeyMaterial=os.urandom(256))[0] == "InvalidCiphertextException"
    assert code(EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", material))[0] == (
        "InvalidCiphertextException"
    )
    short = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(16))
    assert code(EncryptedKeyMaterial=short)[0] == "IncorrectKeyMaterialException"
    args = dict(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    with pytest.raises(ClientError) as e:
        kms.import_key_material(**args)
    assert e.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
    }

    aws_key = kms.create_key()["KeyMetadata"]
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(
            KeyId=aws_key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
    assert e.value.response["Error"] == {
        "Code": "UnsupportedOperationException",
        "Message": f"{aws_key['Arn']} origin is AWS_KMS which is not valid for this operation.",
    }


@pytest.mark.parametrize("curve,spec,algorithm", [
    (ec.SECP256R1(), "ECC_NIST_P256", "ECDSA_SHA_256"),
    (ec.SECP384R1(), "ECC_NIST_P384", "ECDSA_SHA_384"),
])
def test_imported_ecc_private_key_signs_and_verifies_offline(kms, curve, spec, algorithm):
    key_id = external_key(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    private = ec.generate_private_key(curve)
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    import_material(kms, key_id, pkcs8, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072")
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and "CurrentKeyMaterialId" not in meta

    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki
    message = b"signed inside Keyhold with my own key"
    signature = kms.sign(
        KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm=algorithm
    )["Signature"]
    digest = hashes.SHA256() if spec == "ECC_NIST_P256" else hashes.SHA384()
    private.public_key().verify(signature, message, ec.ECDSA(digest))


def test_imported_rsa_private_key_signs_and_decrypts(kms):
    key_id = external_key(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # An RSA private key is too long for RSA-OAEP alone: AWS requires RSA_AES_KEY_WRAP.
    import_material(kms, key_id, pkcs8, "RSA_AES_KEY_WRAP_SHA_1", "RSA_4096")
    message = b"pss over an imported RSA key"
    signature = kms.sign(
        KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )["Signature"]
    private.public_key().verify(
        signature,
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


@pytest.mark.parametrize("spec,digest,length", [
    ("HMAC_224", hashlib.sha224, 28),
    ("HMAC_256", hashlib.sha256, 32),
    ("HMAC_384", hashlib.sha384, 48),
    ("HMAC_512", hashlib.sha512, 64),
])
def test_imported_hmac_key_matches_a_local_hmac(kms, spec, digest, length):
    key_id = external_key(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(length)
    import_material(kms, key_id, material, "RSAES_OAEP_SHA_1", "RSA_2048")
    algorithm = "HMAC_SHA_" + spec.split("_")[1]
    message = b"authenticated with imported material"
    mac = kms.generate_mac(KeyId=key_id, Message=message, MacAlgorithm=algorithm)["Mac"]
    assert mac == hmac.new(material, message, digest).digest()
    assert kms.verify_mac(KeyId=key_id, Message=message, Mac=mac, MacAlgorithm=algorithm)["MacValid"]


def test_new_material_rotates_on_demand(kms):
    key_id = external_key(kms)
    first, second = os.urandom(32), os.urandom(32)
    first_id = import_material(kms, key_id, first)["KeyMaterialId"]
    old = kms.encrypt(KeyId=key_id, Plaintext=b"first")["CiphertextBlob"]
    second_id = import_material(
        kms, key_id, second, "RSA_AES_KEY_WRAP_SHA_256",
        ImportType="NEW_KEY_MATERIAL", KeyMaterialDescription="quarterly rotation",
    )["KeyMaterialId"]
    rows = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(r["KeyMaterialId"], r["KeyMaterialState"], r["ImportState"]) for r in rows] == [
        (first_id, "CURRENT", "IMPORTED"),
        (second_id, "PENDING_ROTATION", "IMPORTED"),
    ]
    assert rows[1]["KeyMaterialDescription"] == "quarterly rotation"
    kms.rotate_key_on_demand(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == second_id
    rows = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [(r["KeyMaterialId"], r["RotationType"]) for r in rows] == [(second_id, "ON_DEMAND")]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"first"
    new = kms.encrypt(KeyId=key_id, Plaintext=b"second")
    assert kms.decrypt(CiphertextBlob=new["CiphertextBlob"])["KeyMaterialId"] == second_id
