//! `GenerateProductBlurhash {product}`: decodes the product's image (JPEG, PNG or WebP),
//! downsizes it, computes its BlurHash (4×3 components, the `blurhash` crate) and stores it
//! on the product.
//!
//! Memory stays bounded for huge images: a JPEG is decoded straight at 1/2, 1/4 or 1/8 of its
//! size (the DCT scaling of `jpeg-decoder`), so an 8000×6000 photo becomes about 1000×750
//! pixels without ever being whole in memory; PNG and WebP are decoded by the `image` crate
//! under a 256 MiB allocation limit, past which the job fails saying so. A missing or corrupt
//! file fails the job with the product and the path in the message (a retry cannot fix it).
//!
//! The image path is read relative to the public disk (`storage/app/public/`), as Laravel
//! stores it; an absolute path is used as it is.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageReader, Limits, RgbImage};
use serde::Deserialize;

use crate::queue::{JobContext, JobError, Registry};
use crate::store::products;

/// Components of the hash (the BlurHash default).
pub const COMPONENTS: (u32, u32) = (4, 3);

/// The longest side the hash is computed on: more pixels change nothing you could see.
pub const HASH_SIDE: u32 = 64;

/// What a PNG or WebP decode may allocate.
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// Widest or tallest image accepted.
pub const MAX_SIDE: u32 = 20_000;

/// `GenerateProductBlurhash` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The product.
    pub product: i64,
}

/// Why an image could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an image this job reads, or it is broken.
    #[error("{path} is not a readable JPEG, PNG or WebP image: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The image is over the size limits.
    #[error("{path} is too large to decode ({reason})")]
    TooLarge {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The BlurHash of the image at `path`.
pub fn hash_file(path: &Path) -> Result<String, ImageError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: shown.clone(),
        source,
    })?;
    let small = decode_small(&bytes, &shown)?;
    hash(&small)
}

/// The BlurHash of `image`.
pub fn hash(image: &RgbImage) -> Result<String, ImageError> {
    let thumb =
        DynamicImage::ImageRgb8(image::imageops::thumbnail(image, HASH_SIDE, HASH_SIDE)).to_rgba8();
    blurhash::encode(
        COMPONENTS.0,
        COMPONENTS.1,
        thumb.width(),
        thumb.height(),
        thumb.as_raw(),
    )
    .map_err(|e| ImageError::Corrupt {
        path: "(image)".into(),
        reason: e.to_string(),
    })
}

/// Decodes `bytes` to an RGB image no larger than needed for the hash (JPEG: scaled while
/// decoding).
pub fn decode_small(bytes: &[u8], path: &str) -> Result<RgbImage, ImageError> {
    let corrupt = |reason: String| ImageError::Corrupt {
        path: path.to_string(),
        reason,
    };
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        d.read_info().map_err(|e| corrupt(e.to_string()))?;
        let info = d.info().ok_or_else(|| corrupt("no frame header".into()))?;
        if u32::from(info.width) > MAX_SIDE || u32::from(info.height) > MAX_SIDE {
            return Err(ImageError::TooLarge {
                path: path.to_string(),
                reason: format!("{}×{}, at most {MAX_SIDE} a side", info.width, info.height),
            });
        }
        let (w, h) = d
            .scale(HASH_SIDE as u16 * 4, HASH_SIDE as u16 * 4)
            .map_err(|e| corrupt(e.to_string()))?;
        let pixels = d.decode().map_err(|e| corrupt(e.to_string()))?;
        let (w, h) = (u32::from(w), u32::from(h));
        let rgb: Vec<u8> = match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => pixels,
            jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
            jpeg_decoder::PixelFormat::L16 => pixels
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            jpeg_decoder::PixelFormat::CMYK32 => pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    let f = |c: u8| ((u16::from(255 - c) * (255 - k)) / 255) as u8;
                    [f(p[0]), f(p[1]), f(p[2])]
                })
                .collect(),
        };
        return RgbImage::from_raw(w, h, rgb)
            .ok_or_else(|| corrupt(format!("decoded size does not match {w}×{h}")));
    }
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(corrupt("unknown file type".into()));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => ImageError::TooLarge {
            path: path.to_string(),
            reason: l.to_string(),
        },
        other => corrupt(other.to_string()),
    })?;
    Ok(image.thumbnail(HASH_SIDE * 4, HASH_SIDE * 4).into_rgb8())
}

