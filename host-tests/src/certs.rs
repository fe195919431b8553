//! Throwaway certificates for TLS tests and the demo, made with rcgen: a CA
//! and a server certificate it signed, written where dflockd's
//! `--tls-cert`/`--tls-key` can read them. Removed when dropped.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA, and a server certificate with its key on disk.
pub struct Pki {
    /// The CA certificate, PEM: what a client trusts.
    pub ca_pem: String,
    /// The CA's key, to sign more certificates.
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

/// The files of one server certificate.
pub struct ServerCert {
    /// The certificate chain (PEM) for `--tls-cert`.
    pub cert: PathBuf,
    /// Its private key (PEM) for `--tls-key`.
    pub key: PathBuf,
}

impl ServerCert {
    /// The dflockd flags that serve TLS with this certificate.
    pub fn flags(&self) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

impl Pki {
    /// A new CA named `name`, with a folder of its own for the files.
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).expect("CA certificate");
        let dir = std::env::temp_dir().join(format!(
            "dflockd-pki-{}-{name}-{:x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("pki folder");
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
            dir,
        }
    }

    /// A server certificate for `names` (DNS names or IP literals), valid
    /// from `not_before` to `not_after` (years), written to disk.
    pub fn server_cert(&self, file: &str, names: &[&str], years: (i32, i32)) -> ServerCert {
        let key = KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        params
            .distinguished_name
            .push(DnType::CommonName, "dflockd test server");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        let files = ServerCert {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
        files
    }

    /// The CA certificate written to a file (in this PKI's folder, removed
    /// with it), for clients that take a path.
    pub fn ca_file(&self) -> PathBuf {
        let path = self.dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the CA");
        path
    }

    /// A client certificate chain and its key (both PEM), for mutual TLS.
    pub fn client_cert(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("client certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A valid server certificate for `127.0.0.1` and `localhost`.
    pub fn localhost(&self) -> ServerCert {
        self.server_cert("localhost", &["127.0.0.1", "localhost"], (2020, 2090))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
