//! Every race lesson's text is true of what the page shows. web/lessons.json (the file the page
//! itself loads) lists beside each text the claims it makes; each lesson is run natively with the
//! page's own racers (`race::page_racer`, `race::page_lr`), start and settings for its steps, and
//! every claim is checked on the losses, paths and curvature readouts. A lesson whose text
//! changes must change its claims, and a claim that stops being true fails here.

mod common;

use adahessian_wgpu::race::{page_lr, page_racer, CurvatureReadout, Race};
use adahessian_wgpu::surface::SurfaceKind;
use serde_json::Value;
use std::collections::HashMap;

struct Run {
    names: Vec<String>,
    losses: Vec<Vec<f32>>,
    paths: Vec<Vec<(f32, f32)>>,
    /// (racer, step) → the readout after that step
    readouts: HashMap<(usize, usize), CurvatureReadout>,
}

impl Run {
    fn racer(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no racer {name} in {:?}", self.names))
    }
    /// The first step at which f ≤ tol (0: the start).
    fn first_at_or_below(&self, name: &str, tol: f64) -> Option<usize> {
        self.losses[self.racer(name)].iter().position(|v| (*v as f64) <= tol)
    }
    fn reversals(&self, name: &str, axis: &str, within: usize) -> usize {
        let p = &self.paths[self.racer(name)];
        let c = |q: &(f32, f32)| if axis == "x" { q.0 } else { q.1 };
        p[..(within + 1).min(p.len())]
            .windows(3)
            .filter(|w| (c(&w[1]) - c(&w[0])) * (c(&w[2]) - c(&w[1])) < 0.0)
            .count()
    }
}

fn lessons() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/web/lessons.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

/// The page's surface for a lesson state (`cond` is log₁₀ of the condition number).
fn surface(state: &Value) -> SurfaceKind {
    let name = state["surface"].as_str().unwrap();
    if name == "quadratic" {
        let condition = 10f64.powf(state["cond"].as_f64().unwrap());
        return SurfaceKind::Quadratic { condition, angle: state["angle"].as_f64().unwrap().to_radians() };
    }
    *SurfaceKind::ALL.iter().find(|k| k.name() == name).unwrap_or_else(|| panic!("no surface {name}"))
}

fn run(gpu: &adahessian_wgpu::gpu::Gpu, lesson: &Value) -> Run {
    let state = &lesson["state"];
    let steps = lesson["steps"].as_u64().expect("a race lesson says how many steps its claims are about") as usize;
    let kind = surface(state);
    let hpow = state["hpow"].as_f64().unwrap() as f32;
    let clip = state["clip"].as_f64().unwrap() != 0.0;
    let names: Vec<String> = state["racers"].as_str().unwrap().split(',').map(String::from).collect();
    let list: Vec<_> = names
        .iter()
        .map(|n| {
            let lr =
                state.get(format!("lr_{n}")).and_then(Value::as_f64).map_or_else(|| page_lr(n).unwrap(), |v| v as f32);
            (n.clone(), page_racer(n, lr, hpow, clip && n == "adahessian").unwrap())
        })
        .collect();
    let wanted: Vec<(usize, usize)> = lesson["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            let name = c.get("estimate_tracks_row_norm").or_else(|| c.get("estimate_above"))?.as_str()?;
            Some((names.iter().position(|n| n == name)?, c["step"].as_u64()? as usize))
        })
        .collect();
    let mut race = adahessian_wgpu::block_on(Race::new(gpu, kind, kind.default_start(), &list)).unwrap();
    let mut readouts = HashMap::new();
    for step in 1..=steps {
        adahessian_wgpu::block_on(race.step(gpu)).unwrap();
        for &(i, s) in wanted.iter().filter(|(_, s)| *s == step) {
            readouts.insert((i, s), adahessian_wgpu::block_on(race.readout(gpu, i)).unwrap());
        }
    }
    Run {
        names,
        losses: race.racers.iter().map(|r| r.losses.clone()).collect(),
        paths: race.racers.iter().map(|r| r.path.clone()).collect(),
        readouts,
    }
}

