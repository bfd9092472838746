//! Training: the loss and optimizer against hand computation and candle, the miner, resume, and a short run
//! on synthetic FashionIQ with fake features.

use super::*;
use crate::fashioniq::{Category, Dataset, LoadOptions, Split};
use crate::fusion::{fuse, Combiner, CombinerConfig, Fusion};
use crate::index::{Index, IndexWriter, ItemMeta, ModelInfo};
use crate::synth::{generate, SynthOptions};
use candle_core::{Device, Tensor, Var};
use candle_nn::Optimizer;
use std::sync::Arc;

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape, &Device::Cpu).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn loss_and_gradient_match_hand_computation() {
    // Two queries, two targets, scale 2, no weighting. Scores s = 2 * q · t.
    let queries = Var::from_tensor(&tensor(&[1.0, 0.0, 0.0, 1.0], &[2, 2])).unwrap();
    let targets = tensor(&[0.6, 0.8, 1.0, 0.0], &[2, 2]);
    let options = LossOptions {
        logit_scale: 2.0,
        hard_negative_beta: 0.0,
    };
    let loss = contrastive_loss(&queries, &targets, &[7, 9], None, &options).unwrap();
    // Query 0: positive 1.2, negative 2.0; query 1: positive 0.0, negative 1.6.
    let l0 = -1.2 + (1.2f32.exp() + 2.0f32.exp()).ln();
    let l1 = -0.0 + (0.0f32.exp() + 1.6f32.exp()).ln();
    assert!(close(loss.to_scalar::<f32>().unwrap(), (l0 + l1) / 2.0));
    // d loss / d q_i = scale / batch * (sum_k p_k t_k - t_i), p the softmax over [positive, negative].
    let grads = loss.backward().unwrap();
    let grad = grads.get(&queries).unwrap().to_vec2::<f32>().unwrap();
    let softmax = |a: f32, b: f32| (a.exp() / (a.exp() + b.exp()), b.exp() / (a.exp() + b.exp()));
    let (p_pos, p_neg) = softmax(1.2, 2.0);
    let expected0 = [
        (p_pos * 0.6 + p_neg * 1.0 - 0.6),
        (p_pos * 0.8 + p_neg * 0.0 - 0.8),
    ];
    let (p_pos, p_neg) = softmax(0.0, 1.6);
    let expected1 = [
        (p_pos * 1.0 + p_neg * 0.6 - 1.0),
        (p_pos * 0.0 + p_neg * 0.8 - 0.0),
    ];
    for (got, want) in grad[0]
        .iter()
        .zip(expected0)
        .chain(grad[1].iter().zip(expected1))
    {
        assert!(close(*got, want), "gradient {got} vs {want}");
    }

    // The same target twice: neither is the other's negative, leaving only the positive (loss 0).
    let loss = contrastive_loss(&queries, &targets, &[7, 7], None, &options).unwrap();
    assert!(close(loss.to_scalar::<f32>().unwrap(), 0.0));
}

#[test]
fn mined_negatives_and_hard_weighting_enter_the_softmax() {
    // One query per row; batch of 2 with one mined negative each (the second slot of query 1 is empty).
    let queries = tensor(&[1.0, 0.0, 0.0, 1.0], &[2, 2]);
    let targets = tensor(&[1.0, 0.0, 0.0, 1.0], &[2, 2]);
    let mined = tensor(&[0.8, 0.6, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0], &[2, 2, 2]);
    let valid = [true, false, true, false];
    let batch = MinedBatch {
        vectors: &mined,
        valid: &valid,
    };
    let plain = LossOptions {
        logit_scale: 1.0,
        hard_negative_beta: 0.0,
    };
    // Query 0: positive 1, in-batch negative 0, mined 0.8. Query 1: positive 1, negative 0, mined 0.8.
    let expected = -1.0 + (1.0f32.exp() + 0.0f32.exp() + 0.8f32.exp()).ln();
    let loss = contrastive_loss(&queries, &targets, &[1, 2], Some(&batch), &plain).unwrap();
    assert!(close(loss.to_scalar::<f32>().unwrap(), expected));

    // With beta, weights are 2 * softmax(beta * [0, 0.8]): the harder (mined) negative counts more.
    let beta = 2.0f32;
    let hard = LossOptions {
        logit_scale: 1.0,
        hard_negative_beta: beta,
    };
    let z = 1.0 + (beta * 0.8).exp();
    let (w_easy, w_hard) = (2.0 / z, 2.0 * (beta * 0.8).exp() / z);
    let expected = -1.0 + (1.0f32.exp() + w_easy * 1.0 + w_hard * 0.8f32.exp()).ln();
    let loss = contrastive_loss(&queries, &targets, &[1, 2], Some(&batch), &hard).unwrap();
    assert!(close(loss.to_scalar::<f32>().unwrap(), expected));
    assert!(w_hard > 1.0 && w_easy < 1.0);
}

