//! What one audit record costs on the request path: gathering the call, writing the
//! CloudTrail record as JSON (for an Encrypt of 1 KiB), and writing records to a
//! file through the audit writer, against writing the same bytes with `write_all`.
//!
//! `cargo bench -p keyhold-server --bench audit`

use std::hint::black_box;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use keyhold_kms_model::shapes::EncryptResponse;

use keyhold_core::RequestContext;
use keyhold_server::audit::{AuditLog, AuditTarget, Call, Source};

fn encrypt_call() -> (http::HeaderMap, Vec<u8>, EncryptResponse) {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/eu-west-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abcdef",
        ),
    );
    headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("aws-sdk-rust/1.0 os/linux lang/rust/1.95"),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = serde_json::json!({
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Plaintext": b64.encode([7u8; 1024]),
        "EncryptionContext": {"Department": "Engineering"},
    });
    let response = serde_json::json!({
        "CiphertextBlob": b64.encode([9u8; 1100]),
        "KeyId": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    });
    (
        headers,
        serde_json::to_vec(&body).expect("json"),
        serde_json::from_value(response).expect("an Encrypt response"),
    )
}

fn gather(headers: &http::HeaderMap, body: &[u8], response: &EncryptResponse) -> Call {
    let ctx = RequestContext::new("111122223333", "eu-west-1", "req-1");
    let shape = keyhold_kms_model::input_shape(keyhold_kms_model::Operation::Encrypt);
    let mut call = Call::new(
        Source::Kms,
        "Encrypt",
        headers,
        Some("127.0.0.1".parse().expect("ip")),
    );
    call.authenticated(ctx, Some(shape), body);
    call.response = Some(keyhold_server::audit::peek::capture(response));
    call
}

fn record(c: &mut Criterion) {
    let (headers, body, response) = encrypt_call();
    c.bench_function("audit/gather_call", |b| {
        b.iter(|| black_box(gather(&headers, &body, &response)))
    });
    let call = gather(&headers, &body, &response);
    let mut line = Vec::new();
    c.bench_function("audit/write_event", |b| {
        b.iter(|| {
            line.clear();
            keyhold_server::audit::record::write_event(&mut line, &call, "req-1", None);
            black_box(line.len())
        })
    });

    let dir = tempfile::tempdir().expect("tmp");
    let log = AuditLog::open(&AuditTarget::File {
        path: dir.path().join("audit.log"),
        max_bytes: u64::MAX,
        max_files: 1,
    })
    .expect("open");
    // One request at a time: the latency of a record on a quiet server (the writer thread is
    // woken for it), not the CPU cost per record of a busy one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    c.bench_function("audit/record_and_write", |b| {
        b.iter_batched(
            || gather(&headers, &body, &response),
            |call| rt.block_on(log.record(&call, "req-1", None)),
            criterion::BatchSize::SmallInput,
        )
    });
    let line = vec![b'x'; 900];
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("plain.log"))
        .expect("open");
    c.bench_function("audit/plain_write_900_bytes", |b| {
        b.iter(|| std::io::Write::write_all(&mut file, black_box(&line)).expect("write"))
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
