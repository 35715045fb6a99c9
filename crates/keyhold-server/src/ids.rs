//! Per-request identifiers (`x-amzn-RequestId`, an audit record's `eventID`).
//!
//! Random UUIDs, as AWS's are, but drawn from the thread's CSPRNG (`rand::thread_rng`, seeded
//! and periodically reseeded from the operating system) rather than from the operating system
//! each time: `Uuid::new_v4` costs one `getrandom(2)` system call per id, two per audited
//! request, which showed in profiles under load. Identifiers need to be unique and
//! unguessable, not secret.

/// A new random (version 4) UUID in its hyphenated form.
pub fn request_uuid() -> String {
    random_uuid().to_string()
}

/// A new random (version 4) UUID, for callers that format it into a buffer of their own.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_distinct() {
        let a = request_uuid();
        let b = request_uuid();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).expect("uuid");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
    }
}
