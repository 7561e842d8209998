//! Skip-gram word2vec with negative sampling on a real English text: by default the King James
//! Bible from Debian's `bible-kjv-text` (about 820k words, a vocabulary of 12.8k), read with
//! its `bible` program. The two embedding tables are sparse: each step reads and updates only
//! the rows of its batch's words (Adagrad's sparse update). In one process, or replicated on
//! `--workers N` processes with the tables split over `--ps M` parameter servers (sync, or
//! `--async`). Prints the loss, the throughput in corpus words per second, and the nearest
//! neighbours of a few words.
//!
//!     apt-get install bible-kjv-text          # and bible-kjv, its reader
//!     cargo run --release --example word2vec
//!     cargo build --release --bin sluice-engine
//!     cargo run --release --example word2vec -- --workers 2 --ps 2 [--async]

use clap::Parser;
use sluice::data::text::{words, SkipGramBatch, SkipGramOptions, SkipGrams, Vocabulary};
use sluice::distributed::replicas::{DataParallel, Tower};
use sluice::distributed::{LocalCluster, TrainEvent, Trainer, TrainerOptions};
use sluice::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Skip-gram word2vec on a real text: the King James Bible unless --text names another.
#[derive(Parser)]
#[command(
    name = "word2vec",
    version,
    after_help = "RUST_LOG filters diagnostics."
)]
struct Args {
    /// A UTF-8 text to learn from (default: the KJV, read with Debian's `bible`)
    #[arg(long, value_name = "FILE")]
    text: Option<PathBuf>,

    /// Embedding dimensions
    #[arg(long, default_value_t = 64)]
    dim: usize,

    /// Context words either side of a center word, at most
    #[arg(long, default_value_t = 4)]
    window: usize,

    /// Negative words per pair
    #[arg(long, default_value_t = 5)]
    negatives: usize,

    /// Words seen fewer times are left out of the vocabulary
    #[arg(long, default_value_t = 1)]
    min_count: u64,

    /// Pairs per batch (per worker)
    #[arg(long, default_value_t = 512)]
    batch: usize,

    /// Global steps
    #[arg(long, default_value_t = 6000)]
    steps: u64,

    /// Adagrad's learning rate
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,

    /// Worker processes (0: train in this process)
    #[arg(long, default_value_t = 0)]
    workers: usize,

    /// Parameter servers the tables are split over (with --workers)
    #[arg(long, default_value_t = 2)]
    ps: usize,

    /// Asynchronous updates (with --workers)
    #[arg(long = "async")]
    asynchronous: bool,

    /// Words whose nearest neighbours are printed
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seven,silver,sons,king,third,lord"
    )]
    neighbours: Vec<String>,

    /// Neighbours printed per word
    #[arg(long, default_value_t = 8)]
    top: usize,
}

