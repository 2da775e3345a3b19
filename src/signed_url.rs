//! Signed, expiring download links (the idea of Laravel's `URL::temporarySignedRoute`).
//!
//! A link is `{APP_URL}/downloads/{path}?expires={unix seconds}&signature={hex}`, where the
//! signature is HMAC-SHA256 keyed with `APP_KEY` (decoded from its `base64:` form) over
//! `"{path}?expires={expires}"`. `conecta url sign`, the HTTP edge and the jobs that deliver
//! files all sign and check through here.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No `expires` or `signature`, or one that does not parse.
    #[error("the link is not signed")]
    Unsigned,
    /// The signature does not match the path and expiry.
    #[error("the link's signature does not match")]
    Tampered,
    /// It expired.
    #[error("the link expired")]
    Expired,
}

/// Signs and checks download links with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer keyed with `key` (`APP_KEY`, decoded).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, path: &str, expires: i64) -> HmacSha256 {
        // HMAC takes a key of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(format!("{path}?expires={expires}").as_bytes());
        mac
    }

    /// The hex signature of `path` valid until `expires` (unix seconds).
    pub fn signature(&self, path: &str, expires: i64) -> String {
        hex::encode(self.mac(path, expires).finalize().into_bytes())
    }

    /// The full link for `path` under `base` (`APP_URL`), valid until `expires`.
    pub fn url(&self, base: &str, path: &str, expires: DateTime<Utc>) -> String {
        let path = path.trim_start_matches('/');
        let t = expires.timestamp();
        format!(
            "{}/downloads/{}?expires={t}&signature={}",
            base.trim_end_matches('/'),
            encode_path(path),
            self.signature(path, t)
        )
    }

    /// A signed link to route `path` itself (e.g. `unsubscribe/5/9`) under `base`, valid until
    /// `expires`: the signature covers the whole route path, so it cannot open a download.
    pub fn link(&self, base: &str, path: &str, expires: DateTime<Utc>) -> String {
        let path = path.trim_start_matches('/');
        let t = expires.timestamp();
        format!(
            "{}/{}?expires={t}&signature={}",
            base.trim_end_matches('/'),
            encode_path(path),
            self.signature(path, t)
        )
    }

    /// Checks a request for `path` with its `expires` and `signature` query values at `now`.
    /// The signature is compared in constant time.
    pub fn check(
        &self,
        path: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let expires: i64 = expires
            .and_then(|e| e.parse().ok())
            .ok_or(Refused::Unsigned)?;
        let signature = signature
            .and_then(|s| hex::decode(s).ok())
            .ok_or(Refused::Unsigned)?;
        self.mac(path, expires)
            .verify_slice(&signature)
            .map_err(|_| Refused::Tampered)?;
        if now.timestamp() > expires {
            return Err(Refused::Expired);
        }
        Ok(())
    }
}

/// Percent-encodes each segment of `path`, keeping the slashes between them.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `path` stays inside the folder it is relative to: no empty, `.` or `..` segment,
/// not absolute, no backslash or NUL. Checked before anything touches the file system.
pub fn is_contained(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_signed_link_checks_until_it_expires_and_not_when_changed() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let expires = at("2026-11-28T12:00:00Z");
        let url = signer.url("https://app.example", "exports/7/sales.csv", expires);
        let sig = url.rsplit("signature=").next().unwrap();
        let t = expires.timestamp().to_string();
        let before = at("2026-11-28T11:00:00Z");
        assert_eq!(
            signer.check("exports/7/sales.csv", Some(&t), Some(sig), before),
            Ok(())
        );
        assert_eq!(
            signer.check("exports/8/sales.csv", Some(&t), Some(sig), before),
            Err(Refused::Tampered)
        );
        let later = (expires.timestamp() + 3600).to_string();
        assert_eq!(
            signer.check("exports/7/sales.csv", Some(&later), Some(sig), before),
            Err(Refused::Tampered)
        );
        assert_eq!(
            signer.check(
                "exports/7/sales.csv",
                Some(&t),
                Some(sig),
                at("2026-11-28T12:00:01Z")
            ),
            Err(Refused::Expired)
        );
        assert_eq!(
            signer.check("exports/7/sales.csv", None, Some(sig), before),
            Err(Refused::Unsigned)
        );
    }

    #[test]
    fn paths_that_leave_their_folder_are_not_contained() {
        assert!(is_contained("7/sales.csv"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "7/../../x",
            "7//x",
            "./x",
            "7\\..\\x",
            "a\0b",
        ] {
            assert!(!is_contained(bad), "{bad:?}");
        }
    }
}
