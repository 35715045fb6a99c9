//! PKCS#11 access via cryptoki: session pool, login, typed CKR errors, AES-GCM inside the token.
