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
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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

/// Why a mail could not be sent, or a mailer not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `MAIL_HOST` is not a usable SMTP relay.
    #[error("MAIL_HOST {host:?}: {source}")]
    Host {
        /// The host.
        host: String,
        /// Why.
        source: lettre::transport::smtp::Error,
    },
    /// A file of the `file` mailer could not be written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file or folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An address does not parse.
    #[error("bad address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP send failed: {0}")]
    Smtp(lettre::transport::smtp::Error),
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
    pub fn from_config(c: &MailConfig) -> Result<Self, MailError> {
        let bad_host = |source| MailError::Host {
            host: c.host.clone(),
            source,
        };
        Ok(match c.mailer {
            MailerKind::File => Mailer::File {
                dir: c.path.clone(),
                from: c.from.clone(),
            },
            MailerKind::Log => Mailer::Log,
            MailerKind::Smtp => {
                let tls = match c.encryption.as_deref() {
                    Some(mode @ ("tls" | "ssl")) => {
                        let mut params = TlsParameters::builder(c.host.clone());
                        if let Some(ca) = &c.ca_file {
                            let pem = std::fs::read(ca).map_err(|source| MailError::File {
                                path: ca.display().to_string(),
                                source,
                            })?;
                            let cert = Certificate::from_pem(&pem).map_err(|e| {
                                MailError::Build(format!(
                                    "MAIL_CA_FILE {}: not a PEM certificate: {e}",
                                    ca.display()
                                ))
                            })?;
                            params = params.add_root_certificate(cert);
                        }
                        let params = params.build_rustls().map_err(bad_host)?;
                        if mode == "tls" {
                            Tls::Required(params)
                        } else {
                            Tls::Wrapper(params)
                        }
                    }
                    _ => Tls::None,
                };
                let builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host).tls(tls);
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
    pub async fn send(&self, mail: &Mail, now: DateTime<Utc>) -> Result<bool, MailError> {
        match self {
            Mailer::File { dir, from } => {
                let name = sanitize(&mail.key);
                let path = dir.join(format!("{name}.eml"));
                if path.exists() {
                    return Ok(false);
                }
                std::fs::create_dir_all(dir).map_err(|source| MailError::File {
                    path: dir.display().to_string(),
                    source,
                })?;
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
                    .map_err(|source| MailError::File {
                        path: path.display().to_string(),
                        source,
                    })?;
                Ok(true)
            }
            Mailer::Log => {
                tracing::info!(to = %mail.to, subject = %mail.subject, key = %mail.key, "mail");
                Ok(true)
            }
            Mailer::Smtp { transport, from } => {
                let parse = |a: &str| {
                    a.parse::<Mailbox>().map_err(|e| MailError::Address {
                        address: a.to_string(),
                        reason: e.to_string(),
                    })
                };
                let message = Message::builder()
                    .from(parse(from)?)
                    .to(parse(&mail.to)?)
                    .subject(&mail.subject)
                    .message_id(Some(format!("<{}@conecta>", sanitize(&mail.key))))
                    .body(mail.body.clone())
                    .map_err(|e| MailError::Build(e.to_string()))?;
                transport.send(message).await.map_err(MailError::Smtp)?;
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
