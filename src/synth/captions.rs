//! FashionIQ-style relative captions from the attribute differences of a candidate and its target.

use super::attributes::{
    AttributeKind, Attributes, Color, Difficulty, Fit, Length, Neckline, Pattern, Sleeves,
};
use crate::fashioniq::Category;
use crate::rng::SplitMix64;

/// Every phrase that truthfully says how `target` differs from `candidate` in `kind` (at least two).
pub(crate) fn wordings(
    kind: AttributeKind,
    candidate: &Attributes,
    target: &Attributes,
) -> Vec<String> {
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
            Pattern::Pinstripes => &["has pinstripes", "has thin vertical lines"],
            Pattern::Plaid => &["is plaid", "has a grid of lines"],
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
        AttributeKind::Shade => owned(if target.shade < candidate.shade {
            &["is lighter", "is a lighter shade"]
        } else {
            &["is darker", "is a darker shade"]
        }),
        AttributeKind::Fit => {
            let relative = if target.fit < candidate.fit {
                "is tighter"
            } else {
                "is looser"
            };
            let absolute = match target.fit {
                Fit::Slim => "is slim",
                Fit::Regular => "is regular fit",
                Fit::Loose => "is loose",
            };
            owned(&[relative, absolute])
        }
    }
}

/// Other ways to say what [`wordings`] says, in words the default model was not trained on (its
/// training captions are the easy level's): the hard level's paraphrases.
pub(crate) fn synonyms(
    kind: AttributeKind,
    candidate: &Attributes,
    target: &Attributes,
) -> Vec<String> {
    match kind {
        AttributeKind::Color => {
            let names: &[&str] = match target.color {
                Color::Red => &["crimson", "scarlet", "ruby"],
                Color::Blue => &["navy", "azure", "cobalt"],
                Color::Green => &["emerald", "olive", "jade"],
                Color::Yellow => &["mustard", "lemon", "golden"],
                Color::Black => &["ebony", "jet", "charcoal"],
                Color::White => &["ivory", "cream", "snowy"],
                Color::Pink => &["blush", "rose", "fuchsia"],
                Color::Purple => &["violet", "plum", "lavender"],
            };
            names
                .iter()
                .flat_map(|name| [format!("is {name}"), format!("comes in {name}")])
                .collect()
        }
        AttributeKind::Pattern => owned(match target.pattern {
            Pattern::Solid => &["is plain", "is monochrome", "has no print"],
            Pattern::Stripes => &["is banded", "has horizontal bands"],
            Pattern::Dots => &["is polka-dotted", "is spotty", "has spots"],
            Pattern::Checks => &["is chequered", "has a checkerboard print"],
            Pattern::Pinstripes => &["is pinstriped", "has fine vertical lines"],
            Pattern::Plaid => &["is tartan", "has a grid print"],
        }),
        AttributeKind::Sleeves => {
            let mut phrases = owned(match target.sleeves {
                Sleeves::Sleeveless => &["is armless", "is strappy"],
                Sleeves::Short => &["has cap sleeves", "has half sleeves"],
                Sleeves::Long => &["has full sleeves", "has wrist length sleeves"],
            });
            phrases.push(
                if target.sleeves < candidate.sleeves {
                    "shows more arm"
                } else {
                    "covers more of the arms"
                }
                .to_owned(),
            );
            phrases
        }
        AttributeKind::Length => {
            let relative = if target.length < candidate.length {
                "is briefer"
            } else {
                "is lengthier"
            };
            let absolute: &[&str] = match (target.category, target.length) {
                (Category::Dress, Length::Short) => &["is above the knee", "is a mini"],
                (Category::Dress, Length::Medium) => &["is midi", "is mid length"],
                (Category::Dress, Length::Long) => &["is maxi", "is ankle length"],
                (_, Length::Short) => &["is a crop top", "is midriff baring"],
                (_, Length::Medium) => &["is hip length", "is standard length"],
                (_, Length::Long) => &["is tunic length", "is extra long"],
            };
            let mut phrases = owned(absolute);
            phrases.push(relative.to_owned());
            phrases
        }
        AttributeKind::Neckline => owned(match target.neckline {
            Neckline::VNeck => &["has a plunging neckline", "has a deep vee"],
            Neckline::Round => &["has a scoop neck", "has a jewel neckline"],
        }),
        AttributeKind::Shade => owned(if target.shade < candidate.shade {
            &["is paler", "is more pastel", "is brighter"]
        } else {
            &["is deeper", "is more muted", "is dimmer"]
        }),
        AttributeKind::Fit => owned(match (target.fit < candidate.fit, target.fit) {
            (true, Fit::Slim) => &["is bodycon", "is more fitted", "hugs the body"],
            (true, _) => &["is more fitted", "is less baggy"],
            (false, Fit::Loose) => &["is oversized", "is baggier", "is relaxed"],
            (false, _) => &["is baggier", "is less fitted"],
        }),
    }
}

