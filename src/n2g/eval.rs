//! Evaluating a graph as a model of its neuron (algorithm step 8), and the per-token
//! baseline the paper compares it with.
//!
//! # Conventions for empty classes
//!
//! * precision with no predicted member of the class is **1.0** (no false claims were
//!   made); recall with no true member (support 0) is **1.0** (nothing was missed).
//!   F1 is `2PR / (P + R)`, or 0 when `P + R = 0`. So a class that is absent and never
//!   predicted scores 1/1/1; an absent class that is predicted scores P = 0, F1 = 0; a
//!   present class never predicted scores R = 0, F1 = 0. (scikit-learn, which the authors
//!   used, reports 0 with a warning for the undefined cases.)
//! * variance explained is `1 - MSE / Var(true)` (the R² score, population variance).
//!   When `Var(true) = 0` it is 1.0 if the prediction is exact (MSE = 0) and 0.0 otherwise
//!   (scikit-learn's `force_finite` convention). For no tokens at all every figure is 1.0
//!   with `tokens = 0`; callers aggregating over neurons should weigh by `tokens`/`support`.

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prf {
    /// Correct predictions of the class / predictions of the class.
    pub precision: f64,
    /// Correct predictions of the class / true members of the class.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of true members of the class.
    pub support: usize,
}

impl Prf {
    /// From counts of true positives, predicted positives and actual positives.
    pub fn from_counts(true_positive: usize, predicted: usize, actual: usize) -> Prf {
        let precision = if predicted == 0 {
            1.0
        } else {
            true_positive as f64 / predicted as f64
        };
        let recall = if actual == 0 {
            1.0
        } else {
            true_positive as f64 / actual as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Prf {
            precision,
            recall,
            f1,
            support: actual,
        }
    }
}

/// The step-8 scores of one prediction against the truth.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Scores of the firing class (activation >= fire threshold).
    pub firing: Prf,
    /// Scores of the non-firing class.
    pub non_firing: Prf,
    /// `1 - MSE / Var(true)`.
    pub variance_explained: f64,
    /// Number of tokens compared.
    pub tokens: usize,
}

