//! The fixed vocabulary of synthetic garments.
//!
//! | attribute | values | difficulty |
//! |-----------|--------|------------|
//! | color     | red, blue, green, yellow, black, white, pink, purple | both |
//! | pattern   | solid, stripes, dots, checks; hard adds pinstripes, plaid | both |
//! | sleeves   | sleeveless, short, long (ordered) | both |
//! | length    | short, medium, long (ordered; a dress is mini / knee length / floor length, a top cropped / regular / long) | both |
//! | neckline  | round, v-neck | both |
//! | shade     | light, medium, dark (ordered; near neighbours of one color) | hard (easy: medium) |
//! | fit       | slim, regular, loose (ordered) | hard (easy: regular) |
//!
//! Easy: 8 x 4 x 3 x 3 x 2 = 576 combinations per category, so a gallery of a few thousand images holds
//! many garments that share most attributes with any target. Hard: 8 x 6 x 3 x 3 x 2 x 3 x 3 = 7,776.

use crate::fashioniq::Category;
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            /// Every value, in vocabulary order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word captions and the attribute file use.
            pub fn word(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            fn sample(values: &[$name], rng: &mut SplitMix64) -> $name {
                values[rng.below(values.len())]
            }

            /// A different value of `values`, uniformly.
            fn other(self, values: &[$name], rng: &mut SplitMix64) -> $name {
                let others: Vec<$name> = values.iter().copied().filter(|value| *value != self).collect();
                others[rng.below(others.len())]
            }
        }
    };
}

vocabulary!(
    /// A garment's main color.
    Color {
        /// red
        Red => "red",
        /// blue
        Blue => "blue",
        /// green
        Green => "green",
        /// yellow
        Yellow => "yellow",
        /// black
        Black => "black",
        /// white
        White => "white",
        /// pink
        Pink => "pink",
        /// purple
        Purple => "purple",
    }
);

vocabulary!(
    /// The print on the fabric.
    Pattern {
        /// plain fabric
        Solid => "solid",
        /// horizontal stripes
        Stripes => "stripes",
        /// polka dots
        Dots => "dots",
        /// a checkerboard
        Checks => "checks",
        /// thin vertical lines (hard only)
        Pinstripes => "pinstripes",
        /// a grid of thin lines (hard only)
        Plaid => "plaid",
    }
);

vocabulary!(
    /// How light the color is, ordered lightest first (hard only; easy garments are all medium).
    #[derive(Default)]
    Shade {
        /// mixed toward white
        Light => "light",
        /// the color itself
        #[default]
        Medium => "medium",
        /// darkened
        Dark => "dark",
    }
);

vocabulary!(
    /// How wide the body is cut, ordered narrowest first (hard only; easy garments are all regular).
    #[derive(Default)]
    Fit {
        /// narrow
        Slim => "slim",
        /// as drawn
        #[default]
        Regular => "regular",
        /// wide
        Loose => "loose",
    }
);

vocabulary!(
    /// Sleeve length, ordered shortest first.
    Sleeves {
        /// no sleeves
        Sleeveless => "sleeveless",
        /// to mid upper arm
        Short => "short",
        /// to the wrist
        Long => "long",
    }
);

vocabulary!(
    /// Garment length, ordered shortest first.
    Length {
        /// a mini dress or a cropped top
        Short => "short",
        /// knee length dress or a regular top
        Medium => "medium",
        /// floor length dress or a long top
        Long => "long",
    }
);

vocabulary!(
    /// The neckline cut.
    Neckline {
        /// a round (crew) neck
        Round => "round",
        /// a V neck
        VNeck => "v-neck",
    }
);

impl Color {
    /// The base RGB of the color.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [200, 30, 35],
            Color::Blue => [35, 70, 190],
            Color::Green => [40, 150, 60],
            Color::Yellow => [235, 200, 40],
            Color::Black => [25, 25, 28],
            Color::White => [250, 250, 248],
            Color::Pink => [240, 140, 180],
            Color::Purple => [120, 50, 150],
        }
    }
}

/// Which attribute two garments differ in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeKind {
    /// [`Color`]
    Color,
    /// [`Pattern`]
    Pattern,
    /// [`Sleeves`]
    Sleeves,
    /// [`Length`]
    Length,
    /// [`Neckline`]
    Neckline,
    /// [`Shade`] (hard only)
    Shade,
    /// [`Fit`] (hard only)
    Fit,
}

