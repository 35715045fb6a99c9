//! Name conversions and the Java-to-`regex` pattern translation used by codegen.

/// `KeyId` -> `key_id`, `AWSAccountId` -> `aws_account_id`, `KMSInternalException` ->
/// `kms_internal_exception`.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

/// Shape name -> name of its static descriptor: `KeyIdType` -> `KEY_ID_TYPE`.
pub fn screaming(name: &str) -> String {
    snake(name).to_ascii_uppercase()
}

/// Coral's path segment for a member: the member name with its first letter in lower case.
pub fn lower_camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Enum value -> UpperCamelCase variant: `RSA_2048` -> `Rsa2048`, `PendingDeletion` ->
/// `PendingDeletion`, `SM2PKE` -> `Sm2pke`.
pub fn variant(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()) {
        if part.is_empty() {
            continue;
        }
        let has_lower = part.chars().any(|c| c.is_ascii_lowercase());
        let mut chars = part.chars();
        let first = chars.next().unwrap_or_default();
        out.push(first.to_ascii_uppercase());
        if has_lower {
            out.extend(chars);
        } else {
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// Rust keywords that cannot be used as plain identifiers.
pub fn is_keyword(ident: &str) -> bool {
    matches!(
        ident,
        "as" | "async"
            | "await"
            | "break"
            | "const"
            | "continue"
            | "crate"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "false"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "static"
            | "struct"
            | "super"
            | "trait"
            | "true"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "abstract"
            | "become"
            | "box"
            | "do"
            | "final"
            | "gen"
            | "macro"
            | "override"
            | "priv"
            | "try"
            | "typeof"
            | "unsized"
            | "virtual"
            | "yield"
    )
}

/// Translates a botocore (Java `java.util.regex`) pattern into `regex` crate syntax with
/// full-match semantics.
///
/// * The result is `^(?:<pattern>)$`: Coral matches the whole value.
/// * Java's `\d`, `\w`, `\s` (and negations) are ASCII-only, the `regex` crate's are Unicode, so
///   they are replaced by explicit ASCII classes (nested classes work inside `[...]` too).
/// * Everything else (`\uXXXX`, escaped punctuation, ranges) is passed through; whether the
///   result compiles is checked by the caller.
pub fn java_pattern_to_rust(pattern: &str) -> String {
    let mut out = String::from("^(?:");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str(r"[\t\n\x0B\x0C\r ]"),
            Some('S') => out.push_str(r"[^\t\n\x0B\x0C\r ]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(snake("KeyId"), "key_id");
        assert_eq!(snake("AWSAccountId"), "aws_account_id");
        assert_eq!(snake("KMSInternalException"), "kms_internal_exception");
        assert_eq!(snake("XksProxyUriPathType"), "xks_proxy_uri_path_type");
        assert_eq!(snake("Ed25519Key"), "ed25519_key");
        assert_eq!(screaming("KeyIdType"), "KEY_ID_TYPE");
    }

    #[test]
    fn camel_and_variants() {
        assert_eq!(lower_camel("KeyId"), "keyId");
        assert_eq!(
            lower_camel("XksProxyAuthenticationCredential"),
            "xksProxyAuthenticationCredential"
        );
        assert_eq!(variant("RSA_2048"), "Rsa2048");
        assert_eq!(variant("ECC_NIST_P256"), "EccNistP256");
        assert_eq!(variant("PendingDeletion"), "PendingDeletion");
        assert_eq!(variant("SM2PKE"), "Sm2pke");
        assert_eq!(variant("RSAES_PKCS1_V1_5"), "RsaesPkcs1V15");
        assert_eq!(variant("2FA"), "V2fa");
    }

    #[test]
    fn patterns() {
        assert_eq!(java_pattern_to_rust("[0-9]{12}"), "^(?:[0-9]{12})$");
        assert_eq!(java_pattern_to_rust(r"[\w]+"), "^(?:[[0-9A-Za-z_]]+)$");
        assert_eq!(java_pattern_to_rust(r"v\d{1,2}\/"), r"^(?:v[0-9]{1,2}\/)$");
        for p in [
            r"[\w]+",
            r"^[\w+=,.@:/-]+$",
            r"^[a-zA-Z0-9:/_\s.-]+$",
            r"[\u0020-\u00FF]*",
        ] {
            regex::Regex::new(&java_pattern_to_rust(p)).unwrap();
        }
        let w = regex::Regex::new(&java_pattern_to_rust(r"[\w]+")).unwrap();
        assert!(w.is_match("abc_9"));
        assert!(!w.is_match("é"));
        assert!(!w.is_match("a b"));
    }
}