/// Scores predicted against true normalised activations over concatenated tokens; a token
/// fires when its activation is `>= fire_threshold`. See the module docs for edge cases.
///
/// # Panics
/// When the slices differ in length.
pub fn score(predicted: &[f32], truth: &[f32], fire_threshold: f32) -> Scores {
    assert_eq!(
        predicted.len(),
        truth.len(),
        "score: predicted and true activations differ in length"
    );
    let n = truth.len();
    let (mut tp, mut pred_fire, mut true_fire) = (0usize, 0usize, 0usize);
    let mut sum = 0.0f64;
    let mut squared_error = 0.0f64;
    for (&p, &t) in predicted.iter().zip(truth) {
        let (pf, tf) = (p >= fire_threshold, t >= fire_threshold);
        tp += (pf && tf) as usize;
        pred_fire += pf as usize;
        true_fire += tf as usize;
        sum += t as f64;
        squared_error += (p as f64 - t as f64).powi(2);
    }
    let tn = n - pred_fire - true_fire + tp;
    let (mse, variance) = if n == 0 {
        (0.0, 0.0)
    } else {
        let mean = sum / n as f64;
        let variance = truth
            .iter()
            .map(|&t| (t as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        (squared_error / n as f64, variance)
    };
    let variance_explained = if variance > 0.0 {
        1.0 - mse / variance
    } else if mse == 0.0 {
        1.0
    } else {
        0.0
    };
    Scores {
        firing: Prf::from_counts(tp, pred_fire, true_fire),
        non_firing: Prf::from_counts(tn, n - pred_fire, n - true_fire),
        variance_explained,
        tokens: n,
    }
}

/// The paper's per-token baseline: predicts for a token the highest normalised activation
/// seen on it in the training texts (0 for tokens never seen and for `None`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenBaseline {
    /// Max activation by dictionary id; shorter than the dictionary when the tail is unseen.
    max: Vec<f32>,
}

impl TokenBaseline {
    /// Fits on (tokens, normalised activations) pairs; pairs are zipped to the shorter.
    /// Non-finite activations are skipped.
    pub fn fit<'a>(texts: impl IntoIterator<Item = (&'a [Option<u32>], &'a [f32])>) -> Self {
        let mut max: Vec<f32> = Vec::new();
        for (tokens, activations) in texts {
            for (token, &a) in tokens.iter().zip(activations) {
                let (Some(t), true) = (token, a.is_finite()) else {
                    continue;
                };
                let t = *t as usize;
                if t >= max.len() {
                    max.resize(t + 1, f32::NEG_INFINITY);
                }
                max[t] = max[t].max(a);
            }
        }
        for m in &mut max {
            if *m == f32::NEG_INFINITY {
                *m = 0.0;
            }
        }
        TokenBaseline { max }
    }

    /// The baseline's prediction for one token.
    pub fn predict_token(&self, token: Option<u32>) -> f32 {
        token
            .and_then(|t| self.max.get(t as usize).copied())
            .unwrap_or(0.0)
    }

    /// The baseline's prediction at every position of a text.
    pub fn predict(&self, tokens: &[Option<u32>]) -> Vec<f32> {
        tokens.iter().map(|&t| self.predict_token(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hand() {
        // truth fires at 0, 1; prediction fires at 1, 2.
        let s = score(&[0.1, 0.9, 0.6, 0.0], &[0.5, 1.0, 0.2, 0.0], 0.5);
        assert_eq!(s.firing.support, 2);
        assert_eq!(s.firing.precision, 0.5);
        assert_eq!(s.firing.recall, 0.5);
        assert_eq!(s.firing.f1, 0.5);
        assert_eq!(s.non_firing.support, 2);
        assert_eq!(s.non_firing.precision, 0.5);
        assert_eq!(s.tokens, 4);
        // mean 0.425; var = (0.075² + 0.575² + 0.225² + 0.425²) / 4
        let var = (0.075f64.powi(2) + 0.575f64.powi(2) + 0.225f64.powi(2) + 0.425f64.powi(2)) / 4.0;
        let mse = (0.4f64.powi(2) + 0.1f64.powi(2) + 0.4f64.powi(2)) / 4.0;
        assert!((s.variance_explained - (1.0 - mse / var)).abs() < 1e-6);
    }

    #[test]
    fn empty_classes_and_constant_truth() {
        let s = score(&[0.0, 0.1], &[0.0, 0.2], 0.5);
        assert_eq!(s.firing, Prf::from_counts(0, 0, 0));
        assert_eq!(
            (s.firing.precision, s.firing.recall, s.firing.f1),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(s.non_firing.f1, 1.0);
        let s = score(&[0.9, 0.1], &[0.0, 0.0], 0.5);
        assert_eq!(
            (s.firing.precision, s.firing.recall, s.firing.f1),
            (0.0, 1.0, 0.0)
        );
        assert_eq!(s.variance_explained, 0.0);
        let s = score(&[0.3, 0.3], &[0.3, 0.3], 0.5);
        assert_eq!(s.variance_explained, 1.0);
        let s = score(&[0.1], &[0.9], 0.5);
        assert_eq!(
            (s.firing.precision, s.firing.recall, s.firing.f1),
            (1.0, 0.0, 0.0)
        );
        let s = score(&[], &[], 0.5);
        assert_eq!((s.tokens, s.variance_explained, s.firing.f1), (0, 1.0, 1.0));
    }

    #[test]
    fn baseline_is_the_max_per_token() {
        let t1 = [Some(1), Some(2), None, Some(1)];
        let a1 = [0.2, 0.9, 1.0, 0.6];
        let t2 = [Some(5), Some(2)];
        let a2 = [-0.1, 0.3];
        let b = TokenBaseline::fit([(&t1[..], &a1[..]), (&t2[..], &a2[..])]);
        assert_eq!(
            b.predict(&[Some(1), Some(2), Some(5), Some(3), None, Some(77)]),
            vec![0.6, 0.9, -0.1, 0.0, 0.0, 0.0]
        );
    }
}
