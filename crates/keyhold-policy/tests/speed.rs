//! Evaluation does no allocation, and (in release builds) takes well under a microsecond for
//! a typical key policy.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use common::*;
use keyhold_policy::{Allow, Caller, Policy, PolicyKind, Request};

/// Counts this thread's allocations, so parallel tests do not disturb each other.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Four statements in the shape of the console's default key policy, with conditions of
/// several kinds.
const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Admins", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Use", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/app", "arn:aws:iam::111122223333:user/alice"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:Department": "IT"},
                   "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["Department", "Project*"]},
                   "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}},
    {"Sid": "No plain HTTP", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"},
                   "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}
]}"#;

fn setup() -> (Policy, keyhold_policy::Facts) {
    let policy = Policy::parse(POLICY, PolicyKind::Key).expect("valid policy");
    let f = facts(&[
        ("kms:EncryptionContext:Department", F::One("IT")),
        (
            "kms:EncryptionContextKeys",
            F::Many(&["Department", "ProjectName"]),
        ),
        ("aws:SourceIp", F::One("10.1.2.3")),
        ("aws:SecureTransport", F::One("true")),
        ("aws:CurrentTime", F::One("2024-05-01T12:00:00Z")),
        ("kms:CallerAccount", F::One("111122223333")),
        ("kms:ViaService", F::One("ec2.us-east-1.amazonaws.com")),
    ]);
    (policy, f)
}

fn request<'a>(caller: &'a str, f: &'a keyhold_policy::Facts) -> Request<'a> {
    Request {
        caller: Caller {
            arn: caller,
            account_id: ACCOUNT,
        },
        action: "kms:Decrypt",
        resource: KEY,
        facts: f,
    }
}

#[test]
fn evaluation_does_not_allocate() {
    let (policy, f) = setup();
    let callers = [
        APP_SESSION,
        ALICE,
        BOB,
        ROOT,
        "arn:aws:sts::111122223333:assumed-role/Admin/x",
    ];
    let before = allocations();
    let mut principal = 0;
    for _ in 0..100 {
        for caller in callers {
            let e = policy.evaluate(&request(caller, &f));
            assert!(!e.explicit_deny);
            if e.allow == Allow::Principal {
                principal += 1;
            }
        }
    }
    assert_eq!(allocations() - before, 0, "evaluate allocated");
    // The app session, alice and the root.
    assert_eq!(principal, 300);
}

/// `cargo test --release -p keyhold-policy --test speed -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn evaluation_is_fast() {
    let (policy, f) = setup();
    let n = 1_000_000;
    for (name, caller) in [("role session", APP_SESSION), ("other user", BOB)] {
        let start = Instant::now();
        let mut allowed = 0usize;
        for _ in 0..n {
            let e = policy.evaluate(std::hint::black_box(&request(caller, &f)));
            allowed += usize::from(e.allow != Allow::None);
        }
        let per = start.elapsed().as_nanos() / n as u128;
        println!("{name}: {per} ns per evaluation ({allowed} allowed)");
        if !cfg!(debug_assertions) {
            assert!(per < 2_000, "{per} ns per evaluation");
        }
    }
}
