//! Turning a triplet's two captions into model text the way the papers do (CLIP4Cir's validation and
//! `generate_randomized_fiq_caption`): strip `.`, `?`, `,` and spaces at both ends, capitalize the first
//! caption Python-style (first letter upper case, the rest lower case), join with `" and "`.

/// A caption with `.`, `?`, `,` and whitespace removed from both ends.
///
/// ```
/// assert_eq!(fiq::fashioniq::clean_caption("  is red, ."), "is red");
/// ```
pub fn clean_caption(caption: &str) -> &str {
    caption.trim_matches(|c: char| matches!(c, '.' | '?' | ',') || c.is_whitespace())
}

/// Python's `str.capitalize`: the first character upper case, every other character lower case.
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}

/// The evaluation query text: `"{C1} and {c2}"`, the first caption cleaned and capitalized (its other letters
/// lower-cased, as Python's `capitalize` does), the second only cleaned, exactly as CLIP4Cir's FashionIQ
/// validation builds it.
///
/// One deliberate difference: when one caption is empty (3 of the 6,016 real val triplets), the other is used
/// alone, capitalized, instead of CLIP4Cir's `" and {c2}"`. Both empty gives an empty string; the loader
/// drops such triplets.
///
/// ```
/// use fiq::fashioniq::eval_query_text;
/// let captions = ["is Shiny and silver.".to_string(), "Fit and flare ".to_string()];
/// assert_eq!(eval_query_text(&captions), "Is shiny and silver and Fit and flare");
/// ```
pub fn eval_query_text(captions: &[String; 2]) -> String {
    join_captions(&captions[0], &captions[1])
}

fn join_captions(first: &str, second: &str) -> String {
    let (first, second) = (clean_caption(first), clean_caption(second));
    match (first.is_empty(), second.is_empty()) {
        (false, false) => format!("{} and {}", capitalize(first), second),
        (false, true) => capitalize(first),
        (true, false) => capitalize(second),
        (true, true) => String::new(),
    }
}

/// The four training texts of CLIP4Cir's `generate_randomized_fiq_caption`, one drawn per triplet and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrainingCaption {
    /// `"{C1} and {c2}"` (the evaluation text).
    FirstAndSecond,
    /// `"{C2} and {c1}"`.
    SecondAndFirst,
    /// `"{C1}"`.
    First,
    /// `"{C2}"`.
    Second,
}

impl TrainingCaption {
    /// The four variants, each drawn with probability 1/4 in CLIP4Cir.
    pub const ALL: [TrainingCaption; 4] = [
        TrainingCaption::FirstAndSecond,
        TrainingCaption::SecondAndFirst,
        TrainingCaption::First,
        TrainingCaption::Second,
    ];

    /// The variant for a uniform draw `index` (taken modulo 4), so a caller's PRNG picks one.
    pub fn from_draw(index: u64) -> TrainingCaption {
        TrainingCaption::ALL[(index % 4) as usize]
    }
}

/// The training text of `variant`. A single-caption variant whose caption is empty falls back to the other
/// caption, so a training step never sees empty text while one caption is non-empty.
///
/// ```
/// use fiq::fashioniq::{training_query_text, TrainingCaption};
/// let captions = ["is red".to_string(), "Has stripes.".to_string()];
/// assert_eq!(training_query_text(&captions, TrainingCaption::SecondAndFirst), "Has stripes and is red");
/// assert_eq!(training_query_text(&captions, TrainingCaption::Second), "Has stripes");
/// ```
pub fn training_query_text(captions: &[String; 2], variant: TrainingCaption) -> String {
    let [first, second] = captions;
    match variant {
        TrainingCaption::FirstAndSecond => join_captions(first, second),
        TrainingCaption::SecondAndFirst => join_captions(second, first),
        TrainingCaption::First => single_caption(first, second),
        TrainingCaption::Second => single_caption(second, first),
    }
}

fn single_caption(preferred: &str, fallback: &str) -> String {
    if clean_caption(preferred).is_empty() {
        join_captions(fallback, "")
    } else {
        join_captions(preferred, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(first: &str, second: &str) -> [String; 2] {
        [first.to_owned(), second.to_owned()]
    }

    #[test]
    fn eval_text_matches_clip4cir_formatting() {
        let cases = [
            // (captions, expected): first capitalized with the rest lowered, second only stripped.
            (
                ("is shiny and silver with shorter sleeves", "fit and flare"),
                "Is shiny and silver with shorter sleeves and fit and flare",
            ),
            (
                (" yello and more flowing", "short and black"),
                "Yello and more flowing and short and black",
            ),
            (
                ("Is a SOLID red.", "Is shinier?"),
                "Is a solid red and Is shinier",
            ),
            (
                (",is grey, ", " . has buttons ."),
                "Is grey and has buttons",
            ),
            (
                ("", "is an off the shoulder top"),
                "Is an off the shoulder top",
            ),
            (("is blue", "  "), "Is blue"),
            (("", ""), ""),
        ];
        for ((first, second), expected) in cases {
            assert_eq!(
                eval_query_text(&pair(first, second)),
                expected,
                "captions {first:?} / {second:?}"
            );
        }
    }

    #[test]
    fn training_variants_cover_both_orders_and_singles() {
        let captions = pair("is red.", "Has Stripes");
        let texts: Vec<String> = TrainingCaption::ALL
            .iter()
            .map(|&variant| training_query_text(&captions, variant))
            .collect();
        assert_eq!(
            texts,
            [
                "Is red and Has Stripes",
                "Has stripes and is red",
                "Is red",
                "Has stripes"
            ]
        );
        let one_empty = pair("", "is longer");
        assert_eq!(
            training_query_text(&one_empty, TrainingCaption::First),
            "Is longer"
        );
        assert_eq!(
            training_query_text(&one_empty, TrainingCaption::Second),
            "Is longer"
        );
        assert_eq!(TrainingCaption::from_draw(6), TrainingCaption::First);
    }
}
