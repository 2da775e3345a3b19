//! Reading and validating the schedule file (docs/schedule.md).
//!
//! The file is parsed with `toml_edit`, which keeps the byte span of every key and value, so
//! each problem is reported as `FILE:LINE:COL: message` with a hint where one helps. All
//! problems are collected before reporting: a user fixes the file in one pass. An invalid file
//! never produces a partial schedule.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{Map, Value as Json};
use toml_edit::{Document, Item, Table, Value};

use super::{
    CatchUp, CronSpec, DstRepeated, DstSkipped, Entry, Mode, Overlap, Schedule, stable_hash,
};
use crate::suggest::did_you_mean;
use crate::tasks;

/// Keys a `[[task]]` table may have.
pub const ENTRY_KEYS: &[&str] = &[
    "name",
    "task",
    "cron",
    "every",
    "anchor",
    "timezone",
    "description",
    "enabled",
    "args",
    "timeout",
    "mode",
    "queue",
    "overlap",
    "catch_up",
    "catch_up_window",
    "catch_up_max",
    "jitter",
    "dst_skipped",
    "dst_repeated",
];

const TOP_KEYS: &[&str] = &["timezone", "task"];

/// How far back catch-up looks when the entry does not say.
pub const DEFAULT_CATCH_UP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The most occurrences `catch_up = "all"` runs when the entry does not say.
pub const DEFAULT_CATCH_UP_MAX: u32 = 100;

/// One problem in the file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it, if there is something useful to say.
    pub hint: Option<String>,
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The file.
    pub path: PathBuf,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                d.line,
                d.col,
                d.message
            )?;
            if let Some(hint) = &d.hint {
                write!(f, "\n  hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Why a schedule could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read schedule file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read and has problems.
    #[error("{0}")]
    Invalid(Invalid),
}

/// Reads and validates the schedule at `path`; `fallback_tz` (from `APP_TIMEZONE`) applies to
/// entries when the file sets no `timezone`.
pub fn load(path: &Path, fallback_tz: Tz) -> Result<Schedule, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, fallback_tz).map_err(LoadError::Invalid)
}

/// Validates schedule text; `path` only labels the diagnostics.
pub fn parse(path: &Path, text: &str, fallback_tz: Tz) -> Result<Schedule, Invalid> {
    let mut v = Validator {
        text,
        diagnostics: Vec::new(),
    };
    let entries = match Document::parse(text) {
        Ok(doc) => v.document(doc.as_table(), fallback_tz),
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let message = e.message().lines().next().unwrap_or("invalid TOML").trim();
            v.error(at, format!("invalid TOML: {message}"), None);
            Vec::new()
        }
    };
    if !v.diagnostics.is_empty() {
        v.diagnostics.sort_by_key(|d| (d.line, d.col));
        return Err(Invalid {
            path: path.to_path_buf(),
            diagnostics: v.diagnostics,
        });
    }
    Ok(Schedule {
        path: path.to_path_buf(),
        hash: format!("{:016x}", stable_hash(text.as_bytes())),
        entries,
    })
}

struct Validator<'t> {
    text: &'t str,
    diagnostics: Vec<Diagnostic>,
}

/// A value and where it sits in the file.
struct Field<'a> {
    value: &'a Value,
    at: usize,
}