#[test]
fn adamw_steps_exactly_like_candles() {
    let start = [0.5f32, -1.0, 2.0];
    let ours = Var::from_tensor(&tensor(&start, &[3])).unwrap();
    let theirs = Var::from_tensor(&tensor(&start, &[3])).unwrap();
    let params = optim::ParamsAdamW {
        lr: 0.1,
        weight_decay: 0.05,
        ..optim::ParamsAdamW::default()
    };
    let mut mine = AdamW::new(&[("w".to_owned(), ours.clone())], params.clone()).unwrap();
    let mut reference = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
    for _ in 0..5 {
        // Loss sum(w^3): a gradient that changes with w.
        let g1 = ours
            .as_tensor()
            .powf(3.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        mine.step(&g1).unwrap();
        let g2 = theirs
            .as_tensor()
            .powf(3.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        reference.step(&g2).unwrap();
    }
    assert_eq!(
        ours.as_tensor().to_vec1::<f32>().unwrap(),
        theirs.as_tensor().to_vec1::<f32>().unwrap()
    );
}

#[test]
fn weight_decay_spares_the_parameters_it_is_told_to() {
    // Two parameters with the same values and gradients; only the first decays. The decayed one must
    // equal candle's AdamW with decay, the spared one candle's AdamW without.
    let start = [0.5f32, -1.0, 2.0];
    let var = || Var::from_tensor(&tensor(&start, &[3])).unwrap();
    let (decayed, spared) = (var(), var());
    let (with_decay, without_decay) = (var(), var());
    let params = optim::ParamsAdamW {
        lr: 0.1,
        weight_decay: 0.5,
        ..optim::ParamsAdamW::default()
    };
    let mut mine = AdamW::with_decay(
        &[
            ("decayed".to_owned(), decayed.clone()),
            ("spared".to_owned(), spared.clone()),
        ],
        params.clone(),
        |name, _| name == "decayed",
    )
    .unwrap();
    let mut reference = candle_nn::AdamW::new(vec![with_decay.clone()], params.clone()).unwrap();
    let mut reference_spared = candle_nn::AdamW::new(
        vec![without_decay.clone()],
        optim::ParamsAdamW {
            weight_decay: 0.0,
            ..params
        },
    )
    .unwrap();
    let cube = |vars: &[&Var]| {
        let mut total = vars[0].as_tensor().powf(3.0).unwrap().sum_all().unwrap();
        for var in &vars[1..] {
            total = (total + var.as_tensor().powf(3.0).unwrap().sum_all().unwrap()).unwrap();
        }
        total.backward().unwrap()
    };
    for _ in 0..3 {
        mine.step(&cube(&[&decayed, &spared])).unwrap();
        reference.step(&cube(&[&with_decay])).unwrap();
        reference_spared.step(&cube(&[&without_decay])).unwrap();
    }
    let values = |var: &Var| var.as_tensor().to_vec1::<f32>().unwrap();
    assert_eq!(values(&decayed), values(&with_decay));
    assert_eq!(values(&spared), values(&without_decay));
    assert_ne!(values(&decayed), values(&spared));
}

#[test]
fn masked_cells_leave_the_softmax() {
    // Masking a column equals removing it: row 0 masks column 2, row 1 masks nothing.
    let logits = tensor(&[1.0, 2.0, 5.0, 0.5, -1.0, 3.0], &[2, 3]);
    let masked = super::loss::masked_cross_entropy(
        &logits,
        &[0, 2],
        &[false, false, true, false, false, false],
    )
    .unwrap()
    .to_scalar::<f32>()
    .unwrap();
    let row0 = -(1.0f32.exp() / (1.0f32.exp() + 2.0f32.exp())).ln();
    let row1 = -(3.0f32.exp() / (0.5f32.exp() + (-1.0f32).exp() + 3.0f32.exp())).ln();
    assert!(close(masked, (row0 + row1) / 2.0), "{masked}");
}

#[test]
fn clipping_inside_the_update_equals_clipping_then_candles_step() {
    // Two parameters, the second a 2 x 3 matrix: gradients of sum(w^3) exceed the norm limit 0.5, so
    // every step clips. The in-place update must land where candle's AdamW lands on clipped copies.
    let start = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
    let make = || {
        (
            Var::from_tensor(&tensor(&start[..2], &[2])).unwrap(),
            Var::from_tensor(&tensor(&start, &[2, 3])).unwrap(),
        )
    };
    let (a, b) = make();
    let (c, d) = make();
    let params = optim::ParamsAdamW {
        lr: 0.05,
        weight_decay: 0.01,
        ..optim::ParamsAdamW::default()
    };
    let ours = [("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())];
    let theirs = [("a".to_owned(), c.clone()), ("b".to_owned(), d.clone())];
    let mut mine = AdamW::new(&ours, params.clone()).unwrap();
    let mut reference = candle_nn::AdamW::new(vec![c.clone(), d.clone()], params).unwrap();
    let cubes = |x: &Var, y: &Var| {
        (x.as_tensor().powf(3.0).unwrap().sum_all().unwrap()
            + y.as_tensor().powf(3.0).unwrap().sum_all().unwrap())
        .unwrap()
        .backward()
        .unwrap()
    };
    for _ in 0..4 {
        let norm = mine.step_clipped(&cubes(&a, &b), 0.5).unwrap();
        assert!(norm > 0.5);
        let mut grads = cubes(&c, &d);
        clip_grad_norm(&mut grads, &theirs, 0.5).unwrap();
        reference.step(&grads).unwrap();
    }
    for (x, y) in [(&a, &c), (&b, &d)] {
        assert_eq!(
            x.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            y.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
    }
}

#[test]
fn gradients_are_clipped_to_the_global_norm() {
    let a = Var::from_tensor(&tensor(&[3.0], &[1])).unwrap();
    let b = Var::from_tensor(&tensor(&[4.0], &[1])).unwrap();
    // Loss a*3 + b*4: gradients 3 and 4, global norm 5.
    let loss = ((a.as_tensor() * 3.0).unwrap() + (b.as_tensor() * 4.0).unwrap()).unwrap();
    let mut grads = loss.sum_all().unwrap().backward().unwrap();
    let vars = [("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())];
    let norm = clip_grad_norm(&mut grads, &vars, 1.0).unwrap();
    assert!(close(norm as f32, 5.0));
    let ga = grads.get(&a).unwrap().to_vec1::<f32>().unwrap()[0];
    let gb = grads.get(&b).unwrap().to_vec1::<f32>().unwrap()[0];
    assert!(close(ga, 0.6) && close(gb, 0.8), "{ga} {gb}");
}

#[test]
fn schedule_warms_up_then_decays_to_zero() {
    // (step, expected) for 10 steps, 2 of warmup, peak 1.
    let table = [(0, 0.5), (1, 1.0), (2, 1.0), (6, 0.5)];
    for (step, expected) in table {
        let lr = learning_rate(step, 10, 2, 1.0);
        assert!((lr - expected).abs() < 1e-9, "step {step}: {lr}");
    }
    assert!(learning_rate(10, 10, 2, 1.0).abs() < 1e-9);
}

#[test]
fn miner_returns_only_non_targets_of_the_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = IndexWriter::create(dir.path(), 2, ModelInfo::default()).unwrap();
    // Points on the unit circle at angles 0..9 * 10 degrees.
    for i in 0..10 {
        let angle = (i as f32 * 10.0).to_radians();
        writer
            .add(
                &format!("k{i}"),
                &[angle.cos(), angle.sin()],
                &ItemMeta::default(),
            )
            .unwrap();
    }
    writer.commit().unwrap();
    let index = Index::open(dir.path()).unwrap();
    let galleries = vec![
        crate::index::IdSet::from_ids(10, 0..10),
        crate::index::IdSet::from_ids(10, [5, 6, 7]),
    ];
    let query = [1.0f32, 0.0];
    let queries = [
        MiningQuery {
            query: &query,
            target: 0,
            gallery: 0,
        },
        MiningQuery {
            query: &query,
            target: 5,
            gallery: 1,
        },
    ];
    let nearest = |negatives, below_target| Mining {
        negatives,
        below_target,
        ..Mining::default()
    };
    let mined = mine_hard_negatives(&index, &queries, &galleries, &nearest(3, None), 0).unwrap();
    // The target (nearest) is skipped; the next three by angle follow; gallery 1 has only two others.
    assert_eq!(mined, vec![vec![1, 2, 3], vec![6, 7]]);
    // Positive-aware: only items scoring below 0.9 of the target's score. Query 0's target scores 1, so
    // cos 10° and cos 20° (above 0.9) are dropped; query 1's target scores cos 50° = 0.643, and both
    // others (cos 60°, cos 70°) are below 0.579.
    let aware =
        mine_hard_negatives(&index, &queries, &galleries, &nearest(3, Some(0.9)), 0).unwrap();
    assert_eq!(aware, vec![vec![3, 4, 5], vec![6, 7]]);
    // A target the query ranks low (60°, score 0.5, ceiling 0.45): everything nearer is dropped and
    // the search goes deeper until it finds the three below (70°, 80°, 90°).
    let low = [MiningQuery {
        query: &query,
        target: 6,
        gallery: 0,
    }];
    let deeper = mine_hard_negatives(&index, &low, &galleries, &nearest(3, Some(0.9)), 0).unwrap();
    assert_eq!(deeper, vec![vec![7, 8, 9]]);

    // A pool of 6: three of the six nearest non-targets (1..=6), in rank order, drawn again the same
    // for the same seed; over many seeds every pool member is drawn and nothing outside it is.
    let pooled = Mining {
        pool: 6,
        ..nearest(3, None)
    };
    let draw = |seed| mine_hard_negatives(&index, &queries, &galleries, &pooled, seed).unwrap();
    let mut drawn = [0usize; 10];
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mined = draw(seed);
        assert_eq!(mined, draw(seed), "seed {seed} drew differently twice");
        assert_eq!(mined[0].len(), 3);
        assert!(
            mined[0].windows(2).all(|pair| pair[0] < pair[1]),
            "{mined:?}"
        );
        assert_eq!(
            mined[1],
            vec![6, 7],
            "a pool deeper than the gallery keeps it all"
        );
        for &id in &mined[0] {
            drawn[id as usize] += 1;
        }
        distinct.insert(mined[0].clone());
    }
    assert_eq!(drawn[0], 0, "the target was drawn");
    assert!(
        drawn[7..].iter().all(|&n| n == 0),
        "drew outside the pool: {drawn:?}"
    );
    // Uniform: each of the six is drawn about 200 * 3 / 6 = 100 times.
    assert!(
        drawn[1..7].iter().all(|&n| (70..=130).contains(&n)),
        "{drawn:?}"
    );
    assert!(
        distinct.len() >= 15,
        "only {} of the 20 subsets",
        distinct.len()
    );
    // Positive-aware and pooled: the pool is the items below the ceiling (3..=8 for query 0).
    let both = Mining {
        below_target: Some(0.9),
        ..pooled
    };
    for seed in 0..20 {
        let mined = mine_hard_negatives(&index, &queries, &galleries, &both, seed).unwrap();
        assert!(mined[0].iter().all(|id| (3..=8).contains(id)), "{mined:?}");
    }
}

#[test]
fn mining_options_are_checked() {
    for (mining, name) in [
        (
            Mining {
                every: 0,
                ..Mining::default()
            },
            "mine every",
        ),
        (
            Mining {
                below_target: Some(f32::NAN),
                ..Mining::default()
            },
            "mine below target",
        ),
        (
            Mining {
                below_target: Some(-0.5),
                ..Mining::default()
            },
            "mine below target",
        ),
    ] {
        match mining.check() {
            Err(TrainError::InvalidOption { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{mining:?}: {other:?}"),
        }
    }
    assert!(Mining {
        below_target: Some(0.95),
        pool: 50,
        ..Mining::default()
    }
    .check()
    .is_ok());
    // Each epoch's draw has its own seed, the same every time it is asked for.
    assert_ne!(Mining::draw_seed(1, 0), Mining::draw_seed(1, 2));
    assert_ne!(Mining::draw_seed(1, 0), Mining::draw_seed(2, 0));
    assert_eq!(Mining::draw_seed(1, 4), Mining::draw_seed(1, 4));
}

#[test]
fn saved_model_loads_and_fuses_like_the_fusion_variant() {
    let dir = tempfile::tempdir().unwrap();
    let config = CombinerConfig {
        projection_dim: 6,
        hidden_dim: 8,
        ..CombinerConfig::combiner(4)
    };
    let model = Combiner::init(config, 3, &Device::Cpu).unwrap();
    model.save(dir.path()).unwrap();
    let loaded = Combiner::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded, model);
    let (image, text) = ([1.0, 2.0, 0.0, -1.0], [0.0, 1.0, 1.0, 0.0]);
    let direct = loaded.fuse(&image, &text).unwrap();
    let via_enum = fuse(&image, &text, &Fusion::Combiner(Arc::new(loaded))).unwrap();
    assert_eq!(direct, via_enum);
    assert!(close(direct.iter().map(|x| x * x).sum::<f32>(), 1.0));
    // Bad input is an error naming the row, not a panic.
    let broken = Fusion::Combiner(Arc::new(model));
    assert!(fuse(&[1.0, f32::NAN, 0.0, 0.0], &text, &broken).is_err());
    assert!(fuse(&[1.0, 0.0], &[1.0, 0.0], &broken).is_err());
    // An untrained projection is the plain sum.
    let projection = Combiner::init(CombinerConfig::projection(4), 0, &Device::Cpu).unwrap();
    let sum = fuse(&image, &text, &Fusion::Sum).unwrap();
    for (a, b) in projection.fuse(&image, &text).unwrap().iter().zip(sum) {
        assert!(close(*a, b));
    }
}

/// A small synthetic FashionIQ with a fake-feature index.
struct Synthetic {
    _dir: tempfile::TempDir,
    index: Index,
    train: TrainingSet,
    validation: Validation,
}

fn synthetic(per_category: usize) -> Synthetic {
    synthetic_with(per_category, &synthetic::encode_texts)
}

/// The fake text vectors with their dimensions reversed: a text no longer points at its attributes'
/// image dimensions, so sum fusion (an untrained model) does poorly and a trained one must learn the map.
fn reversed_texts(texts: &[String]) -> Result<Vec<Vec<f32>>, crate::eval::BackendError> {
    let mut vectors = synthetic::encode_texts(texts)?;
    for vector in &mut vectors {
        vector.reverse();
    }
    Ok(vectors)
}

fn synthetic_with(per_category: usize, encoder: TextEncoder<'_>) -> Synthetic {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fiq");
    generate(
        &root,
        &SynthOptions {
            per_category,
            size: 16,
            seed: 11,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    synthetic::write_index(&root, &dir.path().join("index")).unwrap();
    let index = Index::open(dir.path().join("index")).unwrap();
    let load = |split| {
        Dataset::load(
            &root,
            &Category::ALL,
            split,
            LoadOptions::annotations_only(),
        )
        .unwrap()
    };
    let train = TrainingSet::build(&load(Split::Train), &index, encoder).unwrap();
    let validation = Validation::build(load(Split::Val), synthetic::DIM, encoder).unwrap();
    Synthetic {
        _dir: dir,
        index,
        train,
        validation,
    }
}

fn small_combiner() -> CombinerConfig {
    CombinerConfig {
        projection_dim: 64,
        hidden_dim: 128,
        dropout: 0.1,
        ..CombinerConfig::combiner(synthetic::DIM)
    }
}

#[test]
fn training_lowers_the_loss_and_raises_recall_on_synthetic_data() {
    // An untrained Combiner is sum fusion; with texts that do not line up with the images it is poor.
    let data = synthetic_with(600, &reversed_texts);
    assert_eq!(data.train.skipped, 0);
    let out = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        model: small_combiner(),
        epochs: 6,
        batch_size: 64,
        learning_rate: 3e-3,
        warmup_steps: 5,
        loss: LossOptions {
            logit_scale: 30.0,
            hard_negative_beta: 0.0,
        },
        mining: Mining {
            negatives: 8,
            every: 2,
            ..Mining::default()
        },
        ..TrainOptions::default()
    };
    let summary = train(
        &data.train,
        Some(&data.validation),
        &data.index,
        &options,
        out.path(),
        None,
    )
    .unwrap();
    // The untrained model the run started from (the trainer seeds initialization with the stream's first draw).
    let untrained = Combiner::init(
        options.model.clone(),
        crate::rng::SplitMix64::new(options.seed).next_u64(),
        &Device::Cpu,
    )
    .unwrap();
    let score = |fusion| {
        let report = evaluate_fusion(&data.validation, &data.index, fusion).unwrap();
        (report.average[0].recall + report.average[1].recall) / 2.0
    };
    let baseline = score(Fusion::Combiner(Arc::new(untrained)));
    println!("sum fusion scores {:.3}", score(Fusion::Sum));
    let first = &summary.history[0];
    let last = summary.history.last().unwrap();
    println!("untrained {baseline:.3}; {:#?}", summary.history);
    // Every epoch records how many negatives its mining found: the galleries hold enough for all 8.
    for record in &summary.history {
        assert_eq!(record.mined_per_query, Some(8.0), "{record:?}");
    }
    assert!(
        last.loss < first.loss * 0.8,
        "loss {} -> {}",
        first.loss,
        last.loss
    );
    let best = summary.history[summary.best_epoch.unwrap() - 1]
        .score()
        .unwrap();
    assert!(
        best > baseline + 0.05,
        "trained {best} vs untrained {baseline}"
    );
    // The best checkpoint loads and reproduces its score.
    let loaded = Combiner::load(out.path().join(BEST_DIR), &Device::Cpu).unwrap();
    let report = evaluate_fusion(
        &data.validation,
        &data.index,
        Fusion::Combiner(Arc::new(loaded)),
    )
    .unwrap();
    assert!(((report.average[0].recall + report.average[1].recall) / 2.0 - best).abs() < 1e-9);
}

#[test]
fn resuming_gives_the_same_model_as_an_uninterrupted_run() {
    let data = synthetic(200);
    let options = TrainOptions {
        model: small_combiner(),
        epochs: 3,
        batch_size: 16,
        learning_rate: 1e-3,
        warmup_steps: 3,
        // A pool drawn afresh at every mining, positive-aware: the draws must resume too.
        mining: Mining {
            negatives: 4,
            every: 1,
            below_target: Some(0.95),
            pool: 12,
        },
        seed: 5,
        ..TrainOptions::default()
    };
    let straight = tempfile::tempdir().unwrap();
    let whole = train(
        &data.train,
        None,
        &data.index,
        &options,
        straight.path(),
        None,
    )
    .unwrap();
    let interrupted = tempfile::tempdir().unwrap();
    let first_part = TrainOptions {
        stop_after_epoch: Some(1),
        ..options.clone()
    };
    train(
        &data.train,
        None,
        &data.index,
        &first_part,
        interrupted.path(),
        None,
    )
    .unwrap();
    let resumed = train(
        &data.train,
        None,
        &data.index,
        &options,
        interrupted.path(),
        Some(&last_checkpoint(interrupted.path())),
    )
    .unwrap();
    assert_eq!(resumed.history.len(), 3);
    assert_eq!(resumed.model, whole.model);
    for (a, b) in resumed.history.iter().zip(&whole.history) {
        assert_eq!(a.loss, b.loss);
    }
}
