//! The claims a comparison's measurements support, one function per group of rows. Each claim
//! names which way it points between the subject and the baseline only beyond twice the noise.

use super::{range, says, verdict, Cell, Claim, Measured, SeedRun, Setup, Stats, Verdict};

/// What every claim reads.
pub(super) struct ClaimContext<'a> {
    pub methods: &'a [Measured],
    /// The subject (AdaHessian when present).
    pub a: &'a Measured,
    /// The baseline (Adam when present).
    pub b: &'a Measured,
    pub setup: &'a Setup,
}

fn per_seed(m: &Measured, f: &dyn Fn(&SeedRun) -> f64) -> Stats {
    Stats::of(&m.seeds.iter().map(f).collect::<Vec<_>>())
}

fn acc(m: &Measured) -> Stats {
    per_seed(m, &|s| s.test_accuracy)
}

impl ClaimContext<'_> {
    /// One row: its header (id, title, unit, which seeds), its cells and its verdict.
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        id: &'static str,
        title: String,
        unit: &'static str,
        seeds: &'static str,
        cells: Vec<Cell>,
        verdict: Verdict,
        unit_text: &str,
    ) -> Claim {
        let says = says(&verdict, &self.a.name, &self.b.name, unit_text);
        Claim { id, title, unit, seeds, cells, verdict, says }
    }

    /// One cell per method from a statistic over its seeds.
    fn stat_cells(&self, f: &dyn Fn(&Measured) -> Stats, digits: usize) -> Vec<Cell> {
        self.methods
            .iter()
            .map(|m| {
                let s = f(m);
                Cell { optimizer: m.name.clone(), text: s.text(digits), value: s.mean, spread: s.std }
            })
            .collect()
    }

    /// One cell per method from a single value and its text.
    fn value_cells(&self, f: &dyn Fn(&Measured) -> (f64, String)) -> Vec<Cell> {
        self.methods
            .iter()
            .map(|m| {
                let (value, text) = f(m);
                Cell { optimizer: m.name.clone(), text, value, spread: 0.0 }
            })
            .collect()
    }

    /// The seed-to-seed noise of the headline accuracy (at least 0.002).
    fn noise_acc(&self) -> f64 {
        acc(self.a).std.max(acc(self.b).std).max(0.002)
    }

    /// GPU memory and time per step: measured ratios, stated as they are.
    pub fn cost_claims(&self) -> Vec<Claim> {
        let (a, b) = (self.a, self.b);
        let mib = |v: u64| v as f64 / (1 << 20) as f64;
        let ratio = a.memory.total() as f64 / b.memory.total().max(1) as f64;
        let mut memory = self.claim(
            "memory",
            "GPU memory: parameters + gradients / optimizer state / activations (MiB)".into(),
            "bytes",
            "one build",
            self.value_cells(&|m| {
                let t = &m.memory;
                let text = format!("{:.2} / {:.2} / {:.2}", mib(t.params_and_grads), mib(t.state), mib(t.activations));
                (t.total() as f64, text)
            }),
            Verdict::Ratio { ratio },
            "",
        );
        memory.says = format!(
            "{} allocates {ratio:.2}× the GPU bytes of {}, data set excluded (state: m, v, probe z, H z; activations: + tangents and R-cotangents)",
            a.name, b.name
        );
        let time_ratio = a.ms_per_step / b.ms_per_step;
        let mut time = self.claim(
            "time_per_step",
            format!("time per step (median ms, ratio to {})", b.name),
            "ms",
            "one build",
            self.value_cells(&|m| {
                (m.ms_per_step, format!("{:.3} ({:.2}×)", m.ms_per_step, m.ms_per_step / b.ms_per_step))
            }),
            Verdict::Ratio { ratio: time_ratio },
            "",
        );
        time.says = format!("{} costs {time_ratio:.2}× a {} step on this adapter", a.name, b.name);
        vec![memory, time]
    }

    /// Steps and seconds to the target, final accuracy and the generalisation gap, over seeds.
    pub fn headline_claims(&self) -> Vec<Claim> {
        let (a, b) = (self.a, self.b);
        let gap = |m: &Measured| per_seed(m, &|s| s.train_accuracy - s.test_accuracy);
        let steps = |m: &Measured| per_seed(m, &|s| s.reached_target.map_or(f64::NAN, |(t, _)| t as f64));
        let secs = |m: &Measured| per_seed(m, &|s| s.reached_target.map_or(f64::NAN, |(_, t)| t));
        let reached = |m: &Measured| m.seeds.iter().filter(|s| s.reached_target.is_some()).count();
        let target = self.setup.target_accuracy * 100.0;
        vec![
            self.claim(
                "steps_to_target",
                format!("steps to {target:.0}% test accuracy"),
                "steps",
                "every seed",
                self.methods
                    .iter()
                    .map(|m| {
                        let s = steps(m);
                        let text = format!("{} ({}/{} seeds)", s.text(0), reached(m), m.seeds.len());
                        Cell { optimizer: m.name.clone(), text, value: s.mean, spread: s.std }
                    })
                    .collect(),
                verdict(
                    (&a.name, steps(a).mean),
                    (&b.name, steps(b).mean),
                    steps(a).std.max(steps(b).std).max(1.0),
                    false,
                ),
                " steps",
            ),
            self.claim(
                "seconds_to_target",
                format!("seconds to {target:.0}% test accuracy (training loop, with evaluations)"),
                "s",
                "every seed",
                self.stat_cells(&secs, 2),
                verdict(
                    (&a.name, secs(a).mean),
                    (&b.name, secs(b).mean),
                    secs(a).std.max(secs(b).std).max(0.01),
                    false,
                ),
                " s",
            ),
            self.claim(
                "final_accuracy",
                "final test accuracy".into(),
                "fraction",
                "every seed",
                self.stat_cells(&acc, 4),
                verdict((&a.name, acc(a).mean), (&b.name, acc(b).mean), self.noise_acc(), true),
                "",
            ),
            self.claim(
                "generalisation_gap",
                "generalisation: train − test accuracy gap".into(),
                "fraction",
                "every seed",
                self.stat_cells(&gap, 4),
                verdict((&a.name, gap(a).mean), (&b.name, gap(b).mean), gap(a).std.max(gap(b).std).max(0.002), false),
                "",
            ),
        ]
    }

    /// A sweep's claim: each method's accuracy range over the sweep (smaller is steadier).
    fn range_claim(&self, id: &'static str, title: String, points: &dyn Fn(&Measured) -> Vec<(String, f64)>) -> Claim {
        let spread = |m: &Measured| range(points(m).into_iter().map(|p| p.1));
        let cells = self.value_cells(&|m| {
            let listed: Vec<String> = points(m).iter().map(|(x, a)| format!("{x}: {a:.3}")).collect();
            (spread(m), format!("{:.4} ({})", spread(m), listed.join(", ")))
        });
        let (a, b) = (self.a, self.b);
        self.claim(
            id,
            title,
            "fraction",
            "seed 0",
            cells,
            verdict((&a.name, spread(a)), (&b.name, spread(b)), self.noise_acc(), false),
            "",
        )
    }

    /// Learning-rate sensitivity and batch-size stability.
    pub fn sweep_claims(&self) -> Vec<Claim> {
        let list = |v: &[String]| v.join(",");
        let factors: Vec<String> = self.setup.lr_factors.iter().map(|f| f.to_string()).collect();
        let sizes: Vec<String> = self.setup.batch_sizes.iter().map(|b| b.to_string()).collect();
        vec![
            self.range_claim(
                "lr_sensitivity",
                format!("learning-rate sensitivity: test accuracy range over lr × {{{}}}", list(&factors)),
                &|m| m.lr_sweep.iter().map(|(f, a)| (f.to_string(), *a)).collect(),
            ),
            self.range_claim(
                "batch_stability",
                format!("batch-size stability: test accuracy range over batch {{{}}}", list(&sizes)),
                &|m| m.batch_sweep.iter().map(|(b, a)| (b.to_string(), *a)).collect(),
            ),
        ]
    }

    /// Depth: final accuracy per depth and activation, where training diverged or stalled, and
    /// how the subject's advantage over the baseline moves from the shallowest to the deepest.
    pub fn depth_claims(&self) -> Vec<Claim> {
        if self.a.depth_sweep.is_empty() {
            return Vec::new();
        }
        let (a, b) = (self.a, self.b);
        let depths: Vec<String> = self.setup.depths.iter().map(|d| d.to_string()).collect();
        let accuracy_at = |m: &Measured, act: &str, depth: usize| {
            m.depth_sweep.iter().find(|p| p.activation == act && p.depth == depth).map_or(f64::NAN, |p| p.test_accuracy)
        };
        let (first, last) = (self.setup.depths[0], *self.setup.depths.last().unwrap_or(&0));
        // the advantage at the shallowest and the deepest, averaged over the activations
        let advantage = |depth: usize| {
            let acts = &self.setup.depth_activations;
            acts.iter().map(|act| accuracy_at(a, act, depth) - accuracy_at(b, act, depth)).sum::<f64>()
                / acts.len() as f64
        };
        let cells = self.value_cells(&|m| {
            let per_act: Vec<String> = self
                .setup
                .depth_activations
                .iter()
                .map(|act| {
                    // final accuracy (steps to the target, – where not reached)
                    let accs: Vec<String> = self
                        .setup
                        .depths
                        .iter()
                        .map(|&d| {
                            let p = m.depth_sweep.iter().find(|p| &p.activation == act && p.depth == d);
                            let steps = p.and_then(|p| p.steps_to_target).map_or("–".to_string(), |s| s.to_string());
                            format!("{:.3} ({steps})", accuracy_at(m, act, d))
                        })
                        .collect();
                    format!("{act} {}", accs.join(" / "))
                })
                .collect();
            (accuracy_at(m, &self.setup.depth_activations[0], last), per_act.join("; "))
        });
        let trend = Verdict::Trend { from: advantage(first), to: advantage(last), noise: self.noise_acc() };
        let accuracy = self.claim(
            "depth",
            format!("depth: final test accuracy (steps to target) with {} hidden layers", depths.join(" / ")),
            "fraction",
            "seed 0",
            cells,
            trend,
            "",
        );
        let failures = self.value_cells(&|m| {
            let bad: Vec<String> = m
                .depth_sweep
                .iter()
                .filter(|p| p.outcome != "trained")
                .map(|p| format!("{} at {} ({})", p.outcome, p.depth, p.activation))
                .collect();
            (bad.len() as f64, if bad.is_empty() { "trained at every depth".into() } else { bad.join(", ") })
        });
        let fails = |m: &Measured| m.depth_sweep.iter().filter(|p| p.outcome != "trained").count() as f64;
        let failed = self.claim(
            "depth_failures",
            "depth: runs that diverged or stalled (final accuracy within 0.05 of chance)".into(),
            "runs",
            "seed 0",
            failures,
            verdict((&a.name, fails(a)), (&b.name, fails(b)), 0.0, false),
            " runs",
        );
        vec![accuracy, failed]
    }

    /// Label noise: test accuracy per noise level (verdict at the highest), and the
    /// train − test gap at the highest level (memorising the noise shows there).
    pub fn noise_claims(&self) -> Vec<Claim> {
        let Some(top) =
            self.setup.label_noise.iter().cloned().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        else {
            return Vec::new();
        };
        if top == 0.0 {
            return Vec::new();
        }
        let (a, b) = (self.a, self.b);
        let at = |m: &Measured| m.noise_sweep.iter().find(|p| p.noise == top).cloned();
        let test_at = |m: &Measured| at(m).map_or(f64::NAN, |p| p.test_accuracy);
        let gap_at = |m: &Measured| at(m).map_or(f64::NAN, |p| p.train_accuracy - p.test_accuracy);
        let levels: Vec<String> = self.setup.label_noise.iter().map(|n| format!("{:.0}%", n * 100.0)).collect();
        let cells = self.value_cells(&|m| {
            let accs: Vec<String> = m.noise_sweep.iter().map(|p| format!("{:.3}", p.test_accuracy)).collect();
            (test_at(m), accs.join(" / "))
        });
        let gaps = self.value_cells(&|m| (gap_at(m), format!("{:.4}", gap_at(m))));
        let pct = top * 100.0;
        vec![
            self.claim(
                "label_noise_accuracy",
                format!(
                    "label noise: test accuracy with {} of the training labels wrong (clean test labels)",
                    levels.join(" / ")
                ),
                "fraction",
                "seed 0",
                cells,
                verdict((&a.name, test_at(a)), (&b.name, test_at(b)), self.noise_acc(), true),
                "",
            ),
            self.claim(
                "label_noise_gap",
                format!("label noise: train − test accuracy gap at {pct:.0}% noise (fitting the wrong labels)"),
                "fraction",
                "seed 0",
                gaps,
                verdict((&a.name, gap_at(a)), (&b.name, gap_at(b)), self.noise_acc(), false),
                "",
            ),
        ]
    }

    /// The early phase: test accuracy at each early fraction of the budget, over seeds.
    pub fn early_claims(&self) -> Vec<Claim> {
        let (a, b) = (self.a, self.b);
        self.setup
            .early_fractions
            .iter()
            .map(|&f| {
                let at = move |m: &Measured| {
                    per_seed(m, &|s| s.early.iter().find(|e| e.fraction == f).map_or(f64::NAN, |e| e.test_accuracy))
                };
                let loss = move |m: &Measured| {
                    per_seed(m, &|s| s.early.iter().find(|e| e.fraction == f).map_or(f64::NAN, |e| e.test_loss))
                };
                let step = a.seeds[0].early.iter().find(|e| e.fraction == f).map_or(0, |e| e.step);
                let noise = at(a).std.max(at(b).std).max(0.002);
                let cells = self
                    .methods
                    .iter()
                    .map(|m| {
                        let (s, l) = (at(m), loss(m));
                        let text = format!("{} (test loss {})", s.text(4), l.text(3));
                        Cell { optimizer: m.name.clone(), text, value: s.mean, spread: s.std }
                    })
                    .collect();
                self.claim(
                    if f <= 0.05 { "early_5" } else { "early_10" },
                    format!("early phase: test accuracy (and loss) after {:.0}% of the steps (step {step})", f * 100.0),
                    "fraction",
                    "every seed",
                    cells,
                    verdict((&a.name, at(a).mean), (&b.name, at(b).mean), noise, true),
                    "",
                )
            })
            .collect()
    }

    /// What AdaHessian's √v̂ tracks: Spearman's ρ with |H_ii| and with the row norms. The
    /// cell's value is atanh ρ(row norm) − atanh ρ(diagonal), its spread the standard error of
    /// one atanh ρ: the row norms win only beyond twice that.
    pub fn diagonal_claims(&self) -> Vec<Claim> {
        let Some(fit) = &self.a.diagonal else { return Vec::new() };
        let z = |f: &super::DiagonalFit| f.rho_row_norm.atanh() - f.rho_diagonal.atanh();
        let cells = self.value_cells(&|m| match &m.diagonal {
            Some(f) => (
                z(f),
                format!(
                    "ρ(√v̂, |H_ii|) = {:.3}, ρ(√v̂, ‖H_i,:‖) = {:.3}; median ‖H_i,:‖ / |H_ii| = {:.1}",
                    f.rho_diagonal, f.rho_row_norm, f.median_row_norm_over_diagonal
                ),
            ),
            None => (f64::NAN, "–".into()),
        });
        let mut c = self.claim(
            "diagonal",
            format!(
                "what the curvature estimate tracks at the final weights ({} parameters drawn at random, Spearman ρ)",
                fit.samples
            ),
            "atanh rho(row norm) - atanh rho(diagonal)",
            "seed 0",
            cells,
            Verdict::Ratio { ratio: fit.median_row_norm_over_diagonal },
            "",
        );
        for cell in &mut c.cells {
            cell.spread = fit.z_stderr;
        }
        let d = z(fit);
        let way = if d > 2.0 * fit.z_stderr {
            "more closely than"
        } else if d < -2.0 * fit.z_stderr {
            "less closely than"
        } else {
            "about as closely as (within twice the standard error)"
        };
        c.says = format!(
            "{}'s √v̂ follows the Hessian's row norms (ρ {:.2}) {way} its diagonal (ρ {:.2}); a row norm is typically {:.1}× |H_ii|",
            self.a.name, fit.rho_row_norm, fit.rho_diagonal, fit.median_row_norm_over_diagonal
        );
        vec![c]
    }
}
