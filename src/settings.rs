//! What job and task bodies need from the configuration besides the database and the queue:
//! the application's zone, the mailer, the outbox stream and progress bars. The runtime
//! carries them, so a body reaches them through its `JobContext`.

use std::path::PathBuf;

use chrono_tz::Tz;

use crate::config::{AiConfig, Config};
use crate::mail::{MailError, Mailer};
use crate::progress::Progress;

/// What task bodies need from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `APP_TIMEZONE`: the zone "yesterday" is reckoned in for `analytics:sync`.
    pub app_timezone: Tz,
    /// Where emails go.
    pub mailer: Mailer,
    /// The Redis stream published outbox messages are also added to, if any.
    pub outbox_stream: Option<String>,
    /// The Redis server of that stream.
    pub redis_url: String,
    /// Progress bars for work run by hand.
    pub progress: Progress,
    /// Where mail for the operators goes (payments to review): `MAIL_FROM_ADDRESS`, the
    /// application's own mailbox.
    pub operators_email: String,
    /// `CONECTA_STORAGE_PATH`: exports and reports go to `exports/` under it, product images
    /// are read from `app/public/` under it (Laravel's public disk).
    pub storage: PathBuf,
    /// Signs download and unsubscribe links (`APP_KEY`), when set.
    pub signer: Option<crate::signed_url::Signer>,
    /// `APP_URL`: the base of signed links.
    pub app_url: String,
    /// Who writes tenant profiles.
    pub ai: AiConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            app_timezone: Tz::UTC,
            mailer: Mailer::Log,
            outbox_stream: None,
            redis_url: "redis://127.0.0.1:6379/".into(),
            progress: Progress::quiet(),
            operators_email: "noreply@vito.test".into(),
            storage: PathBuf::from("storage"),
            signer: None,
            app_url: "http://localhost".into(),
            ai: AiConfig::default(),
        }
    }
}

impl Settings {
    /// The settings `config` describes.
    pub fn from_config(config: &Config) -> Result<Self, MailError> {
        Ok(Self {
            app_timezone: config.app_timezone,
            mailer: Mailer::from_config(&config.mail)?,
            outbox_stream: config.outbox_stream.clone(),
            redis_url: config.redis_url.clone(),
            progress: Progress::quiet(),
            operators_email: config.mail.from.clone(),
            storage: config.storage.clone(),
            signer: config
                .http
                .app_key
                .as_deref()
                .map(crate::signed_url::Signer::new),
            app_url: config.http.app_url.clone(),
            ai: config.ai.clone(),
        })
    }

    /// Where exports and reports are written and downloads served from.
    pub fn exports_dir(&self) -> PathBuf {
        self.storage.join("exports")
    }

    /// Where product images are read from (Laravel's public disk).
    pub fn public_dir(&self) -> PathBuf {
        public_dir(&self.storage)
    }
}

/// The public disk (product images) under storage folder `storage`.
pub fn public_dir(storage: &std::path::Path) -> PathBuf {
    storage.join("app").join("public")
}
