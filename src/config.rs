//! Configuration from the environment and a `.env` file, with Laravel's key names (README, Configuration).
//!
//! The process environment wins over the file. Every value is validated when the
//! configuration is built, so a bad value stops the program at start with the key named,
//! never later in the middle of work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::suggest::did_you_mean;

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad value for {key}: {message}")]
pub struct ConfigError {
    /// The key at fault.
    pub key: String,
    /// What was expected and what was given.
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// The raw key/value pairs: the process environment over the `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Reads `env_file` (or `./.env` if it exists) under the process environment. A named
    /// file that does not exist is an error; a missing `./.env` is not.
    pub fn load(env_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut vars = HashMap::new();
        let (path, required) = match env_file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(".env"), false),
        };
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    let (k, v) = item.map_err(|e| {
                        ConfigError::new(
                            "--env-file",
                            format!("cannot parse {}: {e}", path.display()),
                        )
                    })?;
                    vars.insert(k, v);
                }
            }
            Err(e) if required || !e.not_found() => {
                return Err(ConfigError::new(
                    "--env-file",
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
            Err(_) => {}
        }
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    /// An environment made of exactly these pairs (for tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::new(key, format!("expected {expected}, got: {v:?}"))),
        }
    }
}

/// Reads an IANA zone name, suggesting the closest one on a typo.
pub fn parse_timezone(key: &str, name: &str) -> Result<Tz, ConfigError> {
    Tz::from_str(name.trim()).map_err(|_| {
        let hint = did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        ConfigError::new(
            key,
            format!("expected an IANA time zone like \"America/Tegucigalpa\", got: {name:?}{hint}"),
        )
    })
}

/// The settings every command shares.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_TIMEZONE`: the zone of entries when the schedule file sets none.
    pub app_timezone: Tz,
    /// `CONECTA_SCHEDULE`: the schedule file.
    pub schedule_path: PathBuf,
    /// `CONECTA_NOW`: where a simulated clock starts.
    pub now: Option<DateTime<Utc>>,
    /// `CONECTA_SPEED`: how fast a simulated clock runs.
    pub speed: Option<f64>,
    /// `QUEUE_CONNECTION`: which queue driver.
    pub queue_connection: QueueConnection,
    /// `QUEUE_RETRY_AFTER`: seconds before a reserved job whose worker vanished is delivered
    /// again.
    pub retry_after: u64,
    /// `REDIS_URL`, or one built from `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`/`REDIS_DB`.
    pub redis_url: String,
    /// `REDIS_PREFIX`: every Redis key starts with it.
    pub redis_prefix: String,
    /// `DATABASE_URL`, or one built from `DB_CONNECTION` and `DB_*`.
    pub database_url: String,
    /// `CONECTA_LEASE`: seconds a scheduler's running-lock lasts without renewal; a run whose
    /// process died frees its entry within this.
    pub lease_seconds: u64,
    /// `MAIL_*`: how reminder and notification emails leave.
    pub mail: MailConfig,
    /// `CONECTA_OUTBOX_STREAM`: a Redis stream each published outbox message is also added
    /// to (`XADD`), for consumers outside conecta; none by default.
    pub outbox_stream: Option<String>,
    /// The HTTP server's settings (`CONECTA_HTTP_ADDR`, `APP_KEY`, …).
    pub http: HttpConfig,
    /// `CONECTA_STORAGE_PATH`: the folder exports, reports and product images live under
    /// (default `storage`).
    pub storage: PathBuf,
    /// `AI_*`: who writes tenant profiles.
    pub ai: AiConfig,
}

/// `AI_PROVIDER`: who writes tenant profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiProviderKind {
    /// A deterministic profile made from the tenant's own data; no network (the default).
    Offline,
    /// An OpenAI-compatible chat-completions API (`AI_BASE_URL`, `AI_API_KEY`, `AI_MODEL`).
    OpenAi,
}

/// The AI provider's settings.
#[derive(Clone)]
pub struct AiConfig {
    /// Which provider.
    pub provider: AiProviderKind,
    /// `AI_BASE_URL`: the API's base, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// `AI_API_KEY`: sent as a bearer token when set.
    pub api_key: Option<String>,
    /// `AI_MODEL`.
    pub model: String,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            provider: AiProviderKind::Offline,
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
        }
    }
}

