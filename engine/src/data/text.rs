//! Text for word embeddings: words, a vocabulary counted from them, and skip-gram batches
//! (word2vec's training pairs, with negatives drawn from the unigram distribution to the 3/4
//! power and frequent words subsampled, as Mikolov et al. do).

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// The words of `text`, lower-cased: runs of letters (an apostrophe inside a word stays).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphabetic() || (c == '\'' && !word.is_empty()) {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word).trim_end_matches('\'').to_string());
        }
    }
    if !word.is_empty() {
        out.push(word.trim_end_matches('\'').to_string());
    }
    out
}

/// Words and their counts, most frequent first (ties in alphabetical order); id = rank.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, usize>,
}

impl Vocabulary {
    /// The words of `corpus` seen at least `min_count` times.
    pub fn build(corpus: &[String], min_count: u64) -> Vocabulary {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for w in corpus {
            *counts.entry(w.as_str()).or_default() += 1;
        }
        let mut ranked: Vec<(&str, u64)> = (counts.into_iter())
            .filter(|&(_, n)| n >= min_count)
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let words: Vec<String> = ranked.iter().map(|(w, _)| w.to_string()).collect();
        let index = (words.iter().enumerate())
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Vocabulary {
            counts: ranked.iter().map(|&(_, n)| n).collect(),
            words,
            index,
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }

    pub fn word(&self, id: usize) -> Option<&str> {
        self.words.get(id).map(String::as_str)
    }

    pub fn count(&self, id: usize) -> u64 {
        self.counts.get(id).copied().unwrap_or(0)
    }

    /// The ids of `corpus`'s words that the vocabulary has, in order.
    pub fn encode(&self, corpus: &[String]) -> Vec<usize> {
        corpus.iter().filter_map(|w| self.id(w)).collect()
    }
}

/// How skip-gram pairs are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkipGramOptions {
    /// Contexts up to this many words either side (each center draws its own reach, 1 to
    /// `window`, so near words count more).
    pub window: usize,
    /// Negative words per pair.
    pub negatives: usize,
    /// Words more frequent than this share of the corpus are kept with probability
    /// `(sqrt(f / t) + 1) * t / f` (word2vec's formula); 0 keeps every word.
    pub subsample: f64,
    pub seed: u64,
}

impl Default for SkipGramOptions {
    fn default() -> Self {
        SkipGramOptions {
            window: 4,
            negatives: 5,
            subsample: 1e-3,
            seed: 1,
        }
    }
}

/// One batch: `centers[i]` and `contexts[i]` are a pair seen together; `negatives[i * k ..]`
/// are `k` words drawn for pair `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct SkipGramBatch {
    pub centers: Vec<i64>,
    pub contexts: Vec<i64>,
    pub negatives: Vec<i64>,
    /// Corpus words the batch went past (kept or subsampled): what words/s counts.
    pub words: usize,
}

/// Skip-gram pairs from a corpus of word ids, epoch after epoch.
#[derive(Debug, Clone)]
pub struct SkipGrams {
    corpus: Vec<usize>,
    keep: Vec<f64>,
    /// Word ids, each as often as its count^0.75 says: a uniform draw from it is a negative.
    table: Vec<u32>,
    options: SkipGramOptions,
    rng: ChaCha8Rng,
    position: usize,
    /// Pairs drawn at `position` not yet handed out.
    pending: Vec<(usize, usize)>,
}

/// Entries of the negatives' table (word2vec uses 1e8; a million keeps the shares of a
/// 10k-word vocabulary within a percent or so of count^0.75).
const TABLE_SIZE: usize = 1_000_000;

