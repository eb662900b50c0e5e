//! Certificates for a test's TLS server: a certificate authority of the test's own and a server
//! certificate it signed (ECDSA P-256, made with rcgen), as PEM strings and as files.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::unique;

pub struct TestPki {
    /// The server's certificate and key (PEM).
    pub server_certificate: String,
    pub server_key: String,
    /// The authority that signed it, as a root certificate file (`sslrootcert=`).
    pub ca_file: PathBuf,
    /// Another authority, which signed nothing here.
    pub other_ca_file: PathBuf,
    dir: PathBuf,
}

impl TestPki {
    /// A server certificate for `names` (DNS names), signed by a fresh authority.
    pub fn new(names: &[&str]) -> TestPki {
        let dir = std::env::temp_dir().join(unique("acq-pki-"));
        std::fs::create_dir(&dir).unwrap();
        let (ca_pem, issuer) = authority("acquirer test CA");
        let (other_pem, _) = authority("someone else's CA");
        let server_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let server = CertificateParams::new(names).unwrap().signed_by(&server_key, &issuer).unwrap();
        let (ca_file, other_ca_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
        std::fs::write(&ca_file, ca_pem).unwrap();
        std::fs::write(&other_ca_file, other_pem).unwrap();
        TestPki {
            server_certificate: server.pem(),
            server_key: server_key.serialize_pem(),
            ca_file,
            other_ca_file,
            dir,
        }
    }
}

fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
