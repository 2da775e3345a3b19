//! Campaign mail through the real SMTP path: a local SMTP server (Python's `aiosmtpd`) that
//! requires STARTTLS and AUTH, with a certificate of its own trusted through `MAIL_CA_FILE`;
//! real `conecta` processes fan the campaign out and send it; a worker is SIGKILLed in the
//! middle and another takes over. The server must receive exactly one message per recipient,
//! each over TLS and authenticated.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conecta::store::{Db, campaigns, demo};

use crate::support;

const SERVER: &str = r#"
import os, ssl, sys, time, uuid
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

out, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, uuid.uuid4().hex + ".eml")
        content = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        head = "X-Test-Rcpt: %s\r\nX-Test-Tls: %s\r\nX-Test-Auth: %s\r\n" % (
            ",".join(envelope.rcpt_tos), "yes" if session.ssl else "no", "yes" if session.authenticated else "no")
        with open(name + ".tmp", "wb") as f:
            f.write(head.encode() + content)
        os.rename(name + ".tmp", name)
        return "250 OK"

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"conecta" and auth_data.password == b"s3cret"
    return AuthResult(success=ok)

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                        require_starttls=True, auth_required=True, authenticator=authenticate)
controller.start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

struct Smtp {
    child: Child,
    port: u16,
    inbox: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn messages(&self) -> Vec<String> {
        let mut m: Vec<String> = std::fs::read_dir(&self.inbox)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        m.sort();
        m
    }
}

/// A self-signed certificate for 127.0.0.1 and the SMTP server, or `None` (skipped) where
/// `openssl` or `aiosmtpd` is missing.
fn smtp_server(dir: &Path) -> Option<Smtp> {
    let has_aiosmtpd = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_aiosmtpd {
        support::skip("python3 with aiosmtpd not installed (pip install aiosmtpd)");
        return None;
    }
    // A CA of the test's own (what MAIL_CA_FILE trusts) and a server certificate it signed.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=conecta test CA",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "cert.pem",
            "-extfile",
            "leaf.ext",
        ],
    ];
    for args in steps {
        let made = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !made.is_ok_and(|s| s.success()) {
            support::skip("openssl not installed");
            return None;
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let script = dir.join("smtp_server.py");
    std::fs::write(&script, SERVER).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&inbox)
        .arg(&cert)
        .arg(&key)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the SMTP server did not start");
    Some(Smtp { child, port, inbox })
}

fn conecta(dir: &Path, smtp: &Smtp, db_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conecta"));
    c.current_dir(dir);
    for v in [
        "QUEUE_CONNECTION",
        "REDIS_URL",
        "CONECTA_NOW",
        "CONECTA_SPEED",
    ] {
        c.env_remove(v);
    }
    c.env("DATABASE_URL", db_url)
        .env("QUEUE_CONNECTION", "database")
        .env("QUEUE_RETRY_AFTER", "4")
        .env("MAIL_MAILER", "smtp")
        .env("MAIL_HOST", "127.0.0.1")
        .env("MAIL_PORT", smtp.port.to_string())
        .env("MAIL_ENCRYPTION", "tls")
        .env("MAIL_USERNAME", "conecta")
        .env("MAIL_PASSWORD", "s3cret")
        .env("MAIL_CA_FILE", dir.join("ca.pem"))
        .env("MAIL_FROM_ADDRESS", "news@vito.test")
        .env(
            "APP_KEY",
            "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("APP_URL", "https://app.test");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_mail_over_starttls_and_auth_reaches_each_recipient_once_across_a_killed_worker() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = smtp_server(dir.path()) else {
        return;
    };
    let db_url = format!("sqlite:{}", dir.path().join("c.sqlite").display());
    let db = Db::connect(&db_url, 4).await.unwrap();
    db.migrate().await.unwrap();
    let now = chrono::Utc::now();
    demo::insert_rows(
        &db,
        &demo::TENANTS,
        &[vec![
            demo::Cell::Int(1),
            demo::Cell::Text("Tienda SMTP".into()),
            demo::Cell::Text("approved".into()),
            demo::Cell::Int(1),
            demo::Cell::Text("America/Tegucigalpa".into()),
            demo::Cell::Text("owner@example.test".into()),
            demo::Cell::Int(1),
            demo::Cell::Int(1),
            demo::Cell::Int(now.timestamp()),
        ]],
    )
    .await
    .unwrap();
    let recipients = 12;
    let customers: Vec<Vec<demo::Cell>> = (1..=recipients + 3)
        .map(|i| {
            vec![
                demo::Cell::Int(i),
                demo::Cell::Int(1),
                demo::Cell::Text(format!("Cliente {i}")),
                demo::Cell::Text(format!("c{i}@example.test")),
                demo::Cell::Int(i64::from(i <= recipients)),
                demo::Cell::Int(now.timestamp()),
            ]
        })
        .collect();
    demo::insert_rows(&db, &demo::CUSTOMERS, &customers)
        .await
        .unwrap();
    let campaign = campaigns::create(&db, 1, "Ofertas", "Hola {{name}}\n", now)
        .await
        .unwrap();

    // Fan out at 4 messages a second for the tenant.
    let out = conecta(dir.path(), &smtp, &db_url)
        .args(["run-task", "campaigns:send"])
        .arg("--arg")
        .arg(format!("campaign={campaign}"))
        .args(["--arg", "rate=4/s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One worker sends five, then dies between two sends (while it waits for its next slot).
    let worker = |concurrency: &str| {
        conecta(dir.path(), &smtp, &db_url)
            .args([
                "worker",
                "--queue",
                "default",
                "--tries",
                "3",
                "--timeout",
                "3",
                "--sleep",
                "1",
            ])
            .args(["--concurrency", concurrency])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = worker("1");
    support::wait_until("five messages", Duration::from_secs(30), || {
        smtp.messages().len() >= 5
    });
    std::thread::sleep(Duration::from_millis(100));
    first.kill().unwrap();
    first.wait().unwrap();
    let sent_before = smtp.messages().len();
    assert!(sent_before < recipients as usize, "the kill came too late");

    // Two new workers finish the campaign.
    let mut others = [worker("2"), worker("2")];
    let check = Db::connect(&db_url, 1).await.unwrap();
    let start = Instant::now();
    loop {
        let c = campaigns::find(&check, campaign).await.unwrap().unwrap();
        if c.status == "sent" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "campaign still {}",
            c.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in &mut others {
        let _ = w.kill();
        let _ = w.wait();
    }
    let messages = smtp.messages();
    let mut to: Vec<String> = messages
        .iter()
        .map(|m| {
            m.lines()
                .next()
                .unwrap()
                .trim_start_matches("X-Test-Rcpt: ")
                .to_string()
        })
        .collect();
    to.sort();
    let mut expected: Vec<String> = (1..=recipients)
        .map(|i| format!("c{i}@example.test"))
        .collect();
    expected.sort();
    assert_eq!(to, expected, "exactly one message per opted-in recipient");
    for m in &messages {
        assert!(
            m.contains("X-Test-Tls: yes") && m.contains("X-Test-Auth: yes"),
            "{m}"
        );
        assert!(
            m.contains("Subject: Ofertas") && m.contains("/unsubscribe/"),
            "{m}"
        );
    }
    let c = campaigns::find(&check, campaign).await.unwrap().unwrap();
    assert_eq!((c.sent_count, c.failed_count), (recipients, 0));
}