impl std::fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("AiConfig")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "set"))
            .field("model", &self.model)
            .finish()
    }
}

fn ai_config(env: &Env) -> Result<AiConfig, ConfigError> {
    let d = AiConfig::default();
    let provider = match env.get("AI_PROVIDER").map(str::trim) {
        None | Some("offline") => AiProviderKind::Offline,
        Some("openai") => AiProviderKind::OpenAi,
        Some(other) => {
            return Err(ConfigError::new(
                "AI_PROVIDER",
                format!("expected offline or openai, got: {other:?}"),
            ));
        }
    };
    let base_url = match env.get("AI_BASE_URL").map(str::trim) {
        None => d.base_url,
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            u.trim_end_matches('/').to_string()
        }
        Some(u) => {
            return Err(ConfigError::new(
                "AI_BASE_URL",
                format!("expected a URL like http://127.0.0.1:8000/v1, got: {u:?}"),
            ));
        }
    };
    Ok(AiConfig {
        provider,
        base_url,
        api_key: env.get("AI_API_KEY").map(str::to_string),
        model: env.get("AI_MODEL").map(str::to_string).unwrap_or(d.model),
    })
}

/// What the HTTP edge (`conecta serve`, and `start` unless `--no-http`) needs. A secret that
/// is not set disables the routes that need it: they answer 503 and say why.
#[derive(Clone)]
pub struct HttpConfig {
    /// `CONECTA_HTTP_ADDR`: where to listen (default `127.0.0.1:8080`).
    pub addr: std::net::SocketAddr,
    /// `APP_KEY` (Laravel's format, `base64:` prefix included), decoded: signs download links.
    pub app_key: Option<Vec<u8>>,
    /// `PAYMENT_WEBHOOK_SECRET`: verifies payment webhooks.
    pub webhook_secret: Option<String>,
    /// `PAYMENT_WEBHOOK_TOLERANCE`: how far a webhook's timestamp may be from now, in seconds
    /// (default 300).
    pub webhook_tolerance: u64,
    /// `CONECTA_API_TOKEN`: the bearer token of `POST /api/dispatch`.
    pub api_token: Option<String>,
    /// `CONECTA_UI_PASSWORD`: the dashboard's login password (else the API token opens it).
    pub ui_password: Option<String>,
    /// `APP_URL`: the base of signed links (default `http://localhost`).
    pub app_url: String,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("HttpConfig")
            .field("addr", &self.addr)
            .field("app_key", &self.app_key.as_ref().map(|_| "set"))
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "set"),
            )
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("api_token", &self.api_token.as_ref().map(|_| "set"))
            .field("ui_password", &self.ui_password.as_ref().map(|_| "set"))
            .field("app_url", &self.app_url)
            .finish()
    }
}

/// Reads the HTTP edge's settings.
fn http_config(env: &Env) -> Result<HttpConfig, ConfigError> {
    let addr = match env.get("CONECTA_HTTP_ADDR") {
        None => std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(a) => a.trim().parse().map_err(|_| {
            ConfigError::new(
                "CONECTA_HTTP_ADDR",
                format!(
                    "expected an address and port like 127.0.0.1:8080 or 0.0.0.0:80, got: {a:?}"
                ),
            )
        })?,
    };
    let app_key = match env.get("APP_KEY").map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(match k.strip_prefix("base64:") {
            Some(b64) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        ConfigError::new(
                            "APP_KEY",
                            format!("the part after \"base64:\" is not base64 ({e}); generate one with `php artisan key:generate --show`"),
                        )
                    })?
            }
            None => k.as_bytes().to_vec(),
        }),
    };
    let webhook_tolerance = env
        .parse::<u64>(
            "PAYMENT_WEBHOOK_TOLERANCE",
            "a whole number of seconds like 300",
        )?
        .unwrap_or(300);
    if webhook_tolerance == 0 || webhook_tolerance > 86_400 {
        return Err(ConfigError::new(
            "PAYMENT_WEBHOOK_TOLERANCE",
            "expected a whole number of seconds from 1 to 86400 (a day), like 300",
        ));
    }
    let secret = |key: &str| env.get(key).map(str::to_string).filter(|s| !s.is_empty());
    Ok(HttpConfig {
        addr,
        app_key,
        webhook_secret: secret("PAYMENT_WEBHOOK_SECRET"),
        webhook_tolerance,
        api_token: secret("CONECTA_API_TOKEN"),
        ui_password: secret("CONECTA_UI_PASSWORD"),
        app_url: env
            .get("APP_URL")
            .unwrap_or("http://localhost")
            .trim_end_matches('/')
            .to_string(),
    })
}