/// The KJV as plain text, from Debian's `bible` reader of `bible-kjv-text`.
fn kjv() -> anyhow::Result<String> {
    let out = std::process::Command::new("bible")
        .args(["-f", "Ge1:1-Re22:21"])
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run `bible` ({e}): install Debian's bible-kjv-text and bible-kjv, or \
                 give --text FILE"
            )
        })?;
    anyhow::ensure!(out.status.success(), "`bible` failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    // Each verse starts with its reference (Ge1:1): not part of the text.
    Ok((text.lines())
        .map(|l| l.split_once(' ').map_or("", |(_, verse)| verse))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The model's handles: its feeds, its loss and its two tables.
struct SkipGram {
    tower: Tower,
    embeddings: PartitionedVariable,
}

fn skip_gram(
    g: &Graph,
    args: &Args,
    vocab: usize,
    shards: usize,
) -> Result<SkipGram, sluice::GraphError> {
    let k = args.negatives as i64;
    let centers = g.placeholder("centers", DType::I64, &[-1]);
    let contexts = g.placeholder("contexts", DType::I64, &[-1]);
    let negatives = g.placeholder("negatives", DType::I64, &[-1, k]);
    let split = Partitioner::fixed(shards, PartitionStrategy::Mod);
    let half = 0.5 / args.dim as f64;
    let init = Initializer::RandomUniform {
        low: -half,
        high: half,
    };
    let shape = [vocab, args.dim];
    let embeddings = PartitionedVariable::new(g, "embedding", &shape, init, &split)?;
    let outputs = PartitionedVariable::new(g, "context", &shape, Initializer::Zeros, &split)?;
    let c = embeddings.lookup(centers);
    let positive = reduce_sum_axes(c * outputs.lookup(contexts), &[1], false);
    let negative = reduce_sum_axes(expand_dims(c, 1) * outputs.lookup(negatives), &[2], false);
    // -log sigmoid(positive) - sum log sigmoid(-negative), per pair.
    let per_pair = softplus(-positive) + reduce_sum_axes(softplus(negative), &[1], false);
    let loss = reduce_sum(per_pair);
    let mean = reduce_mean(per_pair);
    let tower = Tower::new(loss, &[centers, contexts, negatives]).metric("loss", mean);
    Ok(SkipGram { tower, embeddings })
}

fn feeds(batch: &SkipGramBatch, k: usize) -> Vec<Tensor> {
    let n = batch.centers.len();
    vec![
        Tensor::from_vec(batch.centers.clone()),
        Tensor::from_vec(batch.contexts.clone()),
        Tensor::new(&[n, k], batch.negatives.clone())
            .unwrap_or_else(|_| Tensor::from_vec(vec![0i64])),
    ]
}

/// The `top` words nearest to `word` by cosine similarity of their rows in `table`.
fn nearest(
    table: &Tensor,
    vocab: &Vocabulary,
    word: &str,
    top: usize,
) -> Option<Vec<(String, f32)>> {
    let id = vocab.id(word)?;
    let dim = *table.shape().get(1)?;
    let rows = table.as_slice::<f32>().ok()?;
    let norm = |r: &[f32]| r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let query = &rows[id * dim..(id + 1) * dim];
    let mut scored: Vec<(usize, f32)> = (0..vocab.len())
        .filter(|&j| j != id)
        .map(|j| {
            let row = &rows[j * dim..(j + 1) * dim];
            let dot: f32 = query.iter().zip(row).map(|(a, b)| a * b).sum();
            (j, dot / (norm(query) * norm(row)))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(
        (scored.into_iter().take(top))
            .filter_map(|(j, s)| Some((vocab.word(j)?.to_string(), s)))
            .collect(),
    )
}

fn main() -> anyhow::Result<()> {
    sluice::logging::init("warn");
    let args = Args::parse();
    let text = match &args.text {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => kjv()?,
    };
    let corpus = words(&text);
    let vocab = Vocabulary::build(&corpus, args.min_count);
    let ids = vocab.encode(&corpus);
    println!(
        "vocabulary: {} words; corpus: {} words",
        vocab.len(),
        ids.len()
    );
    anyhow::ensure!(vocab.len() > 1, "the text has too few distinct words");
    let options = |seed| SkipGramOptions {
        window: args.window,
        negatives: args.negatives,
        seed,
        ..SkipGramOptions::default()
    };
    let (table, words_seen, secs) = if args.workers == 0 {
        train_here(&args, &vocab, ids, options(1))?
    } else {
        train_replicated(&args, &vocab, ids, &options)?
    };
    println!(
        "throughput: {:.0} words/s ({words_seen} corpus words in {secs:.1} s of training, {} \
         worker(s))",
        words_seen as f64 / secs,
        args.workers.max(1)
    );
    for word in &args.neighbours {
        match nearest(&table, &vocab, word, args.top) {
            Some(near) => {
                let list: Vec<String> = near.iter().map(|(w, s)| format!("{w} ({s:.2})")).collect();
                println!("neighbours of {word}: {}", list.join(", "));
            }
            None => println!("neighbours of {word}: not in the vocabulary"),
        }
    }
    Ok(())
}

/// Trains in this process; returns the embedding table, the corpus words gone through and
/// the seconds the steps took.
fn train_here(
    args: &Args,
    vocab: &Vocabulary,
    ids: Vec<usize>,
    options: SkipGramOptions,
) -> anyhow::Result<(Tensor, usize, f64)> {
    let g = Graph::new();
    let model = skip_gram(&g, args, vocab.len(), 1)?;
    let train = Adagrad::new(args.learning_rate).minimize(model.tower.loss)?;
    let mut sess = Session::new(&g);
    sess.init_variables()?;
    let mut grams = SkipGrams::new(ids, vocab, options);
    let (mut seen, mut recent) = (0usize, Vec::new());
    let report = (args.steps / 10).max(1);
    let mean = model.tower.metrics[0].1;
    let started = Instant::now();
    for step in 1..=args.steps {
        let batch = grams.next_batch(args.batch);
        seen += batch.words;
        let values = feeds(&batch, args.negatives);
        let feeds: Vec<(Output, Tensor)> = model.tower.inputs.iter().copied().zip(values).collect();
        let out = sess.run_with_targets(&[mean], &feeds, &[train])?;
        recent.push(out[0].get_f64(0));
        if step == 1 || step % report == 0 || step == args.steps {
            let loss = recent.iter().sum::<f64>() / recent.len() as f64;
            println!("step {step}: loss {loss:.4}");
            recent.clear();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let table = sess
        .variable(model.embeddings.shards[0])
        .ok_or_else(|| anyhow::anyhow!("the embedding has no value"))?;
    Ok((table, seen, secs))
}

/// Trains replicas on worker processes, each on its own part of the corpus, with the tables
/// on the parameter servers (as `train_here` returns).
fn train_replicated(
    args: &Args,
    vocab: &Vocabulary,
    ids: Vec<usize>,
    options: &dyn Fn(u64) -> SkipGramOptions,
) -> anyhow::Result<(Tensor, usize, f64)> {
    let (n, ps) = (args.workers, args.ps.max(1));
    let cluster = LocalCluster::start(&[("worker", n), ("ps", ps)]).map_err(anyhow::Error::msg)?;
    let mut strategy = DataParallel::parameter_servers(n, ps);
    if args.asynchronous {
        strategy = strategy.asynchronous(None);
    }
    let mut tables = None;
    let model = strategy.build(&Graph::new(), &Adagrad::new(args.learning_rate), |g| {
        let m = skip_gram(g, args, vocab.len(), ps)?;
        tables.get_or_insert(m.embeddings);
        Ok(m.tower)
    })?;
    let embeddings = tables.ok_or_else(|| anyhow::anyhow!("no replica was built"))?;
    let graph = model.graph.clone();
    let trainer_options = TrainerOptions {
        steps: args.steps,
        report_every: (args.steps / 10).max(1),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(model, cluster.spec(), trainer_options)?;
    // Replica r reads the r-th part of the corpus.
    let part = ids.len().div_ceil(n);
    let mut streams: Vec<SkipGrams> = (0..n)
        .map(|r| {
            let slice = ids[(r * part).min(ids.len())..((r + 1) * part).min(ids.len())].to_vec();
            SkipGrams::new(slice, vocab, options(1 + r as u64))
        })
        .collect();
    let mut seen = 0usize;
    let k = args.negatives;
    let report = (args.steps / 10).max(1);
    let started = Instant::now();
    trainer.fit(
        &mut |r| {
            let batch = streams[r].next_batch(args.batch);
            seen += batch.words;
            feeds(&batch, k)
        },
        &mut |event| {
            if let TrainEvent::Step { step, loss } = event {
                if *step == 1 || step % report == 0 || *step == args.steps {
                    println!("step {step}: loss {:.4}", loss / args.batch as f64);
                }
            }
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    let sess = trainer.session()?;
    let mut shards = Vec::with_capacity(embeddings.shards.len());
    for shard in &embeddings.shards {
        let local = graph.get(&shard.name())?;
        let value = sess.variable(local)?;
        shards.push(value.ok_or_else(|| anyhow::anyhow!("{} has no value", shard.name()))?);
    }
    let table = embeddings.assemble(&shards).map_err(anyhow::Error::msg)?;
    Ok((table, seen, secs))
}
