//! Fine-tuning the built-in model's encoder on a small synthetic FashionIQ tree (the hard level): the
//! text tower learns, the fine-tuned checkpoint queries the index the base model built, a resumed run is
//! bit-for-bit the uninterrupted one, and an image-tower run makes a model the old index refuses.

use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions};
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::fusion::Fusion;
use fiq::index::Index;
use fiq::pipeline::{build_catalog, BuildOptions};
use fiq::synth::{Difficulty, SynthOptions};
use fiq::train::{
    evaluate_fusion, fine_tune_encoder, FineTuneData, FineTuneOptions, Mining, TunedTowers,
    Validation,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fiq-default")
}

/// One synthetic tree with an index of its train and val images, built once for every test.
struct Tree {
    _dir: tempfile::TempDir,
    data: PathBuf,
    index: PathBuf,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("fashioniq");
        let options = SynthOptions {
            per_category: 60,
            seed: 20_261_201,
            difficulty: Difficulty::Hard,
            ..SynthOptions::default()
        };
        fiq::synth::generate(&data, &options).unwrap();
        let encoder = ClipEncoder::load(&default_model(), &EncoderOptions::default()).unwrap();
        let index = dir.path().join("index");
        let quiet = BuildOptions {
            progress: false,
            ..BuildOptions::default()
        };
        for split in [Split::Train, Split::Val] {
            let dataset =
                Dataset::load(&data, &Category::ALL, split, LoadOptions::default()).unwrap();
            build_catalog(&dataset, &encoder, &index, &quiet).unwrap();
        }
        Tree {
            _dir: dir,
            data,
            index,
        }
    })
}

fn split(split: Split) -> Dataset {
    Dataset::load(
        &tree().data,
        &Category::ALL,
        split,
        LoadOptions::annotations_only(),
    )
    .unwrap()
}

fn options(towers: TunedTowers, epochs: usize) -> FineTuneOptions {
    FineTuneOptions {
        towers,
        epochs,
        batch_size: 32,
        learning_rate: 1e-4,
        warmup_steps: 2,
        // The nearest non-targets: the hardest negatives stay the hardest, so epoch losses compare.
        // Positive-aware negatives (the default) are the items just below the target, which get
        // harder as training lifts it, and on this fixture the epoch loss then rose while training.
        mining: Mining {
            negatives: 4,
            every: 1,
            below_target: None,
            ..Mining::default()
        },
        seed: 5,
        ..FineTuneOptions::default()
    }
}

/// Mean R@10 and R@50 of sum fusion on `dataset` with `model`'s texts against `index`.
fn sum_recall(model: &Path, dataset: Dataset, index: &Index) -> (f64, f64) {
    let encoder = ClipEncoder::load(model, &EncoderOptions::default()).unwrap();
    let encode = |texts: &[String]| -> Result<Vec<Vec<f32>>, fiq::eval::BackendError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(encoder.encode_texts(&refs)?)
    };
    let validation = Validation::build(dataset, index.dim(), &encode).unwrap();
    let report = evaluate_fusion(&validation, index, Fusion::Sum).unwrap();
    let at = |k: usize| report.average.iter().find(|m| m.k == k).unwrap().recall;
    (at(10), at(50))
}

