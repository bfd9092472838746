//! Drawing a garment: filled polygons on a square canvas, then the fabric pattern inside the silhouette.

use super::attributes::{
    Attributes, Color, Difficulty, Fit, Length, Neckline, Pattern, Shade, Sleeves,
};
use crate::fashioniq::Category;
use crate::rng::SplitMix64;

/// A point in unit coordinates: x right, y down, the canvas spanning `[0, 1]`.
type Point = (f32, f32);

/// Garment coverage of each pixel, filled polygon by polygon (even-odd inside each, union across).
struct Mask {
    size: usize,
    inside: Vec<bool>,
}

impl Mask {
    fn new(size: usize) -> Mask {
        Mask {
            size,
            inside: vec![false; size * size],
        }
    }

    /// Whether the pixel is inside with a 4-neighbour outside (or at the canvas border).
    fn on_edge(&self, row: usize, column: usize) -> bool {
        let inside = |r: usize, c: usize| self.inside[r * self.size + c];
        let last = self.size - 1;
        inside(row, column)
            && (row == 0
                || column == 0
                || row == last
                || column == last
                || !inside(row - 1, column)
                || !inside(row + 1, column)
                || !inside(row, column - 1)
                || !inside(row, column + 1))
    }

    /// Sets (or clears) every pixel whose center lies inside `polygon` (given in pixels).
    fn fill(&mut self, polygon: &[Point], value: bool) {
        let mut crossings = Vec::with_capacity(8);
        for row in 0..self.size {
            let y = row as f32 + 0.5;
            crossings.clear();
            for (index, &(x0, y0)) in polygon.iter().enumerate() {
                let (x1, y1) = polygon[(index + 1) % polygon.len()];
                if (y0 <= y) != (y1 <= y) {
                    crossings.push(x0 + (y - y0) * (x1 - x0) / (y1 - y0));
                }
            }
            crossings.sort_by(f32::total_cmp);
            for span in crossings.chunks_exact(2) {
                // Pixel centers x + 0.5 in [start, end).
                let first = (span[0] - 0.5).ceil().max(0.0) as usize;
                let last = ((span[1] - 0.5).ceil().max(0.0) as usize).min(self.size);
                for column in first..last {
                    self.inside[row * self.size + column] = value;
                }
            }
        }
    }
}

/// Per-image variation that does not change any attribute: placement, scale, tint, print spacing, and
/// at the hard level background color and lighting.
struct Jitter {
    center_x: f32,
    top: f32,
    scale: f32,
    background: [u8; 3],
    color: [f32; 3],
    period: f32,
    phase: f32,
    /// Brightness of the garment, times `1 + slope * (x - 0.5)` across the canvas (x in `[0, 1]`).
    light: f32,
    slope: f32,
}

impl Jitter {
    fn sample(color: [u8; 3], difficulty: Difficulty, rng: &mut SplitMix64) -> Jitter {
        if difficulty == Difficulty::Hard {
            return Jitter::sample_hard(color, rng);
        }
        // Drawn in this order (struct fields are evaluated in order): the easy level's files depend on it.
        Jitter {
            center_x: 0.5 + rng.uniform(-0.03, 0.03),
            top: rng.uniform(0.10, 0.15),
            scale: rng.uniform(0.93, 1.05),
            background: [232 + rng.below(19) as u8; 3],
            color: color
                .map(|channel| (f32::from(channel) + rng.uniform(-12.0, 12.0)).clamp(0.0, 255.0)),
            period: rng.uniform(0.09, 0.13),
            phase: rng.uniform(0.0, 1.0),
            light: 1.0,
            slope: 0.0,
        }
    }

    /// Wider placement and scale, a tinted background, uneven lighting: a photo studio's variety.
    fn sample_hard(color: [u8; 3], rng: &mut SplitMix64) -> Jitter {
        Jitter {
            center_x: 0.5 + rng.uniform(-0.06, 0.06),
            top: rng.uniform(0.06, 0.15),
            scale: rng.uniform(0.86, 1.06),
            background: [0; 3].map(|_| 195 + rng.below(61) as u8),
            color: color
                .map(|channel| (f32::from(channel) + rng.uniform(-16.0, 16.0)).clamp(0.0, 255.0)),
            period: rng.uniform(0.08, 0.14),
            phase: rng.uniform(0.0, 1.0),
            light: rng.uniform(0.85, 1.1),
            slope: rng.uniform(-0.25, 0.25),
        }
    }
}

/// The garment's RGB: its color at its shade (light: a third of the way to white; dark: 60 %).
fn shaded(color: Color, shade: Shade) -> [u8; 3] {
    color.rgb().map(|channel| {
        let channel = f32::from(channel);
        match shade {
            Shade::Light => channel + (255.0 - channel) * 0.35,
            Shade::Medium => channel,
            Shade::Dark => channel * 0.6,
        }
        .round() as u8
    })
}

