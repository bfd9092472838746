//! The small, fixed vocabulary of synthetic garments.
//!
//! | attribute | values |
//! |-----------|--------|
//! | color     | red, blue, green, yellow, black, white, pink, purple |
//! | pattern   | solid, stripes, dots, checks |
//! | sleeves   | sleeveless, short, long (ordered) |
//! | length    | short, medium, long (ordered; a dress is mini / knee length / floor length, a top cropped / regular / long) |
//! | neckline  | round, v-neck |
//!
//! 8 x 4 x 3 x 3 x 2 = 576 combinations per category, so a gallery of a few thousand images holds many
//! garments that share most attributes with any target.

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

            fn sample(rng: &mut SplitMix64) -> $name {
                Self::ALL[rng.below(Self::ALL.len())]
            }

            /// A different value, uniformly.
            fn other(self, rng: &mut SplitMix64) -> $name {
                let others: Vec<$name> = Self::ALL.iter().copied().filter(|value| *value != self).collect();
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
}

impl AttributeKind {
    /// Every kind.
    pub const ALL: [AttributeKind; 5] = [
        AttributeKind::Color,
        AttributeKind::Pattern,
        AttributeKind::Sleeves,
        AttributeKind::Length,
        AttributeKind::Neckline,
    ];
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
}

impl Attributes {
    pub(crate) fn sample(category: Category, rng: &mut SplitMix64) -> Attributes {
        Attributes {
            category,
            color: Color::sample(rng),
            pattern: Pattern::sample(rng),
            sleeves: Sleeves::sample(rng),
            length: Length::sample(rng),
            neckline: Neckline::sample(rng),
        }
    }

    /// A copy that differs in exactly the attributes of `kinds`.
    pub(crate) fn changed(mut self, kinds: &[AttributeKind], rng: &mut SplitMix64) -> Attributes {
        for kind in kinds {
            match kind {
                AttributeKind::Color => self.color = self.color.other(rng),
                AttributeKind::Pattern => self.pattern = self.pattern.other(rng),
                AttributeKind::Sleeves => self.sleeves = self.sleeves.other(rng),
                AttributeKind::Length => self.length = self.length.other(rng),
                AttributeKind::Neckline => self.neckline = self.neckline.other(rng),
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
            })
            .collect()
    }
}
