//! Helpers shared by the end-to-end tests of imported key material: keys created with
//! `Origin: EXTERNAL`, GetParametersForImport, and key material wrapped on the client side with
//! the returned public key only (RSA-OAEP from the `rsa` crate; AES Key Wrap with Padding for the
//! RSA_AES algorithms), as AWS documents each wrapping algorithm.
#![allow(dead_code)]

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportType, KeySpec, KeyState, KeyUsageType, OriginType,
    WrappingKeySpec,
};
use aws_sdk_kms::Client;
use rsa::pkcs8::DecodePublicKey;

use crate::common::failure;

/// One hour, in seconds.
pub const HOUR: u64 = 3_600;

/// Parameters from GetParametersForImport: (import token, public key DER).
pub struct Params {
    /// The import token.
    pub token: Blob,
    /// The wrapping public key, DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

/// A new key of `spec` and `usage` with `Origin: EXTERNAL` (no material yet).
pub async fn create_external(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let made = kms
        .create_key()
        .origin(OriginType::External)
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .expect("create EXTERNAL key");
    made.key_metadata().expect("metadata").key_id().to_string()
}

/// GetParametersForImport for `key`; checks the key ARN and the 24-hour validity.
pub async fn params(
    kms: &Client,
    key: &str,
    algorithm: AlgorithmSpec,
    spec: WrappingKeySpec,
) -> Params {
    let out = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(algorithm)
        .wrapping_key_spec(spec)
        .send()
        .await
        .expect("get parameters for import");
    assert!(out.key_id().unwrap().ends_with(&format!(":key/{key}")));
    let valid_to = out
        .parameters_valid_to()
        .expect("ParametersValidTo")
        .as_secs_f64();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Valid for 24 hours (the server's clock may be ahead after advance-clock).
    assert!(valid_to > now + 23.9 * HOUR as f64, "{valid_to} vs {now}");
    Params {
        token: out.import_token().expect("token").clone(),
        public_key: out.public_key().expect("public key").as_ref().to_vec(),
    }
}

/// `material` wrapped as a client does with the wrapping public key.
pub fn wrap(p: &Params, algorithm: &AlgorithmSpec, material: &[u8]) -> Blob {
    let public = rsa::RsaPublicKey::from_public_key_der(&p.public_key).expect("SPKI");
    let oaep = || match algorithm {
        AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaAesKeyWrapSha1 => {
            rsa::Oaep::new::<sha1::Sha1>()
        }
        _ => rsa::Oaep::new::<sha2::Sha256>(),
    };
    let mut rng = rand::rngs::OsRng;
    let wrapped = match algorithm {
        AlgorithmSpec::RsaAesKeyWrapSha1 | AlgorithmSpec::RsaAesKeyWrapSha256 => {
            let aes = keyhold_crypto::random_bytes(32);
            let mut out = public
                .encrypt(&mut rng, oaep(), aes.expose())
                .expect("oaep");
            out.extend(
                keyhold_crypto::keywrap::wrap_with_padding(aes.expose(), material).expect("kwp"),
            );
            out
        }
        _ => public.encrypt(&mut rng, oaep(), material).expect("oaep"),
    };
    Blob::new(wrapped)
}

/// Imports `material` into `key` with `algorithm` and RSA_2048, without expiry; the
/// KeyMaterialId returned.
pub async fn import(
    kms: &Client,
    key: &str,
    material: &[u8],
    algorithm: AlgorithmSpec,
) -> Option<String> {
    import_with(kms, key, material, algorithm, None)
        .await
        .expect("import key material")
}

/// Imports `material` into `key` with `algorithm`, RSA_2048 and `import_type` (if any),
/// without expiry: the KeyMaterialId returned, or the (code, message) of the failure.
pub async fn import_with(
    kms: &Client,
    key: &str,
    material: &[u8],
    algorithm: AlgorithmSpec,
    import_type: Option<ImportType>,
) -> Result<Option<String>, (String, String)> {
    let p = params(kms, key, algorithm.clone(), WrappingKeySpec::Rsa2048).await;
    let out = kms
        .import_key_material()
        .key_id(key)
        .import_token(p.token.clone())
        .encrypted_key_material(wrap(&p, &algorithm, material))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .set_import_type(import_type)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) => return Err(failure::<(), _>(Err(e))),
    };
    assert!(out.key_id().unwrap().ends_with(&format!(":key/{key}")));
    Ok(out.key_material_id().map(str::to_string))
}

/// The key state DescribeKey reports.
pub async fn state(kms: &Client, key: &str) -> KeyState {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    d.key_metadata().unwrap().key_state().unwrap().clone()
}

/// Decrypt of `blob`: the plaintext, or the (code, message) of the failure.
pub async fn decrypt(kms: &Client, blob: Blob) -> Result<Vec<u8>, (String, String)> {
    match kms.decrypt().ciphertext_blob(blob).send().await {
        Ok(out) => Ok(out.plaintext().unwrap().as_ref().to_vec()),
        Err(e) => Err(failure::<(), _>(Err(e))),
    }
}
