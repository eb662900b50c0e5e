//! The test keys, in one place: the merchant's and Alipay's RSA key pairs of
//! `tests/vectors/keys` (made with OpenSSL, which the signature vectors check against), and a
//! test MD5 key. For tests, benches, fuzzing and the sandbox's test merchants only: behind the
//! `test-keys` feature, never in a production build.

/// The directory of the key files, for tools that take a file (`--file`, `--platform-key`).
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys");

/// The merchant's app private key, PKCS#8 PEM.
pub const MERCHANT_PRIVATE: &str = include_str!("../tests/vectors/keys/merchant-private-pkcs8.pem");
/// The same key, PKCS#1 PEM.
pub const MERCHANT_PRIVATE_PKCS1: &str = include_str!("../tests/vectors/keys/merchant-private-pkcs1.pem");
/// The same key, PKCS#1 bare base64 (as Alipay's key tool writes it).
pub const MERCHANT_PRIVATE_PKCS1_B64: &str = include_str!("../tests/vectors/keys/merchant-private-pkcs1.b64");
/// The merchant's app public key, SPKI PEM.
pub const MERCHANT_PUBLIC: &str = include_str!("../tests/vectors/keys/merchant-public-spki.pem");
/// The same key, SPKI bare base64.
pub const MERCHANT_PUBLIC_B64: &str = include_str!("../tests/vectors/keys/merchant-public-spki.b64");
/// Alipay's (the sandbox's) platform private key file, PKCS#8 PEM.
pub const ALIPAY_PRIVATE_FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys/alipay-private-pkcs8.pem");
/// Alipay's platform public key, SPKI PEM.
pub const ALIPAY_PUBLIC: &str = include_str!("../tests/vectors/keys/alipay-public-spki.pem");
/// A merchant's MD5 key (Global MAPI).
pub const MD5_KEY: &str = "x7k2m9q4w8e1r5t3y6u0i2o4p8a1s5d3";

/// The path of key file `name` (e.g. `merchant-private-pkcs1.pem`).
pub fn file(name: &str) -> String {
    format!("{DIR}/{name}")
}
