//! The mailer behind reminder and notification emails (`MAIL_MAILER`).
//!
//! Every mail carries a key (its outbox message) as its Message-ID. The `file` mailer writes
//! `<key>.eml` once, atomically, and treats an existing file as already sent, so a job retried
//! after a crash between sending and acknowledging does not send a second copy. SMTP cannot
//! take a message back, so there the guarantee is at least once, with the same Message-ID
//! letting receivers drop the duplicate.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, MailerKind};

/// One email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// A key unique to this mail; sending the same key twice sends once where the mailer can.
    pub key: String,
    /// The recipient.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// `.eml` files in a folder.
    File {
        /// The folder.
        dir: PathBuf,
        /// The sender.
        from: String,
    },
    /// An SMTP server.
    Smtp {
        /// The connection pool.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The sender.
        from: String,
    },
    /// A log line per mail.
    Log,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::File { dir, .. } => write!(f, "Mailer::File({})", dir.display()),
            Mailer::Smtp { .. } => write!(f, "Mailer::Smtp"),
            Mailer::Log => write!(f, "Mailer::Log"),
        }
    }
}

impl Mailer {
    /// The mailer `MAIL_*` describes.
    pub fn from_config(c: &MailConfig) -> Result<Self, String> {
        Ok(match c.mailer {
            MailerKind::File => Mailer::File {
                dir: c.path.clone(),
                from: c.from.clone(),
            },
            MailerKind::Log => Mailer::Log,
            MailerKind::Smtp => {
                let builder = match c.encryption.as_deref() {
                    Some("tls") => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                        .map_err(|e| format!("MAIL_HOST {:?}: {e}", c.host))?,
                    Some("ssl") => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)
                        .map_err(|e| format!("MAIL_HOST {:?}: {e}", c.host))?,
                    _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
                };
                let mut builder = builder.port(c.port);
                if let Some(user) = &c.username {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        c.password.clone().unwrap_or_default(),
                    ));
                }
                Mailer::Smtp {
                    transport: builder.build(),
                    from: c.from.clone(),
                }
            }
        })
    }

    /// Sends `mail` as of `now`. Returns false when the mailer knows it was already sent.
    pub async fn send(&self, mail: &Mail, now: DateTime<Utc>) -> Result<bool, String> {
        match self {
            Mailer::File { dir, from } => {
                let name = sanitize(&mail.key);
                let path = dir.join(format!("{name}.eml"));
                if path.exists() {
                    return Ok(false);
                }
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let text = format!(
                    "Message-ID: <{name}@conecta>\r\nDate: {}\r\nFrom: {from}\r\nTo: {}\r\nSubject: {}\r\n\r\n{}\r\n",
                    now.to_rfc2822(),
                    mail.to,
                    mail.subject,
                    mail.body
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, text)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(true)
            }
            Mailer::Log => {
                tracing::info!(to = %mail.to, subject = %mail.subject, key = %mail.key, "mail");
                Ok(true)
            }
            Mailer::Smtp { transport, from } => {
                let parse = |a: &str| {
                    a.parse::<Mailbox>()
                        .map_err(|e| format!("bad address {a:?}: {e}"))
                };
                let message = Message::builder()
                    .from(parse(from)?)
                    .to(parse(&mail.to)?)
                    .subject(&mail.subject)
                    .message_id(Some(format!("<{}@conecta>", sanitize(&mail.key))))
                    .body(mail.body.clone())
                    .map_err(|e| format!("cannot build the message: {e}"))?;
                transport
                    .send(message)
                    .await
                    .map_err(|e| format!("SMTP send failed: {e}"))?;
                Ok(true)
            }
        }
    }
}

fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
