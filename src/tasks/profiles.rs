//! `EnhanceTenantProfileJob {tenant}` and `GenerateBusinessProfile {tenant}`: a description and
//! tags for a tenant's public profile, written by a provider (`AI_PROVIDER`):
//!
//! - `offline` (the default): a deterministic profile made from the tenant's own data (name,
//!   zone, products), so everything runs with no network;
//! - `openai`: any OpenAI-compatible chat-completions API (`AI_BASE_URL`, `AI_API_KEY`,
//!   `AI_MODEL`), asked for JSON with `description` and `tags`.
//!
//! An answer of the wrong shape is retried, and after the job's tries fails with the
//! provider's text in the exception; a 429 with `Retry-After` postpones the job for that long
//! without using a try; a 5xx is retried with backoff; the job's timeout (180 s) cancels the
//! HTTP call in flight. `GenerateBusinessProfile` leaves a tenant that already has a profile
//! alone; `EnhanceTenantProfileJob` rewrites it (unique per tenant for an hour).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::retry;
use crate::config::{AiConfig, AiProviderKind};
use crate::queue::{JobContext, JobError, NewJob, Registry, UniqueUntil};
use crate::store::tenants::{self, Profile};

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// How long `EnhanceTenantProfileJob`'s unique lock lives.
pub const UNIQUE_FOR: u64 = 3_600;

/// The job's payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The tenant.
    pub tenant: i64,
}

/// A written profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// A paragraph about the business.
    pub description: String,
    /// Short tags.
    pub tags: Vec<String>,
}

/// The `EnhanceTenantProfileJob` for `tenant`, unique per tenant for an hour.
pub fn enhance_job(tenant: i64) -> NewJob {
    super::new_job("EnhanceTenantProfileJob", json!({ "tenant": tenant })).unique(
        format!("profile:{tenant}"),
        UNIQUE_FOR,
        UniqueUntil::Ttl,
    )
}

/// The city of an IANA zone, in words (`America/New_York` → `New York`).
fn city(zone: &str) -> String {
    zone.rsplit('/').next().unwrap_or(zone).replace('_', " ")
}

/// A slug for a tag: lower case, words joined by `-`.
fn slug(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// The `offline` provider: a profile from the tenant's own data, the same every time.
pub fn offline(p: &Profile) -> Written {
    let city = city(&p.timezone);
    let offering = match p.products.as_slice() {
        [] => "a catalogue that is still being built".to_string(),
        [one] => one.clone(),
        [first @ .., last] => {
            let shown: Vec<&str> = first.iter().take(2).map(String::as_str).collect();
            format!("{} and {last}", shown.join(", "))
        }
    };
    let description = format!(
        "{} is a business based in {city} offering {offering}. Orders, appointments and \
         messages are handled online through Vito.",
        p.name
    );
    let mut tags = vec![slug(&city), "local-business".to_string()];
    for name in p.products.iter().take(3) {
        let word = slug(name.split_whitespace().next().unwrap_or(name));
        if !word.is_empty() && !tags.contains(&word) {
            tags.push(word);
        }
    }
    Written { description, tags }
}

/// The request body sent to a chat-completions API.
pub fn request(model: &str, p: &Profile) -> Value {
    json!({
        "model": model,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": "You write short public profiles of small businesses. Answer with one JSON object: {\"description\": a paragraph of at most 80 words, \"tags\": an array of 3 to 8 short lower-case tags}. No other text."},
            {"role": "user", "content": format!(
                "Business: {}\nCity: {}\nProducts: {}",
                p.name,
                city(&p.timezone),
                if p.products.is_empty() { "none yet".to_string() } else { p.products.join(", ") }
            )}
        ]
    })
}

/// Reads a profile out of a chat-completions answer; the error carries the provider's text.
pub fn parse_answer(body: &str) -> Result<Written, String> {
    let excerpt = |t: &str| t.chars().take(500).collect::<String>();
    let answer: Value =
        serde_json::from_str(body).map_err(|_| format!("not JSON: {}", excerpt(body)))?;
    let content = answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no choices[0].message.content: {}", excerpt(body)))?;
    let inner = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let shape = || {
        format!(
            "the answer is not JSON with a `description` string and `tags`: {}",
            excerpt(content)
        )
    };
    let v: Value = serde_json::from_str(inner).map_err(|_| shape())?;
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .ok_or_else(shape)?;
    let tags: Vec<String> = match v.get("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(slug).ok_or_else(shape))
            .collect::<Result<_, _>>()?,
        Some(Value::String(s)) => s.split(',').map(slug).collect(),
        _ => return Err(shape()),
    };
    let tags: Vec<String> = tags.into_iter().filter(|t| !t.is_empty()).collect();
    if tags.is_empty() {
        return Err(shape());
    }
    Ok(Written {
        description: description.chars().take(2_000).collect(),
        tags,
    })
}

