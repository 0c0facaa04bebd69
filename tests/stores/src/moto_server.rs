//! moto's server (`moto[server]`, in the project's `.venv/moto`): DynamoDB,
//! SQS and SSM on one loopback port, spoken to by the real AWS SDKs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct MotoServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The credentials and region the tests sign with (moto checks neither).
pub const REGION: &str = "us-east-1";

impl MotoServer {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::start_on(crate::free_port())
    }

    /// Starts one on `port` (again, after the last one there was dropped:
    /// a restarted moto has lost every table and parameter).
    pub fn start_on(port: u16) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        // moto's own server, with DynamoDB requests taken one at a time
        // (scripts/python/moto_serial.py says why).
        let program = root.join(".venv/moto/bin/python");
        let child = Command::new(&program)
            .arg(root.join("scripts/python/moto_serial.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): scripts/setup.sh installs it",
                    program.display()
                )
            });
        let server = MotoServer { child, port };
        let started = Instant::now();
        while !server.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:<port>`, the endpoint of every service it serves.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a child process needs to reach it through the AWS
    /// SDK's standard settings (endpoint, region, test credentials).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            // No instance-metadata lookups on a machine that is not EC2.
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// An AWS SDK configuration that reaches it (any service's client:
    /// `aws_sdk_sqs::Client::new(&moto.sdk_config())`).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .http_client(mangaassist_bedrock::invoker::https_client(8))
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.url())
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "testing", "testing", None, None, "test",
                    ),
                ),
            )
            .build()
    }

    /// Whether its own API answers (it is up and has loaded).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