impl SkipGrams {
    /// Pairs from `corpus`, word ids of `vocab` (ids it does not have are left out).
    pub fn new(mut corpus: Vec<usize>, vocab: &Vocabulary, options: SkipGramOptions) -> SkipGrams {
        corpus.retain(|&id| id < vocab.len());
        let total: u64 = (0..vocab.len()).map(|i| vocab.count(i)).sum::<u64>().max(1);
        let keep = (0..vocab.len())
            .map(|i| {
                let f = vocab.count(i) as f64 / total as f64;
                let t = options.subsample;
                if t <= 0.0 || f <= t {
                    1.0
                } else {
                    ((f / t).sqrt() + 1.0) * t / f
                }
            })
            .collect();
        let weights: Vec<f64> = (0..vocab.len())
            .map(|i| (vocab.count(i) as f64).powf(0.75))
            .collect();
        let sum: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut table = Vec::with_capacity(TABLE_SIZE);
        for (i, w) in weights.iter().enumerate() {
            let n = (w / sum * TABLE_SIZE as f64).round() as usize;
            table.extend(std::iter::repeat_n(i as u32, n.max(1)));
        }
        SkipGrams {
            corpus,
            keep,
            table,
            options,
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            position: 0,
            pending: Vec::new(),
        }
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// The next `pairs` pairs (an empty batch from an empty corpus).
    pub fn next_batch(&mut self, pairs: usize) -> SkipGramBatch {
        let mut batch = SkipGramBatch {
            centers: Vec::with_capacity(pairs.min(1 << 20)),
            contexts: Vec::with_capacity(pairs.min(1 << 20)),
            negatives: Vec::with_capacity(
                pairs.saturating_mul(self.options.negatives).min(1 << 20),
            ),
            words: 0,
        };
        let n = self.corpus.len();
        // Every word subsampled away and no pair drawn in a whole epoch: give up.
        let mut idle = 0;
        while batch.centers.len() < pairs && n > 0 && idle <= n {
            let Some((center, context)) = self.pending.pop() else {
                self.draw_pairs();
                batch.words += 1;
                idle += 1;
                continue;
            };
            idle = 0;
            batch.centers.push(center as i64);
            batch.contexts.push(context as i64);
            for _ in 0..self.options.negatives {
                let k = self.below(self.table.len());
                batch.negatives.push(i64::from(self.table[k]));
            }
        }
        batch
    }

    /// The pairs of the word at `position` (none if subsampled away), then the next word.
    fn draw_pairs(&mut self) {
        let n = self.corpus.len();
        let at = self.position;
        self.position = (self.position + 1) % n;
        let center = self.corpus[at];
        if self.uniform() >= self.keep[center] {
            return;
        }
        let reach = 1 + self.below(self.options.window.max(1));
        let lo = at.saturating_sub(reach);
        let hi = (at + reach).min(n - 1);
        for j in (lo..=hi).rev().filter(|&j| j != at) {
            let context = self.corpus[j];
            if self.uniform() < self.keep[context] {
                self.pending.push((center, context));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_letter_runs() {
        let text = "In the beginning God created; the LORD'S house, Ge1:1 isn't 'quoted'.";
        let got = words(text);
        assert_eq!(
            got,
            [
                "in",
                "the",
                "beginning",
                "god",
                "created",
                "the",
                "lord's",
                "house",
                "ge",
                "isn't",
                "quoted"
            ]
        );
    }

    #[test]
    fn skip_grams_pair_near_words_and_draw_frequent_negatives() {
        let text = "a b c d e f g h a b c d e f g h a a a a";
        let corpus = words(text);
        let vocab = Vocabulary::build(&corpus, 1);
        assert_eq!(vocab.word(0), Some("a"));
        assert_eq!(vocab.count(0), 6);
        let ids = vocab.encode(&corpus);
        let options = SkipGramOptions {
            window: 2,
            negatives: 3,
            subsample: 0.0,
            seed: 7,
        };
        let mut grams = SkipGrams::new(ids.clone(), &vocab, options);
        let batch = grams.next_batch(500);
        assert_eq!(batch.centers.len(), 500);
        assert_eq!(batch.negatives.len(), 1500);
        // Every pair is of words at most two apart somewhere in the corpus.
        for (&c, &x) in batch.centers.iter().zip(&batch.contexts) {
            let near = (0..ids.len()).any(|i| {
                ids[i] as i64 == c
                    && (i.saturating_sub(2)..=(i + 2).min(ids.len() - 1))
                        .any(|j| j != i && ids[j] as i64 == x)
            });
            assert!(near, "{c} and {x} are never within two words");
        }
        // "a" (6 of 20 words) is the most drawn negative.
        let a = batch.negatives.iter().filter(|&&w| w == 0).count();
        let b = batch.negatives.iter().filter(|&&w| w == 1).count();
        assert!(a > b, "{a} vs {b}");
        // The same seed, the same pairs.
        let again = SkipGrams::new(ids, &vocab, options).next_batch(500);
        assert_eq!(again, batch);
        let empty = SkipGrams::new(Vec::new(), &vocab, options).next_batch(10);
        assert!(empty.centers.is_empty());
    }
}
