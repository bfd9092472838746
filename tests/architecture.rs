//! ARCHITECTURE.md is a map; a map that names places that do not exist misleads. Every path it names in
//! backticks must exist.

use std::path::Path;

#[test]
fn every_path_named_in_architecture_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        // Odd pieces are inside backticks; keep the ones that look like repository paths.
        let looks_like_path = i % 2 == 1
            && !span.contains(' ')
            && (span.ends_with(".rs")
                || span.ends_with(".md")
                || span.ends_with(".sh")
                || span.ends_with(".py")
                || span.ends_with('/'))
            && (span.contains('/') || span.ends_with(".md"));
        if !looks_like_path {
            continue;
        }
        checked += 1;
        let candidates = [
            root.join(span),
            root.join("src").join(span),
            root.join("src/ann").join(span),
        ];
        if !candidates.iter().any(|p| p.exists()) {
            missing.push(span.to_owned());
        }
    }
    assert!(
        checked > 10,
        "only {checked} paths found; did the format of ARCHITECTURE.md change?"
    );
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}