/// A phrase table as owned strings.
fn owned(phrases: &[&str]) -> Vec<String> {
    phrases.iter().map(|phrase| (*phrase).to_owned()).collect()
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

/// Two captions for the change from `candidate` to `target`, as two annotators might write them.
///
/// Easy: the first names every difference; the second uses other wordings, and for a two-attribute
/// change sometimes names only one of them (as real annotators often do). Hard: each caption names one
/// difference, or two, of the one to three there are (usually one, as FashionIQ's annotators do), each in
/// a wording or a synonym drawn at random ([`synonyms`]).
pub(crate) fn relative_captions(
    candidate: &Attributes,
    target: &Attributes,
    difficulty: Difficulty,
    rng: &mut SplitMix64,
) -> [String; 2] {
    if difficulty == Difficulty::Hard {
        return [(); 2].map(|()| hard_caption(candidate, target, rng));
    }
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

/// A description of every attribute of `garment` ("a dress that is red and striped and has long sleeves
/// and is knee length and has a v-neck"), in the phrases the relative captions use, in random order: the
/// image-text half of the objective the built-in model is trained with ([`crate::train::pretrain_on_synthetic`]).
/// The hard level adds its shade ("is a dark shade") and fit ("is slim").
pub(crate) fn absolute_caption(
    garment: &Attributes,
    difficulty: Difficulty,
    rng: &mut SplitMix64,
) -> String {
    let mut pick = |mut phrases: Vec<String>| phrases.swap_remove(rng.below(phrases.len()));
    let color = garment.color.word();
    let mut sleeves = wordings(AttributeKind::Sleeves, garment, garment);
    // The last sleeve wording is relative ("has longer sleeves"): meaningless without a candidate.
    sleeves.pop();
    let mut phrases = vec![
        pick(vec![format!("is {color}"), format!("is {color} in color")]),
        pick(wordings(AttributeKind::Pattern, garment, garment)),
        pick(sleeves),
        // The second length and fit wordings are the absolute ones ("is knee length", "is slim").
        wordings(AttributeKind::Length, garment, garment).swap_remove(1),
        pick(wordings(AttributeKind::Neckline, garment, garment)),
    ];
    if difficulty == Difficulty::Hard {
        phrases.push(format!("is a {} shade", garment.shade.word()));
        phrases.push(wordings(AttributeKind::Fit, garment, garment).swap_remove(1));
    }
    let nouns: &[&str] = match garment.category {
        Category::Dress => &["dress"],
        Category::Shirt => &["shirt", "button-down shirt"],
        Category::Toptee => &["top", "tee", "t-shirt"],
    };
    let noun = nouns[rng.below(nouns.len())];
    rng.shuffle(&mut phrases);
    format!("a {noun} that {}", join_phrases(&phrases))
}

/// One hard-level caption: one or two of the differences, each in any of its wordings and synonyms.
fn hard_caption(candidate: &Attributes, target: &Attributes, rng: &mut SplitMix64) -> String {
    let mut kinds = candidate.differences(target);
    rng.shuffle(&mut kinds);
    // One difference named or two, even odds (when there are two or more); each phrase a synonym one
    // time in three.
    let named = if kinds.len() > 1 && rng.below(2) == 0 {
        2
    } else {
        1
    };
    let phrases: Vec<String> = kinds[..named]
        .iter()
        .map(|&kind| {
            let mut choices = match rng.below(3) {
                0 => synonyms(kind, candidate, target),
                _ => wordings(kind, candidate, target),
            };
            choices.swap_remove(rng.below(choices.len()))
        })
        .collect();
    join_phrases(&phrases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::attributes::Shade;

    fn garment() -> Attributes {
        Attributes {
            category: Category::Dress,
            color: Color::Blue,
            pattern: Pattern::Solid,
            sleeves: Sleeves::Short,
            length: Length::Medium,
            neckline: Neckline::Round,
            shade: Shade::Medium,
            fit: Fit::Regular,
        }
    }

    #[test]
    fn absolute_captions_name_every_attribute_and_no_change() {
        let garment = Attributes {
            color: Color::Red,
            pattern: Pattern::Stripes,
            sleeves: Sleeves::Long,
            neckline: Neckline::VNeck,
            ..garment()
        };
        let mut rng = SplitMix64::new(11);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..40 {
            let caption = absolute_caption(&garment, Difficulty::Easy, &mut rng);
            assert!(caption.starts_with("a dress that "), "{caption}");
            for needle in ["red", "stripe", "long sleeves", "knee length", "v"] {
                assert!(caption.contains(needle), "{caption} lacks {needle:?}");
            }
            for relative in ["longer", "shorter", "instead of", "darker", "shade"] {
                assert!(!caption.contains(relative), "{caption} says {relative:?}");
            }
            seen.insert(caption);
        }
        // Order and wording vary from draw to draw.
        assert!(seen.len() > 10, "only {} distinct captions", seen.len());
        let hard = Attributes {
            shade: Shade::Dark,
            fit: Fit::Slim,
            category: Category::Toptee,
            ..garment
        };
        let caption = absolute_caption(&hard, Difficulty::Hard, &mut rng);
        for needle in ["a dark shade", "slim"] {
            assert!(caption.contains(needle), "{caption} lacks {needle:?}");
        }
        assert!(
            ["a top ", "a tee ", "a t-shirt "]
                .iter()
                .any(|noun| caption.starts_with(noun)),
            "{caption}"
        );
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
            let [first, second] =
                relative_captions(&candidate, &target, Difficulty::Easy, &mut rng);
            assert_ne!(first, second);
            assert!(
                first.contains("red") && second.contains("red"),
                "{first} / {second}"
            );
        }
    }
}