/// Where product image `image_path` is on disk: under `public` unless absolute; `None` when
/// a relative path would leave the folder.
pub fn locate(public: &Path, image_path: &str) -> Option<PathBuf> {
    let p = Path::new(image_path);
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    crate::signed_url::is_contained(image_path).then(|| public.join(p))
}

/// Writes `count` demo product images (gradients, 640×480 JPEGs) for `products` under
/// `public`, so `GenerateProductBlurhash` has real files to read after `demo seed`.
pub fn write_demo_images(
    public: &Path,
    products: &[(i64, String)],
) -> Result<usize, std::io::Error> {
    let mut written = 0;
    for (id, image_path) in products {
        let Some(path) = locate(public, image_path) else {
            continue;
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let hue = (*id as u32 * 47) % 255;
        let img = RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([((x * 255) / 640) as u8, ((y * 255) / 480) as u8, hue as u8])
        });
        let file = std::fs::File::create(&path)?;
        let mut out = std::io::BufWriter::new(file);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .map_err(std::io::Error::other)?;
        written += 1;
    }
    Ok(written)
}

/// Registers `GenerateProductBlurhash`.
pub fn register(r: &mut Registry) {
    r.register(
        "GenerateProductBlurhash",
        |ctx: JobContext, a: Args| async move {
            let product = products::image(&ctx.db, a.product)
                .await
                .map_err(super::retry)?
                .ok_or_else(|| JobError::Fail(format!("product {} does not exist", a.product)))?;
            let Some(image_path) = product.image_path.as_deref().filter(|p| !p.is_empty()) else {
                return Err(JobError::Fail(format!(
                    "product {} has no image (image_path is empty)",
                    product.id
                )));
            };
            let public = ctx.rt.settings.public_dir();
            let path = locate(&public, image_path).ok_or_else(|| {
                JobError::Fail(format!(
                    "product {}: image path {image_path:?} leaves the public disk",
                    product.id
                ))
            })?;
            let hash = tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(|e| JobError::Retry(format!("image decoding stopped: {e}")))?
                .map_err(|e| JobError::Fail(format!("product {}: {e}", product.id)))?;
            products::set_blurhash(&ctx.db, product.id, &hash, ctx.clock.now())
                .await
                .map_err(super::retry)?;
            tracing::info!(product = product.id, blurhash = %hash, "product blurhash stored");
            Ok(())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_and_a_png_of_one_picture_hash_alike() {
        let img = RgbImage::from_fn(800, 600, |x, y| {
            image::Rgb([(x / 4) as u8, (y / 3) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(img.clone())
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let a = hash(&decode_small(&jpeg, "a.jpg").unwrap()).unwrap();
        let b = hash(&decode_small(&png, "a.png").unwrap()).unwrap();
        assert_eq!(a.len(), 4 + 2 * (4 * 3 - 1) + 2, "{a}");
        // JPEG's loss moves a component by a step here and there, no more.
        let same = a.chars().zip(b.chars()).filter(|(x, y)| x == y).count();
        assert!(same >= a.len() - 4, "{a} vs {b}");
    }

    #[test]
    fn garbage_is_a_corrupt_image_naming_the_file() {
        let e = decode_small(b"not an image at all", "products/9.jpg").unwrap_err();
        assert!(e.to_string().contains("products/9.jpg"), "{e}");
        let e = decode_small(&[0xFF, 0xD8, 0x00, 0x01], "x.jpg").unwrap_err();
        assert!(matches!(e, ImageError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn relative_paths_stay_on_the_public_disk() {
        let public = Path::new("/srv/storage/app/public");
        assert_eq!(
            locate(public, "products/1.jpg").unwrap(),
            public.join("products/1.jpg")
        );
        assert!(locate(public, "../../.env").is_none());
        assert_eq!(
            locate(public, "/tmp/x.png").unwrap(),
            Path::new("/tmp/x.png")
        );
    }
}
