//! FashionIQ-style relative captions from the attribute differences of a candidate and its target.

use super::attributes::{AttributeKind, Attributes, Length, Neckline, Pattern, Sleeves};
use crate::fashioniq::Category;
use crate::rng::SplitMix64;

/// Every phrase that truthfully says how `target` differs from `candidate` in `kind` (at least two).
pub(crate) fn wordings(
    kind: AttributeKind,
    candidate: &Attributes,
    target: &Attributes,
) -> Vec<String> {
    let owned = |phrases: &[&str]| {
        phrases
            .iter()
            .map(|phrase| (*phrase).to_owned())
            .collect::<Vec<_>>()
    };
    match kind {
        AttributeKind::Color => {
            let (to, from) = (target.color.word(), candidate.color.word());
            vec![
                format!("is {to}"),
                format!("is {to} in color"),
                format!("{to} instead of {from}"),
            ]
        }
        AttributeKind::Pattern => owned(match target.pattern {
            Pattern::Solid => &["is solid", "has no pattern"],
            Pattern::Stripes => &["has stripes", "is striped"],
            Pattern::Dots => &["has polka dots", "is dotted"],
            Pattern::Checks => &["has checks", "is checkered"],
        }),
        AttributeKind::Sleeves => {
            let mut phrases = owned(match target.sleeves {
                Sleeves::Sleeveless => &["is sleeveless", "has no sleeves"],
                Sleeves::Short => &["has short sleeves"],
                Sleeves::Long => &["has long sleeves"],
            });
            phrases.push(
                if target.sleeves < candidate.sleeves {
                    "has shorter sleeves"
                } else {
                    "has longer sleeves"
                }
                .to_owned(),
            );
            phrases
        }
        AttributeKind::Length => {
            let relative = if target.length < candidate.length {
                "is shorter"
            } else {
                "is longer"
            };
            let absolute = match (target.category, target.length) {
                (Category::Dress, Length::Short) => "is mini",
                (Category::Dress, Length::Medium) => "is knee length",
                (Category::Dress, Length::Long) => "is floor length",
                (_, Length::Short) => "is cropped",
                (_, Length::Medium) => "is regular length",
                (_, Length::Long) => "is long",
            };
            owned(&[relative, absolute])
        }
        AttributeKind::Neckline => owned(match target.neckline {
            Neckline::VNeck => &["has a v-neck", "has a v neckline"],
            Neckline::Round => &["has a round neck", "has a crew neckline"],
        }),
    }
}

/// Joins phrases with `" and "`, dropping a repeated leading `"is "` ("is red and sleeveless").
pub(crate) fn join_phrases(phrases: &[String]) -> String {
    let mut text = String::new();
    let mut previous_is = false;
    for (position, phrase) in phrases.iter().enumerate() {
        let starts_with_is = phrase.starts_with("is ");
        if position > 0 {
            text.push_str(" and ");
        }
        if position > 0 && previous_is && starts_with_is {
            text.push_str(&phrase["is ".len()..]);
        } else {
            text.push_str(phrase);
        }
        previous_is = starts_with_is;
    }
    text
}

/// Two captions for the change from `candidate` to `target`, as two annotators might write them: the first
/// names every difference; the second uses other wordings, and for a two-attribute change sometimes names
/// only one of them (as real annotators often do).
pub(crate) fn relative_captions(
    candidate: &Attributes,
    target: &Attributes,
    rng: &mut SplitMix64,
) -> [String; 2] {
    let mut kinds = candidate.differences(target);
    rng.shuffle(&mut kinds);
    let options: Vec<Vec<String>> = kinds
        .iter()
        .map(|&kind| wordings(kind, candidate, target))
        .collect();
    let first_choice: Vec<usize> = options
        .iter()
        .map(|phrases| rng.below(phrases.len()))
        .collect();
    let first: Vec<String> = options
        .iter()
        .zip(&first_choice)
        .map(|(phrases, &choice)| phrases[choice].clone())
        .collect();
    // Another wording of the same kind: shift by 1..len so it never repeats the first caption's phrase.
    let other_wording = |position: usize, rng: &mut SplitMix64| {
        let phrases = &options[position];
        let shift = 1 + rng.below(phrases.len() - 1);
        phrases[(first_choice[position] + shift) % phrases.len()].clone()
    };
    let second: Vec<String> = if kinds.len() > 1 && rng.below(2) == 0 {
        let position = rng.below(kinds.len());
        vec![other_wording(position, rng)]
    } else {
        (0..kinds.len())
            .rev()
            .map(|position| other_wording(position, rng))
            .collect()
    };
    [join_phrases(&first), join_phrases(&second)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::attributes::{Color, Neckline};

    fn garment() -> Attributes {
        Attributes {
            category: Category::Dress,
            color: Color::Blue,
            pattern: Pattern::Solid,
            sleeves: Sleeves::Short,
            length: Length::Medium,
            neckline: Neckline::Round,
        }
    }

    #[test]
    fn joined_phrases_read_like_fashioniq() {
        let phrases = [
            "is red".to_string(),
            "is sleeveless".to_string(),
            "has stripes".to_string(),
        ];
        assert_eq!(
            join_phrases(&phrases),
            "is red and sleeveless and has stripes"
        );
    }

    #[test]
    fn wordings_follow_the_direction_of_change() {
        let candidate = garment();
        let target = Attributes {
            sleeves: Sleeves::Sleeveless,
            length: Length::Long,
            ..candidate
        };
        let sleeves = wordings(AttributeKind::Sleeves, &candidate, &target);
        assert_eq!(
            sleeves,
            ["is sleeveless", "has no sleeves", "has shorter sleeves"]
        );
        let length = wordings(AttributeKind::Length, &candidate, &target);
        assert_eq!(length, ["is longer", "is floor length"]);
    }

    #[test]
    fn second_caption_never_repeats_the_first_for_one_change() {
        let candidate = garment();
        let target = Attributes {
            color: Color::Red,
            ..candidate
        };
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            let [first, second] = relative_captions(&candidate, &target, &mut rng);
            assert_ne!(first, second);
            assert!(
                first.contains("red") && second.contains("red"),
                "{first} / {second}"
            );
        }
    }
}
