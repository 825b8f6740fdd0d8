//! hubsoak over https with `--ca-file`: the simulator behind configurable-http-proxy
//! (from tests/realhub/install.sh) terminating TLS with a certificate of a test CA made
//! here. The API calls, the progress stream, the form login's cookies and the kernel
//! websocket all go through TLS; without the CA nothing gets through.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn chp() -> PathBuf {
    std::env::var_os("HUBSOAK_REAL_HUB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/real-hub"))
        .join("node_modules/.bin/configurable-http-proxy")
}

#[tokio::test(flavor = "multi_thread")]
async fn journeys_run_over_https_with_the_ca_file_and_not_without_it() {
    let (hub, server) = start_mock(fast()).await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let port = free_port();
    let proxy = chp();
    assert!(
        proxy.exists(),
        "{} missing: run tests/realhub/install.sh",
        proxy.display()
    );
    let _proxy = tokio::process::Command::new(proxy)
        .args(["--ip", "127.0.0.1", "--api-ip", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "--api-port",
            &free_port().to_string(),
        ])
        .arg("--ssl-key")
        .arg(&key)
        .arg("--ssl-cert")
        .arg(&cert)
        .args(["--default-target", &format!("http://{}", server.addr)])
        .env("CONFIGPROXY_AUTH_TOKEN", "tls-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("configurable-http-proxy starts");
    let endpoint = format!("https://127.0.0.1:{port}/hub/api");
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = trusting
            .get(format!("https://127.0.0.1:{port}/hub/health"))
            .send()
            .await;
        if health.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the TLS proxy did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let env = [
        ("JUPYTERHUB_ENDPOINT", endpoint.as_str()),
        ("JUPYTERHUB_API_TOKEN", TOKEN),
    ];
    let simulate = [
        "simulate",
        "2",
        "--auth",
        "form",
        "--session-min",
        "1s",
        "--session-max",
        "1s",
        "--start-delay-max",
        "200ms",
        "--think-time",
        "200ms",
    ];
    let out = hubsoak(&simulate, &env).await;
    assert_ne!(
        out.code,
        0,
        "the test CA is not trusted by default: {}",
        out.all()
    );
    assert_eq!(hub.stats().users_created, 0, "nothing got through");

    let mut with_ca = vec!["--ca-file", ca.to_str().unwrap()];
    with_ca.extend(simulate);
    let (out, r) = hubsoak_reporting(&with_ca, &env).await;
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(successes(&r, "login"), 2, "{}", out.stdout);
    assert_eq!(successes(&r, "journey"), 2, "{}", out.stdout);
    assert!(
        successes(&r, "execute") >= 2,
        "over the websocket through TLS"
    );
    assert_eq!(hub.server_counts(), (0, 0, 0));
}