/// The delay a 429's `Retry-After` asks for (seconds; an HTTP date is taken as a minute).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
        .clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
}

/// Asks an OpenAI-compatible API for `p`'s profile.
pub async fn openai(ai: &AiConfig, p: &Profile) -> Result<Written, JobError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| JobError::Fail(format!("cannot build the HTTP client: {e}")))?;
    let url = format!("{}/chat/completions", ai.base_url);
    let mut req = client.post(&url).json(&request(&ai.model, p));
    if let Some(key) = &ai.api_key {
        req = req.bearer_auth(key);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| JobError::Retry(format!("AI provider at {url} unreachable: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .text()
        .await
        .map_err(|e| JobError::Retry(format!("AI provider's answer broke off: {e}")))?;
    let excerpt: String = body.chars().take(500).collect();
    if status.as_u16() == 429 {
        let wait = retry_after(&headers);
        return Err(JobError::Postpone(
            wait,
            format!(
                "AI provider is rate limiting (429), back in {}s: {excerpt}",
                wait.as_secs()
            ),
        ));
    }
    if status.is_server_error() {
        return Err(JobError::Retry(format!(
            "AI provider answered {status}: {excerpt}"
        )));
    }
    if !status.is_success() {
        return Err(JobError::Fail(format!(
            "AI provider refused the request ({status}); check AI_API_KEY and AI_MODEL: {excerpt}"
        )));
    }
    parse_answer(&body).map_err(|why| JobError::Retry(format!("AI provider: {why}")))
}

/// Writes tenant `id`'s profile; with `only_if_missing`, a tenant that has one is left alone.
/// Returns whether it was written.
pub async fn write(ctx: &JobContext, id: i64, only_if_missing: bool) -> Result<bool, JobError> {
    let p = tenants::profile(&ctx.db, id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fail(format!("tenant {id} does not exist")))?;
    if only_if_missing && p.description.as_deref().is_some_and(|d| !d.is_empty()) {
        tracing::info!(tenant = id, "tenant already has a profile: left alone");
        return Ok(false);
    }
    let ai = &ctx.rt.settings.ai;
    let (written, source) = match ai.provider {
        AiProviderKind::Offline => (offline(&p), "offline".to_string()),
        AiProviderKind::OpenAi => (openai(ai, &p).await?, ai.model.clone()),
    };
    tenants::set_profile(
        &ctx.db,
        id,
        &written.description,
        &written.tags.join(","),
        &source,
        ctx.clock.now(),
    )
    .await
    .map_err(retry)?;
    Ok(true)
}

/// Registers `EnhanceTenantProfileJob` and `GenerateBusinessProfile`.
pub fn register(r: &mut Registry) {
    r.register(
        "EnhanceTenantProfileJob",
        |ctx: JobContext, a: Args| async move { write(&ctx, a.tenant, false).await.map(|_| ()) },
    );
    r.register(
        "GenerateBusinessProfile",
        |ctx: JobContext, a: Args| async move { write(&ctx, a.tenant, true).await.map(|_| ()) },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            id: 7,
            name: "Tienda 7".into(),
            email: "owner7@example.test".into(),
            timezone: "America/New_York".into(),
            description: None,
            tags: None,
            profile_source: None,
            profile_updated_at: None,
            products: vec!["Café molido".into(), "Pan dulce".into(), "Té verde".into()],
        }
    }

    #[test]
    fn the_offline_profile_is_made_of_the_tenants_data() {
        let w = offline(&profile());
        assert_eq!(w, offline(&profile()));
        assert!(
            w.description
                .starts_with("Tienda 7 is a business based in New York")
        );
        assert!(
            w.description
                .contains("Café molido, Pan dulce and Té verde")
        );
        assert_eq!(w.tags[..3], ["new-york", "local-business", "café"]);
    }

    #[test]
    fn answers_of_the_wrong_shape_say_what_came_back() {
        let wrap = |content: &str| {
            json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string()
        };
        let ok = parse_answer(&wrap(
            r#"{"description": "A bakery.", "tags": ["Bakery", "bread"]}"#,
        ))
        .unwrap();
        assert_eq!(ok.tags, ["bakery", "bread"]);
        let fenced = parse_answer(&wrap(
            "```json\n{\"description\": \"x\", \"tags\": \"a, b\"}\n```",
        ));
        assert_eq!(fenced.unwrap().tags, ["a", "b"]);
        let e = parse_answer(&wrap("Sure! Here is a profile: great shop")).unwrap_err();
        assert!(e.contains("great shop"), "{e}");
        let e = parse_answer(&wrap(r#"{"description": "", "tags": []}"#)).unwrap_err();
        assert!(e.contains("description"), "{e}");
        assert!(
            parse_answer("<html>oops</html>")
                .unwrap_err()
                .contains("oops")
        );
    }
}
