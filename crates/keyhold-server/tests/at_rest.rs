//! Key material never rests in plaintext: the SQLite files hold only root-key-wrapped material.

use std::sync::Arc;

use keyhold_core::ports::MetadataStore;
use keyhold_core::{Kms, RequestContext};
use keyhold_crypto::RootKey;
use keyhold_kms_model::shapes::{CreateKeyRequest, EncryptRequest};
use keyhold_kms_model::Blob;

const ROOT: [u8; 32] = [0x5a; 32];

fn read_all(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn database_files_never_hold_key_material_or_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> = keyhold_store::open_store(None, dir.path())
        .await
        .expect("sqlite store");
    let kms = Kms::new(store.clone(), Arc::new(RootKey::new(&ROOT).unwrap()));
    let ctx = RequestContext::new("123456789012", "us-east-1", "req");

    let md = kms
        .keys
        .create_key(&ctx, CreateKeyRequest::default())
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let plaintext = b"PLAINTEXT-MARKER-6f1c2d9e".to_vec();
    kms.keys
        .encrypt(
            &ctx,
            EncryptRequest {
                key_id: md.key_id.clone(),
                plaintext: Blob::from(plaintext.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Recover the key material the way only a holder of the root key can.
    let material_id = md.current_key_material_id.clone().expect("material id");
    let row = store
        .get_key_material("123456789012", "us-east-1", &md.key_id, &material_id)
        .await
        .unwrap()
        .expect("material row");
    let aad = format!(
        "keyhold/key-material/v1/123456789012/us-east-1/{}/{material_id}",
        md.key_id
    );
    let material = RootKey::new(&ROOT)
        .unwrap()
        .unwrap(aad.as_bytes(), &row.wrapped)
        .unwrap();
    assert_eq!(material.len(), 32);

    let files = read_all(dir.path());
    // The grep works: the wrapped form and the key id are in the files...
    assert!(
        contains(&files, md.key_id.as_bytes()),
        "key id should be stored"
    );
    assert!(
        contains(&files, &row.wrapped[13..29]),
        "wrapped material should be stored"
    );
    // ...but neither the material (nor any 8-byte window of it) nor the plaintext is.
    for window in material.expose().windows(8) {
        assert!(
            !contains(&files, window),
            "key material found in the database files"
        );
    }
    assert!(!contains(&files, &plaintext));
    assert!(
        !contains(&files, &ROOT[..8]),
        "the root key is not stored in the database"
    );

    // A wrapped material moved to another row does not unwrap: it is bound to its row.
    let other_aad = format!("keyhold/key-material/v1/123456789012/us-east-1/other/{material_id}");
    assert!(RootKey::new(&ROOT)
        .unwrap()
        .unwrap(other_aad.as_bytes(), &row.wrapped)
        .is_err());
}