impl Validator<'_> {
    fn error(&mut self, at: usize, message: String, hint: Option<String>) {
        let (line, col) = line_col(self.text, at);
        self.diagnostics.push(Diagnostic {
            line,
            col,
            message,
            hint,
        });
    }

    fn document(&mut self, root: &Table, fallback_tz: Tz) -> Vec<Entry> {
        for (key, _) in root.iter() {
            if !TOP_KEYS.contains(&key) {
                let at = key_start(root, key);
                let hint = did_you_mean(key, TOP_KEYS.iter().copied())
                    .map(|k| format!("did you mean \"{k}\"?"))
                    .or_else(|| {
                        Some("the top level takes `timezone` and [[task]] tables".to_string())
                    });
                self.error(at, format!("unknown key \"{key}\""), hint);
            }
        }
        let file_tz = match root.get("timezone") {
            Some(item) => match item.as_value() {
                Some(value) => {
                    let field = Field {
                        value,
                        at: span_start(item.span()),
                    };
                    self.timezone(&field).unwrap_or(fallback_tz)
                }
                None => {
                    self.error(
                        key_start(root, "timezone"),
                        "expected `timezone` to be a string like \"America/Tegucigalpa\"".into(),
                        None,
                    );
                    fallback_tz
                }
            },
            None => fallback_tz,
        };
        let tables: Vec<&Table> = match root.get("task") {
            None => Vec::new(),
            Some(Item::ArrayOfTables(array)) => array.iter().collect(),
            Some(_) => {
                self.error(
                    key_start(root, "task"),
                    "expected `task` to be a list of [[task]] tables".into(),
                    Some("write each entry under its own [[task]] header".into()),
                );
                Vec::new()
            }
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut entries = Vec::new();
        for table in tables {
            let entry = self.entry(table, file_tz);
            // Duplicates are found by name even when the entries have other problems.
            let Some(name) = table.get("name").and_then(|i| i.as_str()) else {
                continue;
            };
            let at = value_start(table, "name");
            if let Some(first) = seen.get(name) {
                let (line, _) = line_col(self.text, *first);
                self.error(
                    at,
                    format!("duplicate entry name \"{name}\""),
                    Some(format!(
                        "first defined on line {line}; give each entry a unique name and set `task` to share a task"
                    )),
                );
                continue;
            }
            seen.insert(name.to_string(), at);
            entries.extend(entry);
        }
        entries
    }

    /// Validates one `[[task]]` table; `None` if anything is wrong with it.
    fn entry(&mut self, table: &Table, file_tz: Tz) -> Option<Entry> {
        let errors_before = self.diagnostics.len();
        let header = span_start(table.span());
        let mut fields: HashMap<&str, Field> = HashMap::new();
        for (key, item) in table.iter() {
            let key_at = key_start(table, key);
            if !ENTRY_KEYS.contains(&key) {
                let hint = did_you_mean(key, ENTRY_KEYS.iter().copied())
                    .map(|k| format!("did you mean \"{k}\"?"))
                    .or_else(|| Some(format!("an entry takes: {}", ENTRY_KEYS.join(", "))));
                self.error(key_at, format!("unknown key \"{key}\""), hint);
                continue;
            }
            match item.as_value() {
                Some(value) => {
                    let at = value.span().map(|s| s.start).unwrap_or(key_at);
                    fields.insert(key, Field { value, at });
                }
                None => self.error(
                    key_at,
                    format!("expected `{key}` to be a value, got a table"),
                    Some("write args as an inline table: args = { key = \"value\" }".into()),
                ),
            }
        }

        let name = match fields.get("name") {
            Some(f) => self.string(f, "name"),
            None => {
                self.error(
                    header,
                    "entry has no `name`".into(),
                    Some("add name = \"…\"".into()),
                );
                None
            }
        };
        let label = name.clone().unwrap_or_else(|| "?".into());
        let (task, task_at) = match fields.get("task") {
            Some(f) => (self.string(f, "task"), f.at),
            None => (name.clone(), value_start(table, "name")),
        };
        let def = task.as_deref().and_then(|t| {
            let def = tasks::find(t);
            if def.is_none() {
                let hint = match did_you_mean(t, tasks::names()) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None if !fields.contains_key("task") => format!(
                        "set task = \"…\" to one of: {}",
                        tasks::names().collect::<Vec<_>>().join(", ")
                    ),
                    None => format!(
                        "known tasks: {}",
                        tasks::names().collect::<Vec<_>>().join(", ")
                    ),
                };
                self.error(task_at, format!("unknown task \"{t}\""), Some(hint));
            }
            def
        });
        let cron = match (fields.get("cron"), fields.get("every")) {
            (Some(_), Some(e)) => {
                self.error(
                    e.at,
                    format!("entry \"{label}\" has both `cron` and `every`"),
                    Some("keep one: `cron` for calendar times, `every` for a fixed interval".into()),
                );
                None
            }
            (Some(f), None) => self.string(f, "cron").and_then(|text| match CronSpec::parse(&text) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.error(
                        f.at,
                        e.0,
                        Some("five fields: minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\"".into()),
                    );
                    None
                }
            }),
            (None, Some(f)) => self.every(&fields, f),
            (None, None) => {
                self.error(
                    header,
                    format!("entry \"{label}\" has no `cron` or `every`"),
                    Some("add cron = \"…\", e.g. \"0 * * * *\" for hourly, or every = \"10s\"".into()),
                );
                None
            }
        };
        if fields.contains_key("anchor") && !fields.contains_key("every") {
            let at = fields["anchor"].at;
            self.error(
                at,
                "`anchor` is only for `every` entries".to_string(),
                Some("remove it, or use every = \"…\" instead of cron".into()),
            );
        }
        let timezone = match fields.get("timezone") {
            Some(f) => self.timezone(f),
            None => Some(file_tz),
        };
        let description = fields
            .get("description")
            .and_then(|f| self.string(f, "description"));
        let enabled = match fields.get("enabled") {
            Some(f) => self.boolean(f, "enabled"),
            None => Some(true),
        };
        let args = match fields.get("args") {
            Some(f) => self.args(f, def),
            None => Some(Map::new()),
        };
        let timeout = self.optional_duration(&fields, "timeout");
        let jitter = self.optional_duration(&fields, "jitter");
        let catch_up_window = self
            .optional_duration(&fields, "catch_up_window")
            .map(|d| d.unwrap_or(DEFAULT_CATCH_UP_WINDOW));
        let mode = self.choice(
            &fields,
            "mode",
            &[("inline", Mode::Inline), ("queue", Mode::Queue)],
            Mode::Inline,
        );
        let queue = match fields.get("queue") {
            Some(f) => self.string(f, "queue"),
            None => Some("default".into()),
        };
        let overlap = self.choice(
            &fields,
            "overlap",
            &[
                ("skip", Overlap::Skip),
                ("allow", Overlap::Allow),
                ("buffer-one", Overlap::BufferOne),
            ],
            Overlap::Skip,
        );
        let catch_up = self.choice(
            &fields,
            "catch_up",
            &[
                ("skip", CatchUp::Skip),
                ("latest", CatchUp::Latest),
                ("all", CatchUp::All),
            ],
            CatchUp::Latest,
        );
        let catch_up_max = match fields.get("catch_up_max") {
            Some(f) => {
                match f.value.as_integer() {
                    Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Some(n as u32),
                    _ => {
                        self.error(
                        f.at,
                        format!("expected `catch_up_max` to be a whole number of at least 1, got: {}", shown(f.value)),
                        None,
                    );
                        None
                    }
                }
            }
            None => Some(DEFAULT_CATCH_UP_MAX),
        };
        let dst_skipped = self.choice(
            &fields,
            "dst_skipped",
            &[("shift", DstSkipped::Shift), ("skip", DstSkipped::Skip)],
            DstSkipped::Shift,
        );
        let dst_repeated = self.choice(
            &fields,
            "dst_repeated",
            &[
                ("first", DstRepeated::First),
                ("last", DstRepeated::Last),
                ("both", DstRepeated::Both),
            ],
            DstRepeated::First,
        );

        if self.diagnostics.len() != errors_before {
            return None;
        }
        let entry = Entry {
            name: name?,
            // A Laravel alias runs, and is recorded, as the task it became.
            task: def.map_or(task?, |d| d.name.to_string()),
            cron: cron?,
            timezone: timezone?,
            description,
            enabled: enabled?,
            args: args?,
            timeout: timeout?,
            mode: mode?,
            queue: queue?,
            overlap: overlap?,
            catch_up: catch_up?,
            catch_up_window: catch_up_window?,
            catch_up_max: catch_up_max?,
            jitter: jitter?,
            dst_skipped: dst_skipped?,
            dst_repeated: dst_repeated?,
        };
        if let (Some(jitter), Some(f)) = (entry.jitter, fields.get("jitter"))
            && let Some(period) = super::shortest_period(&entry)
            && jitter >= period
        {
            self.error(
                f.at,
                format!(
                    "`jitter` ({}) must be shorter than the entry's period ({}): a run delayed that long would fall after the next occurrence",
                    crate::duration::Human(jitter),
                    crate::duration::Human(period)
                ),
                Some(format!(
                    "lower `jitter` below {}",
                    crate::duration::Human(period)
                )),
            );
            return None;
        }
        Some(entry)
    }

    fn string(&mut self, f: &Field, key: &str) -> Option<String> {
        match f.value.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_string()),
            Some(_) => {
                self.error(f.at, format!("`{key}` must not be empty"), None);
                None
            }
            None => {
                self.error(
                    f.at,
                    format!("expected `{key}` to be a string, got: {}", shown(f.value)),
                    None,
                );
                None
            }
        }
    }

    fn boolean(&mut self, f: &Field, key: &str) -> Option<bool> {
        let got = f.value.as_bool();
        if got.is_none() {
            self.error(
                f.at,
                format!(
                    "expected `{key}` to be true or false, got: {}",
                    shown(f.value)
                ),
                None,
            );
        }
        got
    }

    fn timezone(&mut self, f: &Field) -> Option<Tz> {
        let name = self.string(f, "timezone")?;
        match Tz::from_str(&name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = did_you_mean(&name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .unwrap_or_else(|| {
                        "use an IANA name like \"America/Tegucigalpa\" or \"UTC\"".into()
                    });
                self.error(f.at, format!("unknown time zone \"{name}\""), Some(hint));
                None
            }
        }
    }

    /// `Some(None)` when absent, `Some(Some(d))` when valid, `None` after reporting an error.
    /// `every = "10s"` with its optional `anchor`: 1 s to 1 day, dividing a day when shorter.
    fn every(&mut self, fields: &HashMap<&str, Field>, f: &Field) -> Option<CronSpec> {
        let text = self.string(f, "every")?;
        let period = match crate::duration::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                self.error(
                    f.at,
                    format!("bad interval for `every`: {e}"),
                    Some("a duration such as \"10s\", \"5m\" or \"1h\"".into()),
                );
                return None;
            }
        };
        let secs = period.as_secs();
        if period.subsec_nanos() != 0 || !(1..=86_400).contains(&secs) {
            self.error(
                f.at,
                format!("`every` must be from 1s to 1d in whole seconds, got {text:?}"),
                Some("for longer periods use `cron`".into()),
            );
            return None;
        }
        if secs < 86_400 && 86_400 % secs != 0 {
            let mut near: Vec<u64> = vec![
                1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600,
                7200, 10800, 14400, 21600, 43200,
            ];
            near.sort_by_key(|d| d.abs_diff(secs));
            let near: Vec<String> = near
                .iter()
                .take(3)
                .map(|d| crate::duration::Human(Duration::from_secs(*d)).to_string())
                .collect();
            self.error(
                f.at,
                format!("`every` ({text}) must divide a day evenly, so runs fall at the same times each day"),
                Some(if near.is_empty() {
                    "e.g. 10s, 30s, 5m, 15m, 1h".to_string()
                } else {
                    format!("nearby intervals that do: {}", near.join(", "))
                }),
            );
            return None;
        }
        let anchor_ms = match fields.get("anchor") {
            None => 0,
            Some(a) => {
                let at = a.at;
                let t = self.string(a, "anchor")?;
                match crate::rfc3339::parse_instant(&t) {
                    Ok(i) => i.timestamp_millis(),
                    Err(e) => {
                        self.error(
                            at,
                            format!("bad `anchor`: {e}"),
                            Some("an RFC 3339 instant, e.g. \"2026-01-01T00:00:05Z\"".into()),
                        );
                        return None;
                    }
                }
            }
        };
        Some(CronSpec::every(
            &text,
            super::cron::Every {
                period_ms: secs as i64 * 1000,
                anchor_ms,
            },
        ))
    }

    fn optional_duration(
        &mut self,
        fields: &HashMap<&str, Field>,
        key: &str,
    ) -> Option<Option<Duration>> {
        let Some(f) = fields.get(key) else {
            return Some(None);
        };
        let parsed = match f.value {
            Value::String(s) => crate::duration::parse(s.value()).map_err(|e| e.to_string()),
            Value::Integer(n) if *n.value() >= 0 => {
                crate::duration::bounded(Duration::from_secs(*n.value() as u64), &n.to_string())
                    .map_err(|e| e.to_string())
            }
            other => Err(format!(
                "expected a duration like \"30s\", \"15m\", \"1h\" or \"2d\", got: {}",
                shown(other)
            )),
        };
        match parsed {
            Ok(d) => Some(Some(d)),
            Err(message) => {
                self.error(f.at, format!("bad duration for `{key}`: {message}"), None);
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        fields: &HashMap<&str, Field>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some(f) = fields.get(key) else {
            return Some(default);
        };
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let expected = names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        match f.value.as_str() {
            Some(s) => match options.iter().find(|(n, _)| *n == s) {
                Some((_, v)) => Some(*v),
                None => {
                    let hint = did_you_mean(s, names.iter().copied())
                        .map(|n| format!("did you mean \"{n}\"?"));
                    self.error(
                        f.at,
                        format!("expected `{key}` to be one of {expected}, got: \"{s}\""),
                        hint,
                    );
                    None
                }
            },
            None => {
                self.error(
                    f.at,
                    format!(
                        "expected `{key}` to be one of {expected}, got: {}",
                        shown(f.value)
                    ),
                    None,
                );
                None
            }
        }
    }

    fn args(&mut self, f: &Field, def: Option<&tasks::TaskDef>) -> Option<Map<String, Json>> {
        let Some(table) = f.value.as_inline_table() else {
            self.error(
                f.at,
                format!("expected `args` to be an inline table like {{ older_than = \"30m\" }}, got: {}", shown(f.value)),
                None,
            );
            return None;
        };
        let mut out = Map::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let at = table
                .key(key)
                .and_then(|k| k.span())
                .map(|s| s.start)
                .unwrap_or(f.at);
            let json = to_json(value);
            if let Some(def) = def
                && let Err(problem) = def.check_arg(key, &json)
            {
                // Point at the value when the key is right but its value is not.
                let at = match def.arg(key) {
                    Some(_) => value.span().map(|s| s.start).unwrap_or(at),
                    None => at,
                };
                self.error(at, problem.message, problem.hint);
                ok = false;
            }
            out.insert(key.to_string(), json);
        }
        ok.then_some(out)
    }
}

/// A TOML value as JSON, for task arguments.
fn to_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(n) => Json::from(*n.value()),
        Value::Float(x) => serde_json::Number::from_f64(*x.value())
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::InlineTable(t) => {
            Json::Object(t.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
    }
}

/// A value as the user wrote it, for "got: …".
fn shown(value: &Value) -> String {
    value.to_string().trim().to_string()
}

fn span_start(span: Option<Range<usize>>) -> usize {
    span.map(|s| s.start).unwrap_or(0)
}

fn key_start(table: &Table, key: &str) -> usize {
    table
        .key(key)
        .and_then(|k| k.span())
        .map(|s| s.start)
        .or_else(|| table.span().map(|s| s.start))
        .unwrap_or(0)
}

fn value_start(table: &Table, key: &str) -> usize {
    table
        .get(key)
        .and_then(|i| i.span())
        .map(|s| s.start)
        .unwrap_or_else(|| key_start(table, key))
}

/// 1-based line and character column of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..at].chars().count() + 1;
    (line, col)
}
