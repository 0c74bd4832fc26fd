//! The article that started the project (an explainer of AdaHessian with a side-by-side table
//! against Adam) makes claims; each is judged here from the measured claims: holds, contradicted,
//! inside the noise, or not measured (and why). The reading of a vague word is stated with it
//! ("slightly higher" memory is read as at most 1.25× Adam's).

use super::{Claim, Verdict};
use serde::Serialize;

/// A verdict on one of the article's claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArticleVerdict {
    /// The measurement agrees, beyond the noise.
    Holds,
    /// The measurement points the other way, beyond the noise.
    Contradicted,
    /// The difference is within twice the seed-to-seed noise.
    InsideNoise,
    /// This comparison could not measure it (said why).
    NotMeasured,
}

impl ArticleVerdict {
    fn text(self) -> &'static str {
        match self {
            ArticleVerdict::Holds => "holds",
            ArticleVerdict::Contradicted => "contradicted",
            ArticleVerdict::InsideNoise => "inside noise",
            ArticleVerdict::NotMeasured => "not measured",
        }
    }
}

/// One of the article's claims, what was measured here and the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ArticleClaim {
    /// What the article says.
    pub article_says: &'static str,
    /// The measured claim it is judged from (`Claim::id`).
    pub from: &'static str,
    /// What was measured, in words.
    pub measured: String,
    /// The verdict.
    pub verdict: ArticleVerdict,
}

impl ArticleClaim {
    /// The verdict in words.
    pub fn verdict_text(&self) -> &'static str {
        self.verdict.text()
    }
}

/// The verdict of "the subject is better here": Better for the subject holds, for the baseline
/// contradicts, a difference inside the noise is inside noise.
fn better(v: &Verdict, subject: &str) -> ArticleVerdict {
    match v {
        Verdict::Better { winner, .. } if winner == subject => ArticleVerdict::Holds,
        Verdict::Better { .. } => ArticleVerdict::Contradicted,
        Verdict::NoClearDifference { .. } => ArticleVerdict::InsideNoise,
        Verdict::NotComparable | Verdict::Ratio { .. } | Verdict::Trend { .. } => ArticleVerdict::NotMeasured,
    }
}

/// The article's claims, judged from `claims` (subject: AdaHessian, baseline: Adam).
pub fn judge(claims: &[Claim], subject: &str) -> Vec<ArticleClaim> {
    let find = |id: &str| claims.iter().find(|c| c.id == id);
    let mut out = Vec::new();
    let mut add =
        |article_says: &'static str, from: &'static str, judge: &dyn Fn(&Claim) -> ArticleVerdict, why_not: &str| {
            let (measured, verdict) = match find(from) {
                Some(c) => (c.says.clone(), judge(c)),
                None => (why_not.to_string(), ArticleVerdict::NotMeasured),
            };
            out.push(ArticleClaim { article_says, from, measured, verdict });
        };
    let ratio = |c: &Claim| match c.verdict {
        Verdict::Ratio { ratio } => ratio,
        _ => f64::NAN,
    };
    add(
        "memory is \"slightly higher\" than Adam's (read: at most 1.25×)",
        "memory",
        &|c| match ratio(c) {
            r if r > 1.0 && r <= 1.25 => ArticleVerdict::Holds,
            r if r.is_finite() => ArticleVerdict::Contradicted,
            _ => ArticleVerdict::NotMeasured,
        },
        "",
    );
    add(
        "each step is slower than Adam's (read: beyond ±10% timing noise)",
        "time_per_step",
        &|c| match ratio(c) {
            r if r > 1.1 => ArticleVerdict::Holds,
            r if r < 0.9 => ArticleVerdict::Contradicted,
            r if r.is_finite() => ArticleVerdict::InsideNoise,
            _ => ArticleVerdict::NotMeasured,
        },
        "",
    );
    add("it needs fewer steps overall", "steps_to_target", &|c| better(&c.verdict, subject), "");
    add(
        "it is less sensitive to the learning rate (\"still needs tuning\")",
        "lr_sensitivity",
        &|c| better(&c.verdict, subject),
        "",
    );
    add(
        "generalisation is \"often better\" (a smaller train − test gap)",
        "generalisation_gap",
        &|c| better(&c.verdict, subject),
        "",
    );
    add("batch-size handling is \"more stable\"", "batch_stability", &|c| better(&c.verdict, subject), "");
    add(
        "it \"stays balanced even when layers grow deeper\" (its advantage holds or grows with depth)",
        "depth",
        &|c| match c.verdict {
            Verdict::Trend { from, to, noise } if from.is_finite() && to.is_finite() => {
                if to - from < -2.0 * noise {
                    ArticleVerdict::Contradicted
                } else if to >= 0.0 || to - from > 2.0 * noise {
                    ArticleVerdict::Holds
                } else {
                    ArticleVerdict::InsideNoise
                }
            }
            _ => ArticleVerdict::NotMeasured,
        },
        "the depth sweep varies an MLP's hidden layers; this model is not a plain MLP",
    );
    add(
        "\"if your dataset is noisy, AdaHessian might handle the instability better\" (test accuracy under label noise)",
        "label_noise_accuracy",
        &|c| better(&c.verdict, subject),
        "no label-noise levels were run",
    );
    add(
        "it suits tasks \"where overfitting is a concern\" (it fits wrong labels less)",
        "label_noise_gap",
        &|c| better(&c.verdict, subject),
        "no label-noise levels were run",
    );
    add(
        "\"the early steps of training can feel slower, especially compared to Adam\"",
        "early_5",
        // the article's claim is that the subject is WORSE early: the baseline winning holds it
        &|c| match better(&c.verdict, subject) {
            ArticleVerdict::Holds => ArticleVerdict::Contradicted,
            ArticleVerdict::Contradicted => ArticleVerdict::Holds,
            other => other,
        },
        "no early evaluation was run",
    );
    add(
        "it uses a \"diagonal approximation\" of the Hessian (read: √v̂ follows |H_ii| more closely than the row norms ‖H_i,:‖)",
        "diagonal",
        // the cell's value is atanh ρ(√v̂, row norm) − atanh ρ(√v̂, |H_ii|), its spread the
        // standard error of one atanh ρ
        &|c| match c.cells.iter().find(|x| x.optimizer == subject).map(|x| (x.value, x.spread)) {
            Some((v, se)) if v > 2.0 * se => ArticleVerdict::Contradicted,
            Some((v, se)) if v < -2.0 * se => ArticleVerdict::Holds,
            Some((v, _)) if v.is_finite() => ArticleVerdict::InsideNoise,
            _ => ArticleVerdict::NotMeasured,
        },
        "the subject keeps no curvature estimate (or --diagonal-samples 0)",
    );
    out
}