/// `MAIL_MAILER`: where mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailerKind {
    /// One `.eml` file per message in `CONECTA_MAIL_PATH` (default `storage/mail/`).
    File,
    /// An SMTP server (`MAIL_HOST`, `MAIL_PORT`, `MAIL_USERNAME`, `MAIL_PASSWORD`,
    /// `MAIL_ENCRYPTION`).
    Smtp,
    /// A log line per message.
    Log,
}

/// The mail settings.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Which mailer.
    pub mailer: MailerKind,
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// SMTP user, if any.
    pub username: Option<String>,
    /// SMTP password, if any.
    pub password: Option<String>,
    /// `tls` (STARTTLS), `ssl` (implicit TLS) or none.
    pub encryption: Option<String>,
    /// The sender.
    pub from: String,
    /// Where the `file` mailer writes.
    pub path: PathBuf,
    /// `MAIL_CA_FILE`: a PEM certificate to trust besides the public roots (an internal
    /// relay's own CA), for `tls` and `ssl`.
    pub ca_file: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            mailer: MailerKind::File,
            host: "127.0.0.1".into(),
            port: 1025,
            username: None,
            password: None,
            encryption: None,
            from: "noreply@vito.test".into(),
            path: PathBuf::from("storage/mail"),
            ca_file: None,
        }
    }
}

fn mail_config(env: &Env) -> Result<MailConfig, ConfigError> {
    let d = MailConfig::default();
    let mailer = match env.get("MAIL_MAILER").unwrap_or("file") {
        "file" => MailerKind::File,
        "smtp" => MailerKind::Smtp,
        "log" => MailerKind::Log,
        other => {
            return Err(ConfigError::new(
                "MAIL_MAILER",
                format!("expected file, smtp or log, got: {other:?}"),
            ));
        }
    };
    let encryption = match env.get("MAIL_ENCRYPTION") {
        None | Some("null") => None,
        Some(e @ ("tls" | "ssl")) => Some(e.to_string()),
        Some(other) => {
            return Err(ConfigError::new(
                "MAIL_ENCRYPTION",
                format!("expected tls, ssl or null, got: {other:?}"),
            ));
        }
    };
    let null = |v: Option<&str>| v.filter(|v| *v != "null").map(str::to_string);
    Ok(MailConfig {
        mailer,
        host: env.get("MAIL_HOST").map(str::to_string).unwrap_or(d.host),
        port: env
            .parse::<u16>("MAIL_PORT", "a port number like 587")?
            .unwrap_or(d.port),
        username: null(env.get("MAIL_USERNAME")),
        password: null(env.get("MAIL_PASSWORD")),
        encryption,
        from: env
            .get("MAIL_FROM_ADDRESS")
            .map(str::to_string)
            .unwrap_or(d.from),
        path: env
            .get("CONECTA_MAIL_PATH")
            .map(PathBuf::from)
            .unwrap_or(d.path),
        ca_file: env.get("MAIL_CA_FILE").map(PathBuf::from),
    })
}

/// The queue drivers (`QUEUE_CONNECTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueConnection {
    /// Redis lists and sorted sets, atomic steps in Lua.
    Redis,
    /// The `jobs` table of the configured database.
    Database,
    /// Runs each job inline when it is dispatched.
    Sync,
}

