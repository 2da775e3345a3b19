//! One job enqueued by hand: the checks `conecta dispatch` and `POST /api/dispatch` share, so
//! both accept and refuse the same requests with the same messages.

use serde::Deserialize;
use serde_json::Value;

use crate::queue::{NewJob, Registry, Unique, UniqueUntil};
use crate::suggest::did_you_mean;

/// What to enqueue: the options of `conecta dispatch`, as the API's JSON body too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The job name.
    pub job: String,
    /// Its payload (an object of the job's arguments); `{}` when absent.
    #[serde(default)]
    pub payload: Option<Value>,
    /// The queue.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Run no sooner than this (a duration like `15m`).
    #[serde(default)]
    pub delay: Option<String>,
    /// A unique key: a second job with a held key is a duplicate.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// How long the unique lock lives at most (a duration).
    #[serde(default)]
    pub unique_for: Option<String>,
    /// When the lock is released: `processed`, `processing` or `ttl`.
    #[serde(default = "default_until")]
    pub unique_until: String,
    /// Attempts allowed.
    #[serde(default)]
    pub tries: Option<u32>,
    /// Seconds a run may take.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Seconds between tries.
    #[serde(default)]
    pub backoff: Option<Vec<u64>>,
}

fn default_queue() -> String {
    "default".into()
}

fn default_until() -> String {
    "processed".into()
}

/// How option names are written where the request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `--unique-for`.
    Flags,
    /// `unique_for`.
    Fields,
}

impl Spelling {
    fn name(self, field: &str) -> String {
        match self {
            Spelling::Flags => format!("--{}", field.replace('_', "-")),
            Spelling::Fields => field.to_string(),
        }
    }
}

/// Why a request is refused: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// What is wrong.
    pub message: String,
    /// What to do, if there is something to say.
    pub hint: Option<String>,
}

fn refuse(message: impl Into<String>, hint: Option<String>) -> Refused {
    Refused {
        message: message.into(),
        hint,
    }
}

impl Request {
    /// The job this request asks for, checked against the catalog and `registry`.
    pub fn build(self, registry: &Registry, spelling: Spelling) -> Result<NewJob, Refused> {
        let name = |f: &str| spelling.name(f);
        let def = super::find(&self.job);
        if def.is_none() && registry.get(&self.job).is_none() {
            let mut names: Vec<String> = super::names().map(String::from).collect();
            names.extend(registry.names().into_iter().map(String::from));
            let hint = did_you_mean(&self.job, names.iter().map(|s| s.as_str()))
                .map(|s| format!("did you mean \"{s}\"?"))
                .unwrap_or_else(|| format!("known jobs: {}", names.join(", ")));
            return Err(refuse(format!("unknown job \"{}\"", self.job), Some(hint)));
        }
        let queue = self.queue.trim();
        if queue.is_empty() {
            return Err(refuse(
                format!(
                    "{} is empty: a job on a queue without a name is one no worker takes",
                    name("queue")
                ),
                Some(format!(
                    "leave {} out for `default`, or name one, e.g. high",
                    name("queue")
                )),
            ));
        }
        let data = self
            .payload
            .unwrap_or_else(|| Value::Object(Default::default()));
        if let Some(def) = def {
            let Some(map) = data.as_object() else {
                return Err(refuse(
                    format!(
                        "{} for \"{}\" must be a JSON object, got: {data}",
                        name("payload"),
                        def.name
                    ),
                    Some(format!(
                        "e.g. {{\"{}\": …}}",
                        def.args.first().map_or("key", |a| a.name)
                    )),
                ));
            };
            def.check_args(map)
                .map_err(|p| refuse(format!("{}: {}", name("payload"), p.message), p.hint))?;
        }
        let seconds = |field: &str, v: u64| {
            crate::duration::bounded(std::time::Duration::from_secs(v), &format!("{v}s"))
                .map(|d| d.as_secs())
                .map_err(|e| refuse(format!("{}: {e}", name(field)), None))
        };
        let timeout = self.timeout.map(|t| seconds("timeout", t)).transpose()?;
        let backoff = self
            .backoff
            .map(|list| list.iter().map(|b| seconds("backoff", *b)).collect())
            .transpose()?;
        let duration = |field: &str, text: &str| {
            crate::duration::parse(text).map_err(|e| refuse(format!("{}: {e}", name(field)), None))
        };
        let delay = match &self.delay {
            Some(d) => duration("delay", d)?.as_secs(),
            None => 0,
        };
        let unique = match (self.unique_key, &self.unique_for) {
            (Some(key), Some(ttl)) => {
                let ttl = duration("unique_for", ttl)?;
                let until: UniqueUntil = self
                    .unique_until
                    .parse()
                    .map_err(|e| refuse(format!("{}: {e}", name("unique_until")), None))?;
                Some(Unique {
                    key,
                    ttl: ttl.as_secs().max(1),
                    until,
                })
            }
            (Some(_), None) => {
                return Err(refuse(
                    format!("{} needs {}", name("unique_key"), name("unique_for")),
                    Some(format!("e.g. {} 1h", name("unique_for"))),
                ));
            }
            (None, _) => None,
        };
        Ok(NewJob {
            job: def.map_or(self.job, |d| d.name.to_string()),
            data,
            queue: queue.to_string(),
            delay,
            tries: self.tries,
            timeout,
            backoff,
            unique,
            batch_id: None,
        })
    }
}