/// Checks one claim; Err says what the page shows instead.
fn check(r: &Run, c: &Value) -> Result<(), String> {
    let s = |k: &str| c[k].as_str().unwrap().to_string();
    let f = |k: &str| c[k].as_f64().unwrap();
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let pair = |k: &str| (c[k][0].as_str().unwrap().to_string(), c[k][1].as_str().unwrap().to_string());
    let loss_at = |name: &str, step: usize| r.losses[r.racer(name)].get(step).copied().unwrap_or(f32::NAN) as f64;
    if c.get("reach").is_some() {
        let (name, tol, within) = (s("reach"), f("tol"), u("within"));
        return match r.first_at_or_below(&name, tol) {
            Some(k) if k <= within => Ok(()),
            other => Err(format!("{name} reaches f ≤ {tol} at step {other:?}, not within {within}")),
        };
    }
    if c.get("not_reach").is_some() {
        let (name, tol, within) = (s("not_reach"), f("tol"), u("within"));
        return match r.first_at_or_below(&name, tol) {
            Some(k) if k <= within => Err(format!("{name} already reaches f ≤ {tol} at step {k}")),
            _ => Ok(()),
        };
    }
    if c.get("before").is_some() {
        let ((a, b), tol) = (pair("before"), f("tol"));
        let (ka, kb) = (r.first_at_or_below(&a, tol), r.first_at_or_below(&b, tol));
        return match (ka, kb) {
            (Some(x), Some(y)) if x < y => Ok(()),
            (Some(_), None) => Ok(()),
            _ => Err(format!("{a} reaches f ≤ {tol} at {ka:?}, {b} at {kb:?}")),
        };
    }
    if c.get("zigzag").is_some() {
        let (name, n) = (s("zigzag"), r.reversals(&s("zigzag"), &s("axis"), u("within")));
        return if n >= u("at_least") { Ok(()) } else { Err(format!("{name} reverses along {} {n} times", s("axis"))) };
    }
    if c.get("straight").is_some() {
        let (name, n) = (s("straight"), r.reversals(&s("straight"), &s("axis"), u("within")));
        return if n <= u("at_most") { Ok(()) } else { Err(format!("{name} reverses along {} {n} times", s("axis"))) };
    }
    if c.get("loss_between").is_some() {
        let (name, step) = (s("loss_between"), u("step"));
        let v = loss_at(&name, step);
        return if v >= f("lo") && v <= f("hi") { Ok(()) } else { Err(format!("{name}'s f at step {step} is {v}")) };
    }
    if c.get("worse").is_some() {
        let ((a, b), step) = (pair("worse"), u("step"));
        let (fa, fb) = (loss_at(&a, step), loss_at(&b, step));
        return if fa > fb { Ok(()) } else { Err(format!("at step {step} {a} has f {fa}, {b} {fb}")) };
    }
    if c.get("near").is_some() {
        let ((a, b), step) = (pair("near"), u("step"));
        let (p, q) = (r.paths[r.racer(&a)][step], r.paths[r.racer(&b)][step]);
        let d = (((p.0 - q.0) as f64).powi(2) + ((p.1 - q.1) as f64).powi(2)).sqrt();
        return if d <= f("distance") { Ok(()) } else { Err(format!("at step {step} {a} and {b} are {d} apart")) };
    }
    if c.get("estimate_tracks_row_norm").is_some() {
        let (name, step) = (s("estimate_tracks_row_norm"), u("step"));
        let ro = &r.readouts[&(r.racer(&name), step)];
        let est = ro.adahessian_estimate.ok_or("no estimate")?;
        for i in 0..2 {
            let (e, norm, diag) = (est[i], ro.row_norms[i], ro.diagonal[i].abs());
            if (e - norm).abs() > f("within") * norm || (e - norm).abs() >= (e - diag).abs() {
                return Err(format!("√v̂[{i}] = {e}: row norm {norm}, |H_ii| {diag}"));
            }
        }
        return Ok(());
    }
    if c.get("estimate_above").is_some() {
        let (name, step) = (s("estimate_above"), u("step"));
        let ro = &r.readouts[&(r.racer(&name), step)];
        let e = ro.adahessian_estimate.ok_or("no estimate")?[u("coordinate")];
        return if e >= f("at_least") { Ok(()) } else { Err(format!("√v̂ is {e}")) };
    }
    Err(format!("unknown claim {c}"))
}