impl AttributeKind {
    /// Every kind.
    pub const ALL: [AttributeKind; 7] = [
        AttributeKind::Color,
        AttributeKind::Pattern,
        AttributeKind::Sleeves,
        AttributeKind::Length,
        AttributeKind::Neckline,
        AttributeKind::Shade,
        AttributeKind::Fit,
    ];

    /// The kinds a garment of `difficulty` varies in.
    pub fn of(difficulty: Difficulty) -> &'static [AttributeKind] {
        match difficulty {
            Difficulty::Easy => &Self::ALL[..5],
            Difficulty::Hard => &Self::ALL,
        }
    }
}

/// How hard the generated task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Difficulty {
    /// The small vocabulary, every change named, little variation that does not matter: sum fusion of
    /// the default model solves it (the level fiq's tests and quickstart use).
    #[default]
    Easy,
    /// FashionIQ's shape: a larger vocabulary with near neighbours (shades, fits, more prints), one to
    /// three attributes changed of which captions often name only one, synonyms the default model never
    /// saw, and variation that does not matter (placement, scale, background, lighting).
    Hard,
}

impl Difficulty {
    /// Whether this is the easy level (the default).
    pub fn is_easy(&self) -> bool {
        *self == Difficulty::Easy
    }

    fn patterns(self) -> &'static [Pattern] {
        match self {
            Difficulty::Easy => &Pattern::ALL[..4],
            Difficulty::Hard => Pattern::ALL,
        }
    }
}

/// Everything that decides how a synthetic garment looks (up to small per-image jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attributes {
    /// Its category (the silhouette).
    pub category: Category,
    /// Main color.
    pub color: Color,
    /// Fabric print.
    pub pattern: Pattern,
    /// Sleeve length.
    pub sleeves: Sleeves,
    /// Garment length.
    pub length: Length,
    /// Neckline.
    pub neckline: Neckline,
    /// Shade of the color (always medium in the easy level, and then not written).
    #[serde(default, skip_serializing_if = "is_default")]
    pub shade: Shade,
    /// Cut of the body (always regular in the easy level, and then not written).
    #[serde(default, skip_serializing_if = "is_default")]
    pub fit: Fit,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Attributes {
    pub(crate) fn sample(
        category: Category,
        difficulty: Difficulty,
        rng: &mut SplitMix64,
    ) -> Attributes {
        let mut garment = Attributes {
            category,
            color: Color::sample(Color::ALL, rng),
            pattern: Pattern::sample(difficulty.patterns(), rng),
            sleeves: Sleeves::sample(Sleeves::ALL, rng),
            length: Length::sample(Length::ALL, rng),
            neckline: Neckline::sample(Neckline::ALL, rng),
            shade: Shade::Medium,
            fit: Fit::Regular,
        };
        if difficulty == Difficulty::Hard {
            garment.shade = Shade::sample(Shade::ALL, rng);
            garment.fit = Fit::sample(Fit::ALL, rng);
        }
        garment
    }

    /// A copy that differs in exactly the attributes of `kinds`, each changed to another value of
    /// `difficulty`'s vocabulary.
    pub(crate) fn changed(
        mut self,
        kinds: &[AttributeKind],
        difficulty: Difficulty,
        rng: &mut SplitMix64,
    ) -> Attributes {
        for kind in kinds {
            match kind {
                AttributeKind::Color => self.color = self.color.other(Color::ALL, rng),
                AttributeKind::Pattern => {
                    self.pattern = self.pattern.other(difficulty.patterns(), rng)
                }
                AttributeKind::Sleeves => self.sleeves = self.sleeves.other(Sleeves::ALL, rng),
                AttributeKind::Length => self.length = self.length.other(Length::ALL, rng),
                AttributeKind::Neckline => self.neckline = self.neckline.other(Neckline::ALL, rng),
                AttributeKind::Shade => self.shade = self.shade.other(Shade::ALL, rng),
                AttributeKind::Fit => self.fit = self.fit.other(Fit::ALL, rng),
            }
        }
        self
    }

    /// The kinds in which `self` and `other` differ, in [`AttributeKind::ALL`] order.
    pub fn differences(&self, other: &Attributes) -> Vec<AttributeKind> {
        AttributeKind::ALL
            .into_iter()
            .filter(|kind| match kind {
                AttributeKind::Color => self.color != other.color,
                AttributeKind::Pattern => self.pattern != other.pattern,
                AttributeKind::Sleeves => self.sleeves != other.sleeves,
                AttributeKind::Length => self.length != other.length,
                AttributeKind::Neckline => self.neckline != other.neckline,
                AttributeKind::Shade => self.shade != other.shade,
                AttributeKind::Fit => self.fit != other.fit,
            })
            .collect()
    }
}
