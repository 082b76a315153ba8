//! The `sample` algorithm's next-token choice, for every Rust arm of a generation task (mirrors the
//! Python side's `sampler` in python/tasks/llm/text_generation.py, itself transformers' order):
//! the repetition penalty over the tokens so far (a seen token's logit divided by it where positive,
//! multiplied where negative), the temperature, top-k (0: off; ties with the k-th kept), top-p (a
//! token is kept while the more likely ones before it have not reached top_p; 1: off), then one draw
//! from the softmax with rand's `WeightedIndex` on a generator seeded with the repetition's seed.
//! The draws are this side's own: they cannot match another framework's, and are not compared.
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::SeedableRng;

use ndarray::Array2;

use crate::error::{BenchError, Result};
use crate::generation::GenerateParams;

pub struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    penalty: f32,
    rng: StdRng,
    /// Each row's tokens so far: its prompt, then the sampler's own draws.
    seen: Vec<Vec<u32>>,
}

impl Sampler {
    /// The job's sampler for one generation from `prompts` (batch x length), or None for greedy
    /// decoding (no sampling settings).
    pub fn of(params: &GenerateParams, seed: u64, prompts: &Array2<i64>) -> Option<Self> {
        Some(Sampler {
            temperature: params.temperature? as f32,
            top_k: params.top_k.unwrap_or(0),
            top_p: params.top_p.unwrap_or(1.0) as f32,
            penalty: params.repetition_penalty.unwrap_or(1.0) as f32,
            rng: StdRng::seed_from_u64(seed),
            seen: prompts.rows().into_iter().map(|row| row.iter().map(|&id| id as u32).collect()).collect(),
        })
    }

    /// Each row's next token from its last logits (batch x vocabulary), appended to the row's tokens
    /// so far.
    pub fn choose_rows(&mut self, rows: &[Vec<f32>]) -> Result<Vec<u32>> {
        let mut seen = std::mem::take(&mut self.seen);
        let chosen = rows
            .iter()
            .zip(seen.iter_mut())
            .map(|(row, seen)| {
                let token = self.choose(row, seen)?;
                seen.push(token);
                Ok(token)
            })
            .collect();
        self.seen = seen;
        chosen
    }

    /// The next token of one row from its last logits and the tokens it has so far.
    pub fn choose(&mut self, logits: &[f32], seen: &[u32]) -> Result<u32> {
        let mut scores = logits.to_vec();
        if self.penalty != 1.0 {
            for &token in seen {
                let score = &mut scores[token as usize];
                *score = if *score < 0.0 { *score * self.penalty } else { *score / self.penalty };
            }
        }
        for score in &mut scores {
            *score /= self.temperature;
        }
        if self.top_k > 0 && self.top_k < scores.len() {
            let mut ordered = scores.clone();
            ordered.sort_unstable_by(|a, b| b.total_cmp(a));
            let kth = ordered[self.top_k - 1];
            scores.iter_mut().filter(|s| **s < kth).for_each(|s| *s = f32::NEG_INFINITY);
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f32 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        if self.top_p < 1.0 {
            let mut order: Vec<usize> = (0..weights.len()).collect();
            order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
            let mut before = 0.0;
            for &token in &order {
                let weight = weights[token];
                if before >= self.top_p {
                    weights[token] = 0.0;
                }
                before += weight;
            }
        }
        let draw = WeightedIndex::new(&weights).map_err(|e| BenchError::run(format!("sampling: {e}")))?;
        Ok(draw.sample(&mut self.rng) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(top_k: usize, top_p: f64, penalty: f64) -> Sampler {
        let params = GenerateParams {
            batch_size: 1,
            prompt_length: 1,
            max_new_tokens: 2,
            temperature: Some(1.0),
            top_k: Some(top_k),
            top_p: Some(top_p),
            repetition_penalty: Some(penalty),
        };
        Sampler::of(&params, 7, &Array2::zeros((1, 0))).unwrap()
    }

    #[test]
    fn top_k_and_top_p_keep_only_the_likely_tokens() {
        let logits = [4.0, 3.0, 0.0, -1.0, 2.9];
        let mut top_k = sampler(2, 1.0, 1.0);
        assert!((0..200).all(|_| [0, 1].contains(&top_k.choose(&logits, &[]).unwrap())));
        // probabilities about 0.59, 0.22, 0.01, 0.004, 0.20: 0.5 keeps the first alone
        let mut top_p = sampler(0, 0.5, 1.0);
        assert!((0..200).all(|_| top_p.choose(&logits, &[]).unwrap() == 0));
        let mut all = sampler(0, 1.0, 1.0);
        let drawn: std::collections::BTreeSet<u32> =
            (0..400).map(|_| all.choose(&logits, &[]).unwrap()).collect();
        assert!(drawn.len() >= 3, "{drawn:?}");
    }

    #[test]
    fn the_penalty_turns_a_seen_token_away() {
        let logits = [2.0, 1.9];
        let mut penalised = sampler(1, 1.0, 10.0); // top-1 after the penalty: token 0 falls to 0.2
        assert_eq!(penalised.choose(&logits, &[0]).unwrap(), 1);
        let greedy = GenerateParams { temperature: None, ..penalised_params() };
        assert!(Sampler::of(&greedy, 1, &Array2::zeros((1, 0))).is_none());
    }

    fn penalised_params() -> GenerateParams {
        GenerateParams {
            batch_size: 1,
            prompt_length: 1,
            max_new_tokens: 2,
            temperature: Some(1.0),
            top_k: None,
            top_p: None,
            repetition_penalty: None,
        }
    }
}