impl QueueConnection {
    /// The driver named `name` (`redis`, `database` or `sync`), as `QUEUE_CONNECTION` and
    /// `queue:work CONNECTION` spell it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "redis" => Some(QueueConnection::Redis),
            "database" => Some(QueueConnection::Database),
            "sync" => Some(QueueConnection::Sync),
            _ => None,
        }
    }

    /// The name as written in `QUEUE_CONNECTION` and in `failed_jobs.connection`.
    pub fn name(self) -> &'static str {
        match self {
            QueueConnection::Redis => "redis",
            QueueConnection::Database => "database",
            QueueConnection::Sync => "sync",
        }
    }
}

/// The SQLite file used when no database is configured.
pub const DEFAULT_SQLITE: &str = "storage/conecta.sqlite";

fn redis_url(env: &Env) -> Result<String, ConfigError> {
    if let Some(url) = env.get("REDIS_URL") {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                format!("expected a URL like redis://127.0.0.1:6379/0, got: {url:?}"),
            ));
        }
        return Ok(url.to_string());
    }
    let host = env.get("REDIS_HOST").unwrap_or("127.0.0.1");
    let port = env
        .parse::<u16>("REDIS_PORT", "a port number like 6379")?
        .unwrap_or(6379);
    let db = env
        .parse::<u32>("REDIS_DB", "a database number like 0")?
        .unwrap_or(0);
    let auth = match env.get("REDIS_PASSWORD") {
        None | Some("null") => String::new(),
        Some(p) => format!(":{}@", encode(p)),
    };
    Ok(format!("redis://{auth}{host}:{port}/{db}"))
}

fn database_url(env: &Env) -> Result<String, ConfigError> {
    if let Some(url) = env.get("DATABASE_URL") {
        let known = [
            "sqlite:",
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
        ];
        if !known.iter().any(|k| url.starts_with(k)) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                format!("expected a sqlite:, postgres:// or mysql:// URL, got: {url:?}"),
            ));
        }
        return Ok(url.replacen("mariadb://", "mysql://", 1));
    }
    let connection = env.get("DB_CONNECTION").unwrap_or("sqlite");
    let (scheme, default_port) = match connection {
        "sqlite" => {
            let path = env.get("DB_DATABASE").unwrap_or(DEFAULT_SQLITE);
            return Ok(format!("sqlite:{path}"));
        }
        "pgsql" | "postgres" => ("postgres", 5432),
        "mysql" | "mariadb" => ("mysql", 3306),
        other => {
            return Err(ConfigError::new(
                "DB_CONNECTION",
                format!("expected sqlite, pgsql, mysql or mariadb, got: {other:?}"),
            ));
        }
    };
    let host = env.get("DB_HOST").unwrap_or("127.0.0.1");
    let port = env
        .parse::<u16>("DB_PORT", "a port number")?
        .unwrap_or(default_port);
    let database = env.get("DB_DATABASE").unwrap_or("conecta");
    let user = env.get("DB_USERNAME").unwrap_or(if scheme == "postgres" {
        "postgres"
    } else {
        "root"
    });
    let auth = match env.get("DB_PASSWORD") {
        Some(p) => format!("{}:{}", encode(user), encode(p)),
        None => encode(user),
    };
    Ok(format!("{scheme}://{auth}@{host}:{port}/{database}"))
}

/// Percent-encodes the characters that would break a URL's user-info part.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The schedule file used when nothing names one.
pub const DEFAULT_SCHEDULE: &str = "schedules/production.toml";