/// Renders `attributes` as a `size` x `size` RGB image (row-major, 3 bytes per pixel).
pub(crate) fn render(
    attributes: &Attributes,
    difficulty: Difficulty,
    size: usize,
    rng: &mut SplitMix64,
) -> Vec<u8> {
    let jitter = Jitter::sample(shaded(attributes.color, attributes.shade), difficulty, rng);
    let to_pixels = |points: &[Point]| -> Vec<Point> {
        points
            .iter()
            .map(|&(x, y)| {
                let x = jitter.center_x + (x - 0.5) * jitter.scale;
                let y = jitter.top + y * jitter.scale;
                (x * size as f32, y * size as f32)
            })
            .collect()
    };

    let mut mask = Mask::new(size);
    let silhouette = Silhouette::of(attributes);
    let width = match attributes.fit {
        Fit::Slim => 0.82,
        Fit::Regular => 1.0,
        Fit::Loose => 1.22,
    };
    let to_pixels = |points: &[Point]| -> Vec<Point> {
        if attributes.fit == Fit::Regular {
            return to_pixels(points); // exactly the easy level's drawing
        }
        let widened: Vec<Point> = points
            .iter()
            .map(|&(x, y)| (0.5 + (x - 0.5) * width, y))
            .collect();
        to_pixels(&widened)
    };
    for polygon in silhouette.body() {
        mask.fill(&to_pixels(&polygon), true);
    }
    for polygon in silhouette.sleeves(attributes.sleeves) {
        mask.fill(&to_pixels(&polygon), true);
    }
    mask.fill(&to_pixels(&silhouette.neckline(attributes.neckline)), false);

    let secondary = secondary_color(attributes.color, jitter.color);
    let period = (jitter.period * size as f32).max(3.0);
    let placket_column = (jitter.center_x * size as f32) as usize;
    let mut pixels: Vec<u8> = (0..size * size).flat_map(|_| jitter.background).collect();
    for row in 0..size {
        for column in 0..size {
            if !mask.inside[row * size + column] {
                continue;
            }
            let (x, y) = (
                column as f32 + 0.5,
                row as f32 + 0.5 + jitter.phase * period,
            );
            let use_secondary = match attributes.pattern {
                Pattern::Solid => false,
                Pattern::Stripes => (y / (period * 0.5)) as usize % 2 == 1,
                Pattern::Dots => {
                    let (dx, dy) = (x % period - period * 0.5, y % period - period * 0.5);
                    dx * dx + dy * dy < (period * 0.28) * (period * 0.28)
                }
                Pattern::Checks => {
                    ((x / (period * 0.5)) as usize + (y / (period * 0.5)) as usize) % 2 == 1
                }
                Pattern::Pinstripes => x % (period * 0.6) < (period * 0.12).max(1.0),
                Pattern::Plaid => {
                    let line = (period * 0.16).max(1.0);
                    x % period < line || y % period < line
                }
            };
            let mut rgb = if use_secondary {
                secondary
            } else {
                jitter.color
            };
            // A shirt's button placket: a darker line down the middle, part of its silhouette.
            if attributes.category == Category::Shirt && column == placket_column {
                rgb = rgb.map(|channel| channel * 0.6);
            }
            // A seam along the outline keeps a white garment visible on the light background.
            if mask.on_edge(row, column) {
                rgb = rgb.map(|channel| channel * 0.72);
            }
            if jitter.light != 1.0 || jitter.slope != 0.0 {
                let across = column as f32 / size as f32 - 0.5;
                let gain = jitter.light * (1.0 + jitter.slope * across);
                rgb = rgb.map(|channel| channel * gain);
            }
            let offset = (row * size + column) * 3;
            for (out, channel) in pixels[offset..offset + 3].iter_mut().zip(rgb) {
                *out = channel.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    pixels
}

/// The second color of a print: a pale tint, or grey on white and light grey on black.
fn secondary_color(color: Color, shade: [f32; 3]) -> [f32; 3] {
    match color {
        Color::White => [150.0, 150.0, 150.0],
        Color::Black => [215.0, 215.0, 215.0],
        _ => shade.map(|channel| channel + (255.0 - channel) * 0.65),
    }
}

/// The outline of a category at a given length, in unit coordinates with the shoulders at `y = 0`.
struct Silhouette {
    shoulder_half_width: f32,
    hem: f32,
    body: Vec<Vec<Point>>,
}

impl Silhouette {
    fn of(attributes: &Attributes) -> Silhouette {
        let length_step = match attributes.length {
            Length::Short => 0,
            Length::Medium => 1,
            Length::Long => 2,
        } as f32;
        match attributes.category {
            Category::Dress => {
                let (waist, hem) = (0.28, 0.48 + 0.15 * length_step);
                let hem_half = 0.10 + 0.45 * (hem - waist);
                Silhouette {
                    shoulder_half_width: 0.13,
                    hem,
                    body: vec![
                        vec![(0.37, 0.0), (0.63, 0.0), (0.60, waist), (0.40, waist)],
                        vec![
                            (0.40, waist),
                            (0.60, waist),
                            (0.5 + hem_half, hem),
                            (0.5 - hem_half, hem),
                        ],
                    ],
                }
            }
            Category::Shirt => {
                let hem = 0.38 + 0.14 * length_step;
                Silhouette {
                    shoulder_half_width: 0.17,
                    hem,
                    body: vec![vec![(0.33, 0.0), (0.67, 0.0), (0.67, hem), (0.33, hem)]],
                }
            }
            Category::Toptee => {
                let hem = 0.34 + 0.14 * length_step;
                Silhouette {
                    shoulder_half_width: 0.14,
                    hem,
                    body: vec![vec![(0.36, 0.0), (0.64, 0.0), (0.66, hem), (0.34, hem)]],
                }
            }
        }
    }

    fn body(&self) -> Vec<Vec<Point>> {
        self.body.clone()
    }

    /// Both sleeves, mirrored about the center line.
    fn sleeves(&self, sleeves: Sleeves) -> Vec<Vec<Point>> {
        let (reach, drop, width) = match sleeves {
            Sleeves::Sleeveless => return Vec::new(),
            Sleeves::Short => (0.11, 0.10, 0.08),
            Sleeves::Long => (0.16, 0.38, 0.07),
        };
        let shoulder = self.shoulder_half_width;
        let armpit_depth = 0.12f32.min(self.hem);
        [1.0f32, -1.0]
            .into_iter()
            .map(|side| {
                let x = |offset: f32| 0.5 + side * offset;
                vec![
                    (x(shoulder), 0.0),
                    (x(shoulder + reach), drop),
                    (x(shoulder + reach - width * 0.8), drop + width * 0.6),
                    (x(shoulder - 0.02), armpit_depth),
                ]
            })
            .collect()
    }

    /// The cut-out at the neck (cleared from the mask).
    fn neckline(&self, neckline: Neckline) -> Vec<Point> {
        match neckline {
            Neckline::VNeck => vec![(0.44, -0.02), (0.56, -0.02), (0.5, 0.13)],
            Neckline::Round => {
                let mut points = vec![(0.44, -0.02)];
                points.extend((0..=8).map(|step| {
                    let angle = std::f32::consts::PI * step as f32 / 8.0;
                    (0.5 - 0.065 * angle.cos(), 0.065 * angle.sin())
                }));
                points.push((0.565, -0.02));
                points
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_fills_exactly_its_pixels() {
        let mut mask = Mask::new(8);
        mask.fill(&[(2.0, 2.0), (6.0, 2.0), (6.0, 5.0), (2.0, 5.0)], true);
        let filled: Vec<usize> = (0..64).filter(|&i| mask.inside[i]).collect();
        let expected: Vec<usize> = (2..5)
            .flat_map(|row| (2..6).map(move |column| row * 8 + column))
            .collect();
        assert_eq!(filled, expected);
        mask.fill(&[(3.0, 0.0), (5.0, 0.0), (5.0, 8.0), (3.0, 8.0)], false);
        assert_eq!((0..64).filter(|&i| mask.inside[i]).count(), 6);
    }

    #[test]
    fn attributes_change_the_pixels_they_should() {
        let base = Attributes {
            category: Category::Dress,
            color: Color::Red,
            pattern: Pattern::Solid,
            sleeves: Sleeves::Sleeveless,
            length: Length::Short,
            neckline: Neckline::Round,
            shade: Shade::Medium,
            fit: Fit::Regular,
        };
        let draw = |attributes: &Attributes| {
            render(attributes, Difficulty::Easy, 64, &mut SplitMix64::new(9))
        };
        let garment_pixels =
            |pixels: &[u8]| pixels.chunks(3).filter(|rgb| rgb[0] != rgb[1]).count();
        let short = draw(&base);
        let long = draw(&Attributes {
            length: Length::Long,
            ..base
        });
        let sleeved = draw(&Attributes {
            sleeves: Sleeves::Long,
            ..base
        });
        assert!(garment_pixels(&long) > garment_pixels(&short) + 200);
        assert!(garment_pixels(&sleeved) > garment_pixels(&short) + 50);
        let striped = draw(&Attributes {
            pattern: Pattern::Stripes,
            ..base
        });
        assert_eq!(garment_pixels(&striped), garment_pixels(&short));
        assert_ne!(striped, short);
        // Red dominates the garment pixels.
        let reddish = short
            .chunks(3)
            .filter(|rgb| rgb[0] > 150 && rgb[1] < 80 && rgb[2] < 80)
            .count();
        assert!(reddish > 300, "{reddish}");
    }
}
