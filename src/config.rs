//! Configuration from the environment and a `.env` file, with Laravel's key names (SPEC §2).
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
        let speed = env.parse::<f64>("CONECTA_SPEED", "a positive number like 3600")?;
        if speed.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return Err(ConfigError::new(
                "CONECTA_SPEED",
                "expected a positive number like 3600",
            ));
        }
        Ok(Self {
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
    }
}
