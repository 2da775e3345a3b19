//! Products as `GenerateProductBlurhash` sees them: the image path, and the BlurHash it
//! stores.

use chrono::{DateTime, Utc};

use super::{Db, Result, Row};

/// A product's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The product.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// The image file, relative to the public disk (or absolute), if it has one.
    pub image_path: Option<String>,
    /// The stored BlurHash, if computed.
    pub blurhash: Option<String>,
}

/// Product `id`'s image.
pub async fn image(db: &Db, id: i64) -> Result<Option<Image>> {
    db.query("SELECT id, tenant_id, image_path, blurhash FROM products WHERE id = ?")
        .bind(id)
        .fetch_optional_as(db, |r: &Row| {
            Ok(Image {
                id: r.try_get(0)?,
                tenant_id: r.try_get(1)?,
                image_path: r.try_get(2)?,
                blurhash: r.try_get(3)?,
            })
        })
        .await
}

/// Stores `hash` as product `id`'s BlurHash.
pub async fn set_blurhash(db: &Db, id: i64, hash: &str, now: DateTime<Utc>) -> Result<()> {
    db.query("UPDATE products SET blurhash = ?, blurhash_at = ? WHERE id = ?")
        .bind(hash)
        .bind(now.timestamp())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// The first `limit` products' ids and image paths, in id order (for writing demo images).
pub async fn with_images(db: &Db, limit: i64) -> Result<Vec<(i64, String)>> {
    db.query("SELECT id, image_path FROM products WHERE image_path IS NOT NULL ORDER BY id LIMIT ?")
        .bind(limit)
        .fetch_as(db, |r: &Row| Ok((r.try_get(0)?, r.try_get(1)?)))
        .await
}