#[test]
fn text_tower_fine_tuning_lowers_the_loss_raises_recall_and_keeps_the_index() {
    let index = Index::open(&tree().index).unwrap();
    let train = split(Split::Train);
    let out = tempfile::tempdir().unwrap();
    let data = FineTuneData {
        train: &train,
        validation: None,
        index: &index,
    };
    let summary = fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &options(TunedTowers::Text, 4),
        out.path(),
        None,
    )
    .unwrap();
    let history = &summary.record.history;
    assert_eq!(history.len(), 4);
    assert!(
        history[3].loss < history[0].loss,
        "the loss did not fall: {history:?}"
    );
    // The tuned checkpoint queries the base model's index (same image tower) without a rebuild.
    let tuned = ClipEncoder::load(&summary.last_model, &EncoderOptions::default()).unwrap();
    index.check_model(tuned.info()).unwrap();
    assert!(!summary.record.needs_rebuild);
    // Recall on the triplets it trained on rises over the zero-shot model's.
    let before = sum_recall(&default_model(), split(Split::Train), &index);
    let after = sum_recall(&summary.last_model, split(Split::Train), &index);
    assert!(
        after.0 + after.1 > before.0 + before.1,
        "R@10/R@50 zero-shot {before:?}, fine-tuned {after:?}"
    );
    let record: fiq::train::RunRecord = serde_json::from_str(
        &std::fs::read_to_string(summary.last_model.join(fiq::train::RUN_RECORD_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(record.history.len(), 4);
    assert_eq!(record.options.towers, TunedTowers::Text);
}

#[test]
fn a_resumed_run_is_bit_for_bit_the_uninterrupted_one() {
    let index = Index::open(&tree().index).unwrap();
    let train = split(Split::Train);
    let validation = split(Split::Val);
    let data = FineTuneData {
        train: &train,
        validation: Some(&validation),
        index: &index,
    };
    let whole = tempfile::tempdir().unwrap();
    let base = options(TunedTowers::Text, 2);
    // Positive-aware negatives drawn from a pool at every mining: the second epoch's search and draw
    // must be the same resumed.
    let options = FineTuneOptions {
        trainable_blocks: Some(1),
        mining: Mining {
            pool: 8,
            below_target: Some(0.95),
            ..base.mining
        },
        ..base
    };
    let straight = fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &options,
        whole.path(),
        None,
    )
    .unwrap();
    let parts = tempfile::tempdir().unwrap();
    let first = FineTuneOptions {
        stop_after_epoch: Some(1),
        ..options.clone()
    };
    fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &first,
        parts.path(),
        None,
    )
    .unwrap();
    let resumed = fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &options,
        parts.path(),
        Some(&parts.path().join(fiq::train::LAST_DIR)),
    )
    .unwrap();
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(
        weights(&straight.last_model) == weights(&resumed.last_model),
        "the resumed run's weights differ from the uninterrupted run's"
    );
    assert_eq!(straight.record.history.len(), 2);
    assert_eq!(
        straight
            .record
            .history
            .iter()
            .map(|e| e.loss)
            .collect::<Vec<_>>(),
        resumed
            .record
            .history
            .iter()
            .map(|e| e.loss)
            .collect::<Vec<_>>()
    );
    // Resuming under other options is refused, naming the checkpoint.
    let other = FineTuneOptions {
        learning_rate: 1e-3,
        ..options
    };
    let refused = fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &other,
        parts.path(),
        Some(&parts.path().join(fiq::train::LAST_DIR)),
    );
    let message = format!("{}", refused.unwrap_err());
    assert!(message.contains("other options"), "{message}");
}

#[test]
fn an_image_tower_run_makes_a_model_the_old_index_refuses() {
    let index = Index::open(&tree().index).unwrap();
    let train = split(Split::Train);
    let validation = split(Split::Val);
    let out = tempfile::tempdir().unwrap();
    let data = FineTuneData {
        train: &train,
        validation: Some(&validation),
        index: &index,
    };
    let base = options(TunedTowers::Both, 1);
    let options = FineTuneOptions {
        trainable_blocks: Some(1),
        mining: Mining {
            negatives: 2,
            ..base.mining
        },
        ..base
    };
    let summary = fine_tune_encoder(
        &default_model(),
        &EncoderOptions::default(),
        data,
        &options,
        out.path(),
        None,
    )
    .unwrap();
    assert!(summary.record.needs_rebuild);
    let epoch = &summary.record.history[0];
    assert!(
        epoch.loss.is_finite() && epoch.recall_at_10.is_some(),
        "{epoch:?}"
    );
    let tuned = ClipEncoder::load(&summary.best_model, &EncoderOptions::default()).unwrap();
    let refused = index.check_model(tuned.info());
    assert!(
        refused.is_err(),
        "the old index accepted a model whose image tower changed"
    );
}