impl Config {
    /// Builds and validates the configuration from `env`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let app_timezone = match env.get("APP_TIMEZONE") {
            Some(name) => parse_timezone("APP_TIMEZONE", name)?,
            None => Tz::UTC,
        };
        let now = match env.get("CONECTA_NOW") {
            Some(v) => Some(
                crate::rfc3339::parse_instant(v)
                    .map_err(|e| ConfigError::new("CONECTA_NOW", e.to_string()))?,
            ),
            None => None,
        };
        let speed = env.parse::<f64>("CONECTA_SPEED", "a number from 1 to 100000, like 3600")?;
        if speed.is_some_and(|s| !(s.is_finite() && (1.0..=100_000.0).contains(&s))) {
            return Err(ConfigError::new(
                "CONECTA_SPEED",
                "expected a number from 1 to 100000, like 3600",
            ));
        }
        let named = env.get("QUEUE_CONNECTION").unwrap_or("database");
        let queue_connection = QueueConnection::parse(named).ok_or_else(|| {
            ConfigError::new(
                "QUEUE_CONNECTION",
                format!("expected redis, database or sync, got: {named:?}"),
            )
        })?;
        const YEAR_SECONDS: u64 = crate::duration::MAX.as_secs();
        let retry_after = env
            .parse::<u64>("QUEUE_RETRY_AFTER", "a whole number of seconds like 90")?
            .unwrap_or(90);
        if retry_after == 0 || retry_after > YEAR_SECONDS {
            return Err(ConfigError::new(
                "QUEUE_RETRY_AFTER",
                "expected a whole number of seconds from 1 to 31536000 (a year), like 90",
            ));
        }
        let lease_seconds = env
            .parse::<u64>("CONECTA_LEASE", "a whole number of seconds like 60")?
            .unwrap_or(60);
        if lease_seconds == 0 || lease_seconds > YEAR_SECONDS {
            return Err(ConfigError::new(
                "CONECTA_LEASE",
                "expected a whole number of seconds from 1 to 31536000 (a year), like 60",
            ));
        }
        Ok(Self {
            lease_seconds,
            mail: mail_config(env)?,
            outbox_stream: env.get("CONECTA_OUTBOX_STREAM").map(str::to_string),
            http: http_config(env)?,
            storage: PathBuf::from(env.get("CONECTA_STORAGE_PATH").unwrap_or("storage")),
            ai: ai_config(env)?,
            queue_connection,
            retry_after,
            redis_url: redis_url(env)?,
            redis_prefix: env.get("REDIS_PREFIX").unwrap_or("conecta:").to_string(),
            database_url: database_url(env)?,
            app_timezone,
            schedule_path: env
                .get("CONECTA_SCHEDULE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SCHEDULE)),
            now,
            speed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_with_an_empty_environment() {
        let c = Config::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(c.app_timezone, Tz::UTC);
        assert_eq!(c.schedule_path, PathBuf::from(DEFAULT_SCHEDULE));
        assert!(c.now.is_none());
    }

    #[test]
    fn a_bad_value_names_the_key_and_suggests() {
        let e = Config::from_env(&Env::from_pairs([("APP_TIMEZONE", "America/Tegucigalpha")]))
            .unwrap_err();
        assert_eq!(e.key, "APP_TIMEZONE");
        assert!(
            e.message.contains("did you mean \"America/Tegucigalpa\""),
            "{e}"
        );
        let e = Config::from_env(&Env::from_pairs([("CONECTA_SPEED", "fast")])).unwrap_err();
        assert_eq!(e.key, "CONECTA_SPEED");
        let e = Config::from_env(&Env::from_pairs([("QUEUE_CONNECTION", "sqs")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad value for QUEUE_CONNECTION: expected redis, database or sync, got: \"sqs\""
        );
        let e = Config::from_env(&Env::from_pairs([("REDIS_PORT", "x")])).unwrap_err();
        assert_eq!(e.key, "REDIS_PORT");
    }

    #[test]
    fn laravel_keys_build_the_urls() {
        let c = Config::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(c.queue_connection, QueueConnection::Database);
        assert_eq!(c.database_url, "sqlite:storage/conecta.sqlite");
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(c.retry_after, 90);
        let c = Config::from_env(&Env::from_pairs([
            ("DB_CONNECTION", "mariadb"),
            ("DB_HOST", "db"),
            ("DB_DATABASE", "vito"),
            ("DB_USERNAME", "app"),
            ("DB_PASSWORD", "p@ss"),
            ("REDIS_PASSWORD", "null"),
            ("REDIS_DB", "2"),
            ("REDIS_CLIENT", "phpredis"),
        ]))
        .unwrap();
        assert_eq!(c.database_url, "mysql://app:p%40ss@db:3306/vito");
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379/2");
    }
}