#[test]
fn every_race_lessons_claims_hold_natively() {
    let gpu = gpu_or_skip!();
    let mut failures = Vec::new();
    let race_lessons: Vec<Value> = lessons().into_iter().filter(|l| l.get("pg").is_none()).collect();
    assert!(race_lessons.len() >= 6);
    for lesson in &race_lessons {
        let name = lesson["name"].as_str().unwrap();
        let claims = lesson["claims"].as_array().unwrap_or_else(|| panic!("lesson {name} lists no claims"));
        assert!(claims.len() >= 2, "lesson {name}: a text needs its claims checked");
        let r = run(gpu, lesson);
        for c in claims {
            match check(&r, c) {
                Ok(()) => eprintln!("lesson {name}: {c} holds"),
                Err(why) => failures.push(format!("lesson {name}: {c}: {why}")),
            }
        }
    }
    assert!(failures.is_empty(), "lesson texts that are not what happens:\n{}", failures.join("\n"));
}

/// Every lesson has a name, a title and a text of some substance, and the page's lesson list is
/// this file (it loads it).
#[test]
fn every_lesson_is_complete_and_the_page_loads_this_file() {
    for l in lessons() {
        let name = l["name"].as_str().unwrap();
        assert!(l["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}");
        assert!(l["text"].as_str().is_some_and(|t| t.len() > 80), "{name}");
        assert!(l["state"].is_object(), "{name}");
    }
    let app = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/web/app.js")).unwrap();
    assert!(app.contains("lessons.json"), "web/app.js no longer loads web/lessons.json");
}

/// One playground network of a lesson, trained as the page trains it: the lesson's points (400,
/// seed 7), the architecture text the page builds (`PlaneData::network_text`), its optimizer at
/// its lr, batches from the seeded order; λmax by the page's power iteration and λmin by its 30
/// Lanczos steps, over the training points, at the steps the claims name.
struct PgRun {
    train_loss: HashMap<usize, f64>,
    lambda_max: HashMap<usize, f64>,
    lambda_min: HashMap<usize, f64>,
}

fn run_pg(gpu: &adahessian_wgpu::gpu::Gpu, lesson: &Value, which: &str, at: &[usize]) -> PgRun {
    use adahessian_wgpu::curvature::{self, HessianOperator, PowerOptions};
    use adahessian_wgpu::data::plane::{PlaneData, PlaneSource};
    use adahessian_wgpu::data::DeviceDataset;
    use adahessian_wgpu::nn::{Batch, ModelSpec, Network, NetworkOptions};
    use adahessian_wgpu::optim::{Optimizer, OptimizerConfig};
    use adahessian_wgpu::train::BatchOrder;
    let s = &lesson["state"];
    let get = |k: &str| s.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str, default: &str| get(k).as_str().unwrap_or(default).to_string();
    let source = PlaneSource::Synthetic {
        name: s["dataset"].as_str().unwrap(),
        noise: s["noise"].as_f64().unwrap(),
        samples: 400,
    };
    let data = PlaneData::load(source, s["testfrac"].as_f64().unwrap(), 7).unwrap();
    let arch = data
        .network_text(
            &text("widths", "8-8"),
            &text("act", "tanh"),
            get("depth").as_u64().unwrap_or(0) as usize,
            text(&format!("arch{which}"), "plain") == "residual",
            &text(&format!("norm{which}"), "none"),
        )
        .unwrap();
    let spec = ModelSpec::parse(&arch).unwrap();
    let batch = (s[format!("bs{which}")].as_u64().unwrap() as usize).clamp(1, data.train.rows());
    let net = Network::new(gpu, &spec, NetworkOptions::new(data.train.rows().max(batch), 7)).unwrap();
    let bound = net.bind(gpu, &DeviceDataset::upload(gpu, &data.train).unwrap()).unwrap();
    let lr = s[format!("lr{which}")].as_f64().unwrap() as f32;
    let mut config = OptimizerConfig::parse(s[format!("opt{which}")].as_str().unwrap()).unwrap().with_lr(lr);
    if config.has_setting("seed") {
        config.set("seed", "7").unwrap();
    }
    let mut opt = Optimizer::new(gpu, &net, config).unwrap();
    let mut order = BatchOrder::new(data.train.rows(), batch, 7);
    let mut out = PgRun { train_loss: HashMap::new(), lambda_max: HashMap::new(), lambda_min: HashMap::new() };
    let last = *at.iter().max().unwrap();
    for step in 0..=last {
        if at.contains(&step) {
            let l = adahessian_wgpu::block_on(net.evaluate(gpu, &bound)).unwrap();
            out.train_loss.insert(step, l.loss as f64);
            let op = HessianOperator::new(gpu, &net, &bound, None).unwrap();
            let top = adahessian_wgpu::block_on(curvature::top_eigen(
                &op,
                1,
                PowerOptions { tol: 1e-2, max_iter: 30, seed: 0 },
            ))
            .unwrap();
            let (lo, _) = adahessian_wgpu::block_on(curvature::extreme_eigenvalues(&op, 30, step as u64)).unwrap();
            out.lambda_max.insert(step, top[0].value);
            out.lambda_min.insert(step, lo);
        }
        if step < last {
            let idx = order.next_batch();
            opt.step(gpu, &net, &Batch { data: &bound, indices: &idx }).unwrap();
        }
    }
    out
}

fn check_pg(runs: &HashMap<String, PgRun>, c: &Value) -> Result<(), String> {
    let (kind, which) = c
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, v)| v.is_string())
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .unwrap();
    let r = &runs[&which];
    let num = |k: &str| c[k].as_f64().unwrap();
    let at = |k: &str| c[k].as_u64().unwrap() as usize;
    let (value, ok) = match kind.as_str() {
        "train_loss_at_least" => (r.train_loss[&at("step")], r.train_loss[&at("step")] >= num("value")),
        "train_loss_at_most" => (r.train_loss[&at("step")], r.train_loss[&at("step")] <= num("value")),
        "lambda_max_at_most" => (r.lambda_max[&at("step")], r.lambda_max[&at("step")] <= num("value")),
        "lambda_max_at_least" => (r.lambda_max[&at("step")], r.lambda_max[&at("step")] >= num("value")),
        "lambda_min_below" => (r.lambda_min[&at("step")], r.lambda_min[&at("step")] < num("value")),
        "curvature_ratio_at_least" | "curvature_ratio_at_most" => {
            let q = r.lambda_min[&at("step")].abs() / r.lambda_max[&at("step")].abs();
            (q, if kind.ends_with("least") { q >= num("value") } else { q <= num("value") })
        }
        "lambda_max_grows" => {
            let g = r.lambda_max[&at("to")] / r.lambda_max[&at("from")];
            (g, g >= num("factor"))
        }
        other => return Err(format!("unknown claim {other}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("network {which}: measured {value}"))
    }
}

#[test]
fn every_playground_lessons_claims_hold_natively() {
    let gpu = gpu_or_skip!();
    let mut failures = Vec::new();
    for lesson in lessons().iter().filter(|l| l.get("pg").is_some() && l.get("claims").is_some()) {
        let name = lesson["name"].as_str().unwrap();
        let claims = lesson["claims"].as_array().unwrap();
        let mut steps: Vec<usize> = claims
            .iter()
            .flat_map(|c| ["step", "from", "to"].into_iter().filter_map(move |k| c.get(k).and_then(Value::as_u64)))
            .map(|s| s as usize)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        let mut runs = HashMap::new();
        for which in ["a", "b"] {
            if claims.iter().any(|c| c.as_object().unwrap().values().any(|v| v.as_str() == Some(which))) {
                runs.insert(which.to_string(), run_pg(gpu, lesson, which, &steps));
            }
        }
        for c in claims {
            match check_pg(&runs, c) {
                Ok(()) => eprintln!("lesson {name}: {c} holds"),
                Err(why) => failures.push(format!("lesson {name}: {c}: {why}")),
            }
        }
    }
    assert!(failures.is_empty(), "playground lesson texts that are not what happens:\n{}", failures.join("\n"));
}
