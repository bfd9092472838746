//! Training the built-in model's architecture from scratch with `fiq::train::pretrain_on_synthetic` on a
//! small synthetic tree: the loss falls and recall rises over the random start, the best checkpoint
//! loads with `--model` and reproduces the validation the run recorded, and a resumed run is bit for
//! bit the uninterrupted one.

use fiq::encoder::{ClipEncoder, Encoder, EncoderOptions};
use fiq::fashioniq::{Category, Dataset, LoadOptions, Split};
use fiq::fusion::Fusion;
use fiq::index::Index;
use fiq::pipeline::{build_catalog, BuildOptions};
use fiq::synth::SynthOptions;
use fiq::train::{evaluate_fusion, pretrain_on_synthetic, PretrainOptions, Validation, LAST_DIR};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A small easy-level tree and a random model of the built-in architecture, made once.
struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    random: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("synth");
        let options = SynthOptions {
            per_category: 150,
            seed: 20_261_206,
            ..SynthOptions::default()
        };
        fiq::synth::generate(&data, &options).unwrap();
        let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fiq-default");
        let random = dir.path().join("random");
        fiq::encoder::initialize_clip(
            &default.join("config.json"),
            &default.join("tokenizer.json"),
            &random,
            3,
        )
        .unwrap();
        Setup {
            _dir: dir,
            data,
            random,
        }
    })
}

fn options(epochs: usize) -> PretrainOptions {
    PretrainOptions {
        epochs,
        batch_size: 32,
        steps_per_epoch: Some(4),
        learning_rate: 1e-3,
        warmup_steps: 2,
        validate_every: 1,
        seed: 9,
        ..PretrainOptions::default()
    }
}

/// R@10 and R@50 of sum fusion on the tree's val split, `model` encoding both the gallery (into a fresh
/// index) and the texts.
fn val_recall(model: &Path) -> (f64, f64) {
    let data = &setup().data;
    let encoder = ClipEncoder::load(model, &EncoderOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let images = Dataset::load(data, &Category::ALL, Split::Val, LoadOptions::default()).unwrap();
    let quiet = BuildOptions {
        progress: false,
        ..BuildOptions::default()
    };
    build_catalog(&images, &encoder, dir.path(), &quiet).unwrap();
    let index = Index::open(dir.path()).unwrap();
    let encode = |texts: &[String]| -> Result<Vec<Vec<f32>>, fiq::eval::BackendError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(encoder.encode_texts(&refs)?)
    };
    let annotations = Dataset::load(
        data,
        &Category::ALL,
        Split::Val,
        LoadOptions::annotations_only(),
    )
    .unwrap();
    let validation = Validation::build(annotations, index.dim(), &encode).unwrap();
    let report = evaluate_fusion(&validation, &index, Fusion::Sum).unwrap();
    let at = |k: usize| report.average.iter().find(|m| m.k == k).unwrap().recall;
    (at(10), at(50))
}

#[test]
fn training_from_scratch_lowers_the_loss_raises_recall_and_its_checkpoint_reproduces_validation() {
    let setup = setup();
    let out = tempfile::tempdir().unwrap();
    let summary = pretrain_on_synthetic(
        &setup.random,
        &EncoderOptions::default(),
        &setup.data,
        &options(4),
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
    let best = &history[summary.record.best_epoch.expect("every epoch validated") - 1];
    // The best checkpoint, loaded as `--model` loads it, gives exactly the validation the run recorded
    // with its in-memory model.
    let (r10, r50) = val_recall(&summary.best_model);
    assert!(
        (r10 - best.recall_at_10.unwrap()).abs() < 1e-9
            && (r50 - best.recall_at_50.unwrap()).abs() < 1e-9,
        "reloaded {r10}/{r50}, recorded {best:?}"
    );
    let random = val_recall(&setup.random);
    assert!(
        r10 + r50 > random.0 + random.1,
        "R@10/R@50 at the random start {random:?}, trained {:?}",
        (r10, r50)
    );
    // CLIP's temperature trained and was saved with the weights: it moved from its start.
    let logit_scale = |dir: &Path| {
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = tensors.tensor("logit_scale").unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        f32::from_le_bytes(view.data()[..4].try_into().unwrap())
    };
    assert_ne!(logit_scale(&summary.last_model), logit_scale(&setup.random));
    let record: fiq::train::PretrainRecord = serde_json::from_str(
        &std::fs::read_to_string(summary.last_model.join(fiq::train::PRETRAIN_RECORD_FILE))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record.history.len(), 4);
    assert_eq!(record.train_images, summary.record.train_images);
}

#[test]
fn a_resumed_pretraining_is_bit_for_bit_the_uninterrupted_one() {
    let setup = setup();
    let run = |options: &PretrainOptions, out: &Path, resume: Option<&Path>| {
        pretrain_on_synthetic(
            &setup.random,
            &EncoderOptions::default(),
            &setup.data,
            options,
            out,
            resume,
        )
    };
    let whole = tempfile::tempdir().unwrap();
    let straight = run(&options(2), whole.path(), None).unwrap();
    let parts = tempfile::tempdir().unwrap();
    let first = PretrainOptions {
        stop_after_epoch: Some(1),
        ..options(2)
    };
    run(&first, parts.path(), None).unwrap();
    let last = parts.path().join(LAST_DIR);
    let resumed = run(&options(2), parts.path(), Some(&last)).unwrap();
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(
        weights(&straight.last_model) == weights(&resumed.last_model),
        "the resumed run's weights differ from the uninterrupted run's"
    );
    let scores = |summary: &fiq::train::PretrainSummary| {
        summary
            .record
            .history
            .iter()
            .map(|e| (e.loss, e.recall_at_10, e.recall_at_50))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&straight), scores(&resumed));
    // Resuming under other options is refused, naming the checkpoint's record.
    let other = PretrainOptions {
        learning_rate: 3e-4,
        ..options(2)
    };
    let message = run(&other, parts.path(), Some(&last))
        .unwrap_err()
        .to_string();
    assert!(message.contains("other options"), "{message}");
}

#[test]
fn a_tree_without_an_attribute_file_is_refused_by_name() {
    let setup = setup();
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let error = pretrain_on_synthetic(
        &setup.random,
        &EncoderOptions::default(),
        empty.path(),
        &options(1),
        out.path(),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("synth-attributes.json")
            || error.contains(&empty.path().display().to_string()),
        "{error}"
    );
}
