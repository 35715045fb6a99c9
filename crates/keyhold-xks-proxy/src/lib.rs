//! Keyhold's own XKS proxy: the XKS Proxy API v1 edge over PKCS#11 HSMs or a built-in software key store.
