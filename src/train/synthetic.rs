//! Fake features for synthetic FashionIQ ([`crate::synth`]), so training can be tested and benchmarked
//! without CLIP: an image vector is its attributes one-hot plus a little per-image noise; a text vector is a
//! bag of the attribute words it names. **Not a real encoder**: numbers measured with it say how the
//! training machinery behaves, not how a CLIP model would.

use crate::index::{IndexWriter, ItemMeta, ModelInfo};
use crate::rng::SplitMix64;
use crate::synth::attributes::{Attributes, Color, Length, Neckline, Pattern, Sleeves};
use crate::synth::AttributeFile;
use std::path::Path;

/// The fake feature dimension: 20 attribute values, one text bias, 11 noise dimensions.
pub const DIM: usize = 32;
const NOISE: f32 = 0.35;

fn position<T: PartialEq>(all: &[T], value: &T) -> usize {
    all.iter().position(|v| v == value).unwrap_or(0)
}

/// The fake image vector of a synthetic garment named `name`.
pub fn image_vector(name: &str, attributes: &Attributes) -> Vec<f32> {
    let mut vector = vec![0.0; DIM];
    vector[position(Color::ALL, &attributes.color)] = 1.0;
    vector[8 + position(Pattern::ALL, &attributes.pattern)] = 1.0;
    vector[12 + position(Sleeves::ALL, &attributes.sleeves)] = 1.0;
    vector[15 + position(Length::ALL, &attributes.length)] = 1.0;
    vector[18 + position(Neckline::ALL, &attributes.neckline)] = 1.0;
    // Per-image noise (the "drawing jitter"), seeded by the name, so attribute twins differ.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = SplitMix64::new(seed);
    for value in &mut vector {
        *value += rng.uniform(-NOISE, NOISE) * 0.3;
    }
    for value in &mut vector[21..] {
        *value += rng.uniform(-NOISE, NOISE);
    }
    vector
}

/// The fake text vector: the attribute words a caption names, plus a constant so no text is zero.
pub fn text_vector(text: &str) -> Vec<f32> {
    let text = text.to_lowercase();
    let mut vector = vec![0.0; DIM];
    vector[20] = 0.5;
    for (index, color) in Color::ALL.iter().enumerate() {
        // "red instead of blue" names the old color too; only a color right after "is" or first is new.
        if text
            .split(" and ")
            .any(|part| part.trim_start_matches("is ").starts_with(color.word()))
        {
            vector[index] = 1.0;
        }
    }
    let cues: [(&str, usize); 15] = [
        ("solid", 8),
        ("no pattern", 8),
        ("stripe", 9),
        ("dot", 10),
        ("check", 11),
        ("sleeveless", 12),
        ("no sleeves", 12),
        ("short sleeves", 13),
        ("long sleeves", 14),
        ("mini", 15),
        ("cropped", 15),
        ("knee", 16),
        ("floor length", 17),
        ("round neck", 18),
        ("v-neck", 19),
    ];
    for (cue, index) in cues {
        if text.contains(cue) {
            vector[index] = 1.0;
        }
    }
    vector
}

/// A text encoder over [`text_vector`], in the shape [`super::TextEncoder`] takes.
pub fn encode_texts(texts: &[String]) -> Result<Vec<Vec<f32>>, crate::eval::BackendError> {
    Ok(texts.iter().map(|text| text_vector(text)).collect())
}

/// Writes an index at `index_path` holding the fake vector of every image of the synthetic tree at
/// `root` (keys are image names, categories in the metadata).
pub fn write_index(root: &Path, index_path: &Path) -> crate::Result<usize> {
    let record = AttributeFile::read(root)?;
    let mut writer = IndexWriter::create(index_path, DIM, ModelInfo::default())?;
    for image in &record.images {
        let meta = ItemMeta {
            category: image.attributes.category.as_str().to_owned(),
            source: String::new(),
        };
        writer.add(
            &image.name,
            &image_vector(&image.name, &image.attributes),
            &meta,
        )?;
    }
    writer.commit()?;
    Ok(record.images.len())
}
