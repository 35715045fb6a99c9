//! Micro-benchmarks of the crypto on Keyhold's request paths: AES-256-GCM seal and open (the
//! work of one Encrypt or Decrypt), ciphertext-blob parsing (every Decrypt), and root-key
//! unwrapping of key material (every use of a key whose material is not cached).
//!
//! Run with `cargo bench -p keyhold-crypto`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keyhold_crypto::{Aes256Gcm, CiphertextBlob, RootKey};

/// Plaintext sizes: a typical small secret, and the KMS Encrypt maximum.
const SIZES: [usize; 2] = [512, 4096];

/// Associated data of realistic size (a blob header plus an empty encryption context).
fn sample_aad() -> Vec<u8> {
    let mut aad = CiphertextBlob::new_keyhold(
        "123456789012",
        "us-east-1",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "5678efab-12ab-34cd-56ef-1234567890ab",
    )
    .header();
    aad.extend_from_slice(&0u32.to_be_bytes());
    aad
}

fn aes_gcm(c: &mut Criterion) {
    let key = Aes256Gcm::new(&[0x42; 32]).expect("32-byte key");
    let aad = sample_aad();
    let mut group = c.benchmark_group("aes256gcm");
    for size in SIZES {
        let plaintext = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, pt| {
            b.iter(|| key.seal(black_box(&aad), black_box(pt)))
        });
        let (iv, ciphertext) = key.seal(&aad, &plaintext).expect("seal");
        group.bench_with_input(BenchmarkId::new("open", size), &ciphertext, |b, ct| {
            b.iter(|| {
                key.open(black_box(&iv), black_box(&aad), black_box(ct))
                    .expect("authentic")
            })
        });
    }
    group.finish();
}

fn blob_parse(c: &mut Criterion) {
    let mut blob = CiphertextBlob::new_keyhold(
        "123456789012",
        "us-east-1",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "5678efab-12ab-34cd-56ef-1234567890ab",
    );
    blob.iv = vec![7; 12];
    blob.ciphertext = vec![9; 512 + 16];
    let bytes = blob.to_bytes();
    c.bench_function("ciphertext_blob/parse/512", |b| {
        b.iter(|| CiphertextBlob::parse(black_box(&bytes)).expect("valid blob"))
    });
}

fn root_key_unwrap(c: &mut Criterion) {
    let root = RootKey::new(&[0x24; 32]).expect("32-byte key");
    let aad = b"key-material:123456789012:us-east-1:1234abcd:5678efab";
    let wrapped = root.wrap(aad, &[0x11; 32]).expect("wrap");
    c.bench_function("root_key/unwrap/32", |b| {
        b.iter(|| {
            root.unwrap(black_box(aad), black_box(&wrapped))
                .expect("unwraps")
        })
    });
}

criterion_group!(benches, aes_gcm, blob_parse, root_key_unwrap);
criterion_main!(benches);
