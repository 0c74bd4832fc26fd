//! Every GPU kernel against its f64 reference in isolation, with edge inputs: |x| ≥ 45 for the
//! saturating activations, exact zeros at the ReLU kink, the softplus threshold, lengths
//! k·256 ± 1 and batch size 1.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::gpu::harness::{run_layer_kernel, run_optim_kernel, LayerArenas, OptimArenas};
use adahessian_wgpu::gpu::meta::stat;
use adahessian_wgpu::gpu::Kernel;
use adahessian_wgpu::nn::meta::{LayerMeta, FLAG_ACCUMULATE, FLAG_INPUT_HAS_TANGENT};
use adahessian_wgpu::nn::{activation, dense, dense::DenseShape, loss, Activation, Loss};
use adahessian_wgpu::optim;
use adahessian_wgpu::optim::meta::{SliceMeta, StepMeta};
use adahessian_wgpu::probe::{ProbeKey, ProbeKind, SplitMix64};
use common::{to_f64, uniform, Tolerance};

/// Work-arena offsets of x, y and their t, g, r companions for a layer n_in → n_out over `rows`.
struct Slots {
    meta: LayerMeta,
    len: usize,
}

fn slots(rows: usize, n_in: usize, n_out: usize) -> Slots {
    let (a, b) = ((rows * n_in) as u32, (rows * n_out) as u32);
    let meta = LayerMeta {
        n_in: n_in as u32,
        n_out: n_out as u32,
        x_off: 0,
        t_x_off: a,
        g_x_off: 2 * a,
        r_x_off: 3 * a,
        y_off: 4 * a,
        t_y_off: 4 * a + b,
        g_y_off: 4 * a + 2 * b,
        r_y_off: 4 * a + 3 * b,
        ..Default::default()
    };
    Slots { meta, len: 4 * (a + b) as usize }
}

fn slice(v: &[f32], off: u32, len: usize) -> &[f32] {
    &v[off as usize..off as usize + len]
}

#[test]
fn dense_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(1);
    // (rows, n_in, n_out): batch 1, item counts around 256 and 512, odd sizes
    for &(rows, n_in, n_out) in
        &[(1, 3, 2), (1, 255, 1), (3, 7, 85), (2, 128, 129), (257, 2, 1), (5, 17, 51), (16, 33, 16)]
    {
        let s = slots(rows, n_in, n_out);
        let shape = DenseShape { rows, n_in, n_out };
        let p = n_out * n_in + n_out;
        let mut meta = LayerMeta { w_off: 0, b_off: (n_out * n_in) as u32, ..s.meta };
        let theta = uniform(&mut rng, p, -1.0, 1.0);
        let z = uniform(&mut rng, p, -1.0, 1.0);
        let mut work = uniform(&mut rng, s.len, -2.0, 2.0);
        work[0] = 0.0;
        let (w, b) = (to_f64(&theta[..n_out * n_in]), to_f64(&theta[n_out * n_in..]));
        let (zw, zb) = (to_f64(&z[..n_out * n_in]), to_f64(&z[n_out * n_in..]));
        let x = to_f64(slice(&work, meta.x_off, rows * n_in));
        let t_x = to_f64(slice(&work, meta.t_x_off, rows * n_in));
        let g_y = to_f64(slice(&work, meta.g_y_off, rows * n_out));
        let r_y = to_f64(slice(&work, meta.r_y_off, rows * n_out));
        let tag = format!("dense rows {rows} {n_in}->{n_out}");
        let arenas = LayerArenas { theta, z, g_theta: vec![0.0; p], r_theta: vec![0.0; p], work, stats: vec![0.0; 8] };
        let run = |kernel, meta: &LayerMeta, items: usize| {
            let mut a = arenas.clone();
            block_on(run_layer_kernel(gpu, kernel, meta, rows as u32, items as u32, &mut a)).unwrap();
            a
        };
        let tol = Tolerance::F32_KERNEL;

        let a = run(dense::kernels::DenseFwd, &meta, rows * n_out);
        tol.check(&format!("{tag} fwd"), slice(&a.work, meta.y_off, rows * n_out), &dense::fwd(shape, &w, &b, &x));
        for has_t in [false, true] {
            meta.flags = if has_t { FLAG_INPUT_HAS_TANGENT } else { 0 };
            let t_in = has_t.then_some(t_x.as_slice());
            let a = run(dense::kernels::DenseTangent, &meta, rows * n_out);
            let want = dense::tangent(shape, &w, &zw, &zb, &x, t_in);
            tol.check(&format!("{tag} tangent (t_x: {has_t})"), slice(&a.work, meta.t_y_off, rows * n_out), &want);
            let (rw, rb, rx) = dense::rbwd(shape, &w, &zw, &x, t_in, &g_y, &r_y);
            let a = run(dense::kernels::DenseRbwdW, &meta, n_out * (n_in + 1));
            tol.check(&format!("{tag} rbwd W (t_x: {has_t})"), &a.r_theta[..n_out * n_in], &rw);
            tol.check(&format!("{tag} rbwd b"), &a.r_theta[n_out * n_in..], &rb);
            let a = run(dense::kernels::DenseRbwdX, &meta, rows * n_in);
            tol.check(&format!("{tag} rbwd x"), slice(&a.work, meta.r_x_off, rows * n_in), &rx);
        }
        let (gw, gb, gx) = dense::bwd(shape, &w, &x, &g_y);
        let a = run(dense::kernels::DenseBwdW, &meta, n_out * (n_in + 1));
        tol.check(&format!("{tag} bwd W"), &a.g_theta[..n_out * n_in], &gw);
        tol.check(&format!("{tag} bwd b"), &a.g_theta[n_out * n_in..], &gb);
        let a = run(dense::kernels::DenseBwdX, &meta, rows * n_in);
        tol.check(&format!("{tag} bwd x"), slice(&a.work, meta.g_x_off, rows * n_in), &gx);
    }
}

/// The register-tiled dense kernels (4×4 output blocks, fused pairs) and the workgroup-staged
/// ones (64×64 blocks, chunks of 8 along the contracted axis: n_in, n_out or the batch) against
/// the same f64 references: sizes at tile, block and chunk multiples ± 1, batch 1, n_in 1, and
/// sizes around 256 items.
#[test]
fn tiled_dense_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(7);
    let tiles = |n: usize| n.div_ceil(4);
    for &(rows, n_in, n_out) in &[
        (1, 1, 1),
        (1, 3, 2),
        (4, 4, 4),
        (5, 3, 9),
        (3, 1, 7),
        (7, 8, 3),
        (8, 7, 12),
        (9, 13, 5),
        (1, 255, 1),
        (3, 7, 85),
        (2, 128, 129),
        (257, 2, 1),
        (33, 64, 17),
        (65, 9, 64),
        (64, 17, 65),
        (130, 16, 3),
        (17, 63, 9),
        (70, 130, 24),
    ] {
        let s = slots(rows, n_in, n_out);
        let shape = DenseShape { rows, n_in, n_out };
        let p = n_out * n_in + n_out;
        let mut meta = LayerMeta { w_off: 0, b_off: (n_out * n_in) as u32, ..s.meta };
        let theta = uniform(&mut rng, p, -1.0, 1.0);
        let z = uniform(&mut rng, p, -1.0, 1.0);
        let work = uniform(&mut rng, s.len, -2.0, 2.0);
        let (w, b) = (to_f64(&theta[..n_out * n_in]), to_f64(&theta[n_out * n_in..]));
        let (zw, zb) = (to_f64(&z[..n_out * n_in]), to_f64(&z[n_out * n_in..]));
        let x = to_f64(slice(&work, meta.x_off, rows * n_in));
        let t_x = to_f64(slice(&work, meta.t_x_off, rows * n_in));
        let g_y = to_f64(slice(&work, meta.g_y_off, rows * n_out));
        let r_y = to_f64(slice(&work, meta.r_y_off, rows * n_out));
        let tag = format!("tiled dense rows {rows} {n_in}->{n_out}");
        // NaN everywhere a kernel writes: a missed element cannot pass by matching a stale value
        let arenas = LayerArenas {
            theta,
            z,
            g_theta: vec![f32::NAN; p],
            r_theta: vec![f32::NAN; p],
            work: work.clone(),
            stats: vec![0.0; 8],
        };
        let out_tiles = tiles(rows) * tiles(n_out);
        let out_blocks = rows.div_ceil(64) * n_out.div_ceil(64);
        let in_tiles = tiles(rows) * tiles(n_in);
        let param_tiles = tiles(n_out) * tiles(n_in + 1);
        let in_blocks = rows.div_ceil(64) * n_in.div_ceil(64);
        let param_blocks = n_out.div_ceil(64) * (n_in + 1).div_ceil(64);
        let run = |kernel, meta: &LayerMeta, items: usize, clear: &[u32]| {
            let mut a = arenas.clone();
            for &off in clear {
                let n = if off == meta.y_off || off == meta.t_y_off { rows * n_out } else { rows * n_in };
                a.work[off as usize..off as usize + n].fill(f32::NAN);
            }
            block_on(run_layer_kernel(gpu, kernel, meta, rows as u32, items as u32, &mut a)).unwrap();
            // nothing outside the written tensors changed (no stray stores past a tile's edge)
            let written = |i: usize| {
                clear.iter().any(|&off| {
                    let n = if off == meta.y_off || off == meta.t_y_off { rows * n_out } else { rows * n_in };
                    (off as usize..off as usize + n).contains(&i)
                })
            };
            for (i, (&got, &was)) in a.work.iter().zip(&work).enumerate() {
                assert!(
                    written(i) || got.to_bits() == was.to_bits(),
                    "{kernel:?} rows {rows} {n_in}->{n_out}: stray write at work[{i}]"
                );
            }
            a
        };
        let tol = Tolerance::F32_KERNEL;
        let y = dense::fwd(shape, &w, &b, &x);
        let a = run(dense::kernels::DenseFwdTiled, &meta, out_tiles, &[meta.y_off]);
        tol.check(&format!("{tag} fwd"), slice(&a.work, meta.y_off, rows * n_out), &y);
        let a = run(dense::kernels::DenseFwdShared, &meta, out_blocks, &[meta.y_off]);
        tol.check(&format!("{tag} fwd (workgroup-staged)"), slice(&a.work, meta.y_off, rows * n_out), &y);
        let (gw, gb, gx) = dense::bwd(shape, &w, &x, &g_y);
        let a = run(dense::kernels::DenseBwdWTiled, &meta, param_tiles, &[]);
        tol.check(&format!("{tag} bwd W"), &a.g_theta[..n_out * n_in], &gw);
        tol.check(&format!("{tag} bwd b"), &a.g_theta[n_out * n_in..], &gb);
        let a = run(dense::kernels::DenseBwdXTiled, &meta, in_tiles, &[meta.g_x_off]);
        tol.check(&format!("{tag} bwd x"), slice(&a.work, meta.g_x_off, rows * n_in), &gx);
        let a = run(dense::kernels::DenseBwdWShared, &meta, param_blocks, &[]);
        tol.check(&format!("{tag} bwd W (workgroup-staged)"), &a.g_theta[..n_out * n_in], &gw);
        tol.check(&format!("{tag} bwd b (workgroup-staged)"), &a.g_theta[n_out * n_in..], &gb);
        let a = run(dense::kernels::DenseBwdXShared, &meta, in_blocks, &[meta.g_x_off]);
        tol.check(&format!("{tag} bwd x (workgroup-staged)"), slice(&a.work, meta.g_x_off, rows * n_in), &gx);
        for has_t in [false, true] {
            meta.flags = if has_t { FLAG_INPUT_HAS_TANGENT } else { 0 };
            let t_in = has_t.then_some(t_x.as_slice());
            let t_y = dense::tangent(shape, &w, &zw, &zb, &x, t_in);
            let (rw, rb, rx) = dense::rbwd(shape, &w, &zw, &x, t_in, &g_y, &r_y);
            let tag = format!("{tag} (t_x: {has_t})");
            let a = run(dense::kernels::DenseTangentTiled, &meta, out_tiles, &[meta.t_y_off]);
            tol.check(&format!("{tag} tangent"), slice(&a.work, meta.t_y_off, rows * n_out), &t_y);
            let a = run(dense::kernels::DenseFwdTangentTiled, &meta, out_tiles, &[meta.y_off, meta.t_y_off]);
            tol.check(&format!("{tag} fused fwd"), slice(&a.work, meta.y_off, rows * n_out), &y);
            tol.check(&format!("{tag} fused tangent"), slice(&a.work, meta.t_y_off, rows * n_out), &t_y);
            let a = run(dense::kernels::DenseTangentShared, &meta, out_blocks, &[meta.t_y_off]);
            tol.check(&format!("{tag} tangent (workgroup-staged)"), slice(&a.work, meta.t_y_off, rows * n_out), &t_y);
            let a = run(dense::kernels::DenseFwdTangentShared, &meta, out_blocks, &[meta.y_off, meta.t_y_off]);
            tol.check(&format!("{tag} fused fwd (workgroup-staged)"), slice(&a.work, meta.y_off, rows * n_out), &y);
            let t_got = slice(&a.work, meta.t_y_off, rows * n_out);
            tol.check(&format!("{tag} fused tangent (workgroup-staged)"), t_got, &t_y);
            // the backward products of both tiled sets: register tiles and workgroup-staged blocks
            let sets = [
                (
                    "",
                    [
                        dense::kernels::DenseRbwdWTiled,
                        dense::kernels::DenseRbwdXTiled,
                        dense::kernels::DenseBwdRbwdWTiled,
                        dense::kernels::DenseBwdRbwdXTiled,
                    ],
                    param_tiles,
                    in_tiles,
                ),
                (
                    " (workgroup-staged)",
                    [
                        dense::kernels::DenseRbwdWShared,
                        dense::kernels::DenseRbwdXShared,
                        dense::kernels::DenseBwdRbwdWShared,
                        dense::kernels::DenseBwdRbwdXShared,
                    ],
                    param_blocks,
                    in_blocks,
                ),
            ];
            for (set, [rbwd_w, rbwd_x, fused_w, fused_x], param_items, in_items) in sets {
                let a = run(rbwd_w, &meta, param_items, &[]);
                tol.check(&format!("{tag} rbwd W{set}"), &a.r_theta[..n_out * n_in], &rw);
                tol.check(&format!("{tag} rbwd b{set}"), &a.r_theta[n_out * n_in..], &rb);
                let a = run(rbwd_x, &meta, in_items, &[meta.r_x_off]);
                tol.check(&format!("{tag} rbwd x{set}"), slice(&a.work, meta.r_x_off, rows * n_in), &rx);
                let a = run(fused_w, &meta, param_items, &[]);
                tol.check(&format!("{tag} fused bwd W{set}"), &a.g_theta[..n_out * n_in], &gw);
                tol.check(&format!("{tag} fused bwd b{set}"), &a.g_theta[n_out * n_in..], &gb);
                tol.check(&format!("{tag} fused rbwd W{set}"), &a.r_theta[..n_out * n_in], &rw);
                tol.check(&format!("{tag} fused rbwd b{set}"), &a.r_theta[n_out * n_in..], &rb);
                let a = run(fused_x, &meta, in_items, &[meta.g_x_off, meta.r_x_off]);
                tol.check(&format!("{tag} fused bwd x{set}"), slice(&a.work, meta.g_x_off, rows * n_in), &gx);
                tol.check(&format!("{tag} fused rbwd x{set}"), slice(&a.work, meta.r_x_off, rows * n_in), &rx);
            }
        }
    }
}

/// tanh′ = sech² keeps its relative accuracy where 1 − tanh² cancels (issue 10): the tangent
/// and backward kernels give sech² x to 1e-5 relative for |x| up to 40 (it is ~1e-35 there),
/// checked against an independent f64 formula with no absolute slack.
#[test]
fn tanh_derivative_keeps_relative_accuracy_in_saturation() {
    let gpu = gpu_or_skip!();
    let xs: Vec<f32> = vec![0.0, 0.5, -2.0, 4.0, -6.0, 9.0, 12.0, -20.0, 30.0, 40.0];
    let n = xs.len();
    let s = slots(1, n, n);
    let m = s.meta;
    let mut work = vec![0.0f32; s.len];
    work[..n].copy_from_slice(&xs);
    work[m.t_x_off as usize..m.t_x_off as usize + n].fill(1.0);
    work[m.g_y_off as usize..m.g_y_off as usize + n].fill(1.0);
    let arenas = LayerArenas {
        theta: vec![0.0],
        z: vec![0.0],
        g_theta: vec![0.0],
        r_theta: vec![0.0],
        work,
        stats: vec![0.0; 8],
    };
    // sech² x = 1 / cosh² x, computed independently of the kernels' formula
    let want: Vec<f64> = xs.iter().map(|&x| 1.0 / (x as f64).cosh().powi(2)).collect();
    for (kernel, off) in [(activation::kernels::TanhTangent, m.t_y_off), (activation::kernels::TanhBwd, m.g_x_off)] {
        let mut a = arenas.clone();
        block_on(run_layer_kernel(gpu, kernel, &m, 1, n as u32, &mut a)).unwrap();
        Tolerance { atol: 0.0, rtol: 1e-5 }.check(&format!("{kernel:?} = sech²"), slice(&a.work, off, n), &want);
    }
}

/// Inputs with the edges every activation must survive, padded with random values to `n`.
fn edge_inputs(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    let edges = [
        0.0, -0.0, 45.0, -45.0, 100.0, -100.0, 88.8, -88.8, 1e4, -1e4, 20.0, 20.0001, 19.9999, -20.0, 1e-6, -1e-6,
        0.005, -0.005, 3.0, -3.0, 6.0, -6.0, 12.0, -12.0,
    ];
    let mut x = uniform(rng, n, -8.0, 8.0);
    for (i, e) in edges.iter().enumerate().take(n) {
        x[i] = *e;
    }
    x
}

#[test]
fn activation_kernels_match_reference_on_edge_inputs() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(2);
    for act in Activation::ALL {
        let Some([fwd, tangent, bwd, rbwd]) = act.kernels() else {
            continue;
        };
        for &(rows, n) in &[(1, 255), (1, 257), (3, 171), (2, 256), (1, 24)] {
            let s = slots(rows, n, n);
            let m = s.meta;
            let len = rows * n;
            let mut work = uniform(&mut rng, s.len, -1.0, 1.0);
            let xs = edge_inputs(&mut rng, len);
            work[..len].copy_from_slice(&xs);
            let x = to_f64(&xs);
            let t_x = to_f64(slice(&work, m.t_x_off, len));
            let g_y = to_f64(slice(&work, m.g_y_off, len));
            let r_y = to_f64(slice(&work, m.r_y_off, len));
            let arenas = LayerArenas {
                theta: vec![0.0],
                z: vec![0.0],
                g_theta: vec![0.0],
                r_theta: vec![0.0],
                work,
                stats: vec![0.0; 8],
            };
            let run = |kernel| {
                let mut a = arenas.clone();
                block_on(run_layer_kernel(gpu, kernel, &m, rows as u32, len as u32, &mut a)).unwrap();
                a.work
            };
            let tag = format!("{act:?} rows {rows} n {n}");
            // f itself is large for large x (x = 1e4): a relative tolerance of f32's size is right
            let tol = Tolerance { atol: 2e-6, rtol: 2e-5 };
            tol.check(&format!("{tag} fwd"), slice(&run(fwd), m.y_off, len), &activation::fwd(act, &x));
            tol.check(
                &format!("{tag} tangent"),
                slice(&run(tangent), m.t_y_off, len),
                &activation::tangent(act, &x, &t_x),
            );
            tol.check(&format!("{tag} bwd"), slice(&run(bwd), m.g_x_off, len), &activation::bwd(act, &x, &g_y));
            tol.check(
                &format!("{tag} rbwd"),
                slice(&run(rbwd), m.r_x_off, len),
                &activation::rbwd(act, &x, &t_x, &g_y, &r_y),
            );
            // the tiled sets' fused pairs: the same values as the separate kernels, bit for bit
            let [fwd_tangent, bwd_rbwd] = act.fused_kernels().expect("every activation with kernels has fused pairs");
            let (both, fwd_alone, tangent_alone) = (run(fwd_tangent), run(fwd), run(tangent));
            for (off, alone, what) in [(m.y_off, &fwd_alone, "fwd"), (m.t_y_off, &tangent_alone, "tangent")] {
                let (got, want) = (slice(&both, off, len), slice(alone, off, len));
                assert!(got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "{tag} fused {what}");
            }
            let (both, bwd_alone, rbwd_alone) = (run(bwd_rbwd), run(bwd), run(rbwd));
            for (off, alone, what) in [(m.g_x_off, &bwd_alone, "bwd"), (m.r_x_off, &rbwd_alone, "rbwd")] {
                let (got, want) = (slice(&both, off, len), slice(alone, off, len));
                assert!(got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()), "{tag} fused {what}");
            }
        }
    }
}

#[test]
fn relu_derivative_at_the_kink_is_zero_like_pytorch() {
    assert_eq!(Activation::Relu.d1(0.0), 0.0);
    assert_eq!(Activation::Relu.d1(-0.0), 0.0);
    assert_eq!(Activation::Relu.d2(1.0), 0.0);
}

#[test]
fn loss_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(3);
    for loss_kind in [Loss::CrossEntropy, Loss::Mse] {
        for &(rows, k) in &[(1, 2), (1, 10), (7, 3), (300, 5), (2, 257)] {
            let n = rows * k;
            let tw = loss_kind.target_width(k);
            let s = slots(rows, k, 1);
            let base = s.len as u32;
            let meta = LayerMeta {
                target_off: base,
                loss_off: base + (rows * tw) as u32,
                hit_off: base + (rows * tw + rows) as u32,
                lse_off: base + (rows * tw + 2 * rows) as u32,
                t_loss_off: base + (rows * tw + 3 * rows) as u32,
                target_width: tw as u32,
                ..s.meta
            };
            let len = s.len + rows * tw + 4 * rows;
            let mut work = uniform(&mut rng, len, -3.0, 3.0);
            // large logits: a stable log-sum-exp must not overflow
            work[0] = 50.0;
            if n > 1 {
                work[1] = -50.0;
            }
            let targets: Vec<f32> = match loss_kind {
                Loss::CrossEntropy => (0..rows).map(|_| rng.below(k) as f32).collect(),
                Loss::Mse => uniform(&mut rng, n, -1.0, 1.0),
            };
            work[meta.target_off as usize..meta.target_off as usize + rows * tw].copy_from_slice(&targets);
            let y = to_f64(&work[..n]);
            let t = to_f64(slice(&work, meta.t_x_off, n));
            let tg = to_f64(&targets);
            let arenas = LayerArenas {
                theta: vec![0.0],
                z: vec![0.0],
                g_theta: vec![0.0],
                r_theta: vec![0.0],
                work,
                stats: vec![0.0; 8],
            };
            let [fwd, tangent, bwd, rbwd] = loss_kind.kernels();
            let tag = format!("{loss_kind:?} rows {rows} k {k}");
            let tol = Tolerance::F32_KERNEL;
            // forward first: the other kernels read the log-sum-exp it stores
            let mut a = arenas.clone();
            block_on(run_layer_kernel(gpu, fwd, &meta, rows as u32, rows as u32, &mut a)).unwrap();
            tol.check(&format!("{tag} fwd"), slice(&a.work, meta.loss_off, rows), &loss_kind.fwd(&y, &tg, rows, k));
            if loss_kind == Loss::CrossEntropy {
                let hits: Vec<f64> =
                    (0..rows).map(|b| (loss::argmax(&y[b * k..(b + 1) * k]) == tg[b] as usize) as u8 as f64).collect();
                tol.check(&format!("{tag} hits"), slice(&a.work, meta.hit_off, rows), &hits);
            }
            let after_fwd = a.clone();
            let run = |kernel, items: usize| {
                let mut b = after_fwd.clone();
                block_on(run_layer_kernel(gpu, kernel, &meta, rows as u32, items as u32, &mut b)).unwrap();
                b
            };
            let b = run(tangent, rows);
            tol.check(
                &format!("{tag} tangent"),
                slice(&b.work, meta.t_loss_off, rows),
                &loss_kind.tangent(&y, &tg, &t, rows, k),
            );
            let b = run(bwd, n);
            tol.check(&format!("{tag} bwd"), slice(&b.work, meta.g_x_off, n), &loss_kind.bwd(&y, &tg, rows, k));
            let b = run(rbwd, n);
            tol.check(&format!("{tag} rbwd"), slice(&b.work, meta.r_x_off, n), &loss_kind.rbwd(&y, &t, rows, k));
            // the tiled sets' fused pairs, against the same references (the forward + tangent
            // kernel from scratch: it must store the log-sum-exp its tangent reads)
            let ([fwd_tangent, bwd_rbwd], per_row) = loss_kind.fused_kernels(k);
            let mut b = arenas.clone();
            block_on(run_layer_kernel(gpu, fwd_tangent, &meta, rows as u32, rows as u32, &mut b)).unwrap();
            tol.check(
                &format!("{tag} fused fwd"),
                slice(&b.work, meta.loss_off, rows),
                &loss_kind.fwd(&y, &tg, rows, k),
            );
            let want_t = loss_kind.tangent(&y, &tg, &t, rows, k);
            tol.check(&format!("{tag} fused tangent"), slice(&b.work, meta.t_loss_off, rows), &want_t);
            assert_eq!(
                slice(&b.work, meta.hit_off, rows),
                slice(&after_fwd.work, meta.hit_off, rows),
                "{tag} fused hits"
            );
            let b = run(bwd_rbwd, rows * per_row);
            tol.check(&format!("{tag} fused bwd"), slice(&b.work, meta.g_x_off, n), &loss_kind.bwd(&y, &tg, rows, k));
            tol.check(&format!("{tag} fused rbwd"), slice(&b.work, meta.r_x_off, n), &loss_kind.rbwd(&y, &t, rows, k));

            // loss_reduce sums the per-row terms, overwriting or accumulating
            let b = run(loss::kernels::LossReduce, 1);
            let sum = |off: u32| slice(&b.work, off, rows).iter().map(|&v| v as f64).sum::<f64>();
            let want = [sum(meta.loss_off), sum(meta.hit_off), sum(meta.t_loss_off)];
            tol.check(&format!("{tag} reduce"), &b.stats[..3], &want);
            let mut c = b.clone();
            let acc = LayerMeta { flags: FLAG_ACCUMULATE, ..meta };
            block_on(run_layer_kernel(gpu, loss::kernels::LossReduce, &acc, rows as u32, 1, &mut c)).unwrap();
            tol.check(&format!("{tag} reduce accumulate"), &c.stats[..3], &want.map(|v| 2.0 * v));
        }
    }
}

fn probe_run(kernel: Kernel, n: usize, key: ProbeKey) -> Option<Vec<f32>> {
    let gpu = common::gpu()?;
    let slice = SliceMeta {
        n_params: n as u32,
        len: n as u32,
        group_len: 1,
        sample: key.sample,
        n_samples: 1,
        seed_lo: key.seed as u32,
        seed_hi: (key.seed >> 32) as u32,
        ..Default::default()
    };
    let step = StepMeta { t: key.step, ..Default::default() };
    let mut a = OptimArenas { z: vec![0.0; n], ..Default::default() };
    block_on(run_optim_kernel(gpu, kernel, &slice, &step, n as u32, &mut a)).unwrap();
    Some(a.z)
}

/// Two steps' probes are never one probe read at permuted indices. The earlier mix pcg(c ⊕ k)
/// with k = key(seed, step, sample) had exactly that flaw: when two steps' keys agree above
/// bit log2(n), {c ⊕ k1 : c < n} = {c ⊕ k2 : c < n} and the probes are permutations of each other.
/// This finds such a pair of steps (emulating the old mix), shows the old probes ARE permutations,
/// and checks the current hash gives different multisets of Gaussian values there.
#[test]
fn two_steps_probes_are_not_permutations_of_each_other() {
    use adahessian_wgpu::probe::pcg_hash;
    let n = 1024u32;
    let old_gaussian = |k: u32| -> Vec<u64> {
        let unit = |h: u32| ((h >> 8) as f64 + 1.0) / 16_777_216.0;
        let mut v: Vec<u64> = (0..n)
            .map(|i| {
                let (u1, u2) = (unit(pcg_hash((2 * i) ^ k)), unit(pcg_hash((2 * i + 1) ^ k)));
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).to_bits()
            })
            .collect();
        v.sort();
        v
    };
    let sorted = |key: ProbeKey| -> Vec<u32> {
        let mut v: Vec<u32> = key.vector(ProbeKind::Gaussian, n as usize).iter().map(|x| x.to_bits()).collect();
        v.sort();
        v
    };
    // keys agreeing above bit 11 (the Gaussian reads counters 0..2n): about one pair of steps
    // among 64 in every 2000 seeds
    let found = (0..20_000u64).find_map(|seed| {
        let keys: Vec<(u32, u32)> = (1..=64).map(|step| (ProbeKey { seed, step, sample: 0 }.key(), step)).collect();
        keys.iter().enumerate().find_map(|(i, &(k1, s1))| {
            keys[i + 1..].iter().find(|&&(k2, _)| (k1 ^ k2) >> 11 == 0).map(|&(k2, s2)| (seed, s1, s2, k1, k2))
        })
    });
    let (seed, s1, s2, k1, k2) = found.expect("a colliding pair of steps exists within 20000 seeds");
    assert_eq!(
        old_gaussian(k1),
        old_gaussian(k2),
        "the old mix gives permuted probes at seed {seed}, steps {s1}, {s2}"
    );
    let (a, b) = (ProbeKey { seed, step: s1, sample: 0 }, ProbeKey { seed, step: s2, sample: 0 });
    assert_ne!(sorted(a), sorted(b), "seed {seed}: steps {s1} and {s2} draw permutations of one probe");
}

#[test]
fn rademacher_probe_is_bit_identical_to_the_cpu_mirror_and_mean_zero() {
    let key = ProbeKey { seed: 0xDEAD_BEEF_1234, step: 7, sample: 1 };
    let n = 256 * 40 + 1;
    let Some(z) = probe_run(optim::kernels::ProbeRademacher, n, key) else {
        return;
    };
    assert_eq!(z, key.vector(ProbeKind::Rademacher, n));
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    // ±1 i.i.d.: the mean has standard deviation 1/√n ≈ 0.0098; 5σ
    assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "Rademacher mean {mean}");
    // fresh each step, each sample and each seed: about half the signs agree (5σ band), and the
    // GPU matches its CPU mirror under every key, not only the first
    let agree = |a: &[f32], b: &[f32]| a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64;
    for other in [ProbeKey { step: 8, ..key }, ProbeKey { sample: 2, ..key }, ProbeKey { seed: key.seed + 1, ..key }] {
        let gpu_z = probe_run(optim::kernels::ProbeRademacher, n, other).unwrap();
        assert_eq!(gpu_z, other.vector(ProbeKind::Rademacher, n), "{other:?}");
        let a = agree(&gpu_z, &z);
        assert!((a - 0.5).abs() < 5.0 * 0.5 / (n as f64).sqrt(), "{other:?}: {a} of the signs agree with {key:?}");
    }
}

#[test]
fn gaussian_probe_matches_the_cpu_mirror_and_is_standard_normal() {
    let key = ProbeKey { seed: 42, step: 3, sample: 0 };
    let n = 256 * 64 - 1;
    let Some(z) = probe_run(optim::kernels::ProbeGaussian, n, key) else {
        return;
    };
    let want: Vec<f64> = key.vector(ProbeKind::Gaussian, n).iter().map(|&v| v as f64).collect();
    Tolerance { atol: 1e-5, rtol: 1e-4 }.check("gaussian probe", &z, &want);
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 0.05, "variance {var}");
}

#[test]
fn curvature_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(4);
    let n = 513;
    let z = uniform(&mut rng, n, -1.0, 1.0);
    let hz = uniform(&mut rng, n, -2.0, 2.0);
    let prior = uniform(&mut rng, n, -1.0, 1.0);
    let step = StepMeta::default();
    let base = SliceMeta { n_params: n as u32, len: n as u32, group_len: 1, n_samples: 2, ..Default::default() };
    for sample in [0u32, 1] {
        let mut a = OptimArenas { z: z.clone(), r_theta: hz.clone(), curv: prior.clone(), ..Default::default() };
        let slice = SliceMeta { sample, ..base };
        block_on(run_optim_kernel(gpu, optim::kernels::CurvAccumulate, &slice, &step, n as u32, &mut a)).unwrap();
        let want: Vec<f64> = (0..n)
            .map(|i| if sample == 0 { 0.0 } else { prior[i] as f64 } + z[i] as f64 * hz[i] as f64 / 2.0)
            .collect();
        Tolerance::F32_KERNEL.check(&format!("curv_accumulate sample {sample}"), &a.curv, &want);
    }
    let mut a = OptimArenas { curv: prior.clone(), ..Default::default() };
    block_on(run_optim_kernel(gpu, optim::kernels::CurvAbs, &base, &step, n as u32, &mut a)).unwrap();
    Tolerance::F32_KERNEL.check("curv_abs", &a.curv, &prior.iter().map(|v| v.abs() as f64).collect::<Vec<_>>());
    // mean over groups of 9 inside [100, 100 + 27·9), the rest untouched
    let slice = SliceMeta { off: 100, len: 243, group_len: 9, ..base };
    let mut a = OptimArenas { curv: prior.clone(), ..Default::default() };
    block_on(run_optim_kernel(gpu, optim::kernels::CurvGroupMean, &slice, &step, 27, &mut a)).unwrap();
    let mut want = to_f64(&prior);
    for chunk in want[100..343].chunks_mut(9) {
        let m = chunk.iter().sum::<f64>() / 9.0;
        chunk.iter_mut().for_each(|v| *v = m);
    }
    Tolerance::F32_KERNEL.check("curv_group_mean", &a.curv, &want);
}

#[test]
fn grad_sumsq_reduces_the_whole_arena() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(5);
    for n in [1usize, 255, 256, 257, 4097] {
        let g = uniform(&mut rng, n, -1.0, 1.0);
        let slice = SliceMeta { n_params: n as u32, len: n as u32, group_len: 1, n_samples: 1, ..Default::default() };
        let mut a = OptimArenas { g_theta: g.clone(), stats: vec![0.0; stat::LEN], ..Default::default() };
        block_on(run_optim_kernel(gpu, optim::kernels::GradSumsq, &slice, &StepMeta::default(), 1, &mut a)).unwrap();
        let want = g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        Tolerance::F32_KERNEL.check(
            &format!("grad_sumsq n {n}"),
            &a.stats[stat::GRAD_SUMSQ..stat::GRAD_SUMSQ + 1],
            &[want],
        );
    }
}

/// The activation epilogue of the fused forward + tangent kernel (used on GPUs; CPU adapters run
/// the separate kernels, which the whole-model tests cover): post = f(y), t_post = f′(y) t_y for
/// every activation, against the f64 activation and dense references.
#[test]
fn fused_forward_tangent_epilogue_applies_the_next_activation() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(17);
    let (rows, n_in, n_out) = (5, 6, 7);
    let s = slots(rows, n_in, n_out);
    let shape = DenseShape { rows, n_in, n_out };
    let p = n_out * n_in + n_out;
    let post = s.len as u32;
    let theta = uniform(&mut rng, p, -1.0, 1.0);
    let z = uniform(&mut rng, p, -1.0, 1.0);
    let mut work = uniform(&mut rng, s.len, -2.0, 2.0);
    work.extend(vec![f32::NAN; 2 * rows * n_out]);
    let (w, b) = (to_f64(&theta[..n_out * n_in]), to_f64(&theta[n_out * n_in..]));
    let (zw, zb) = (to_f64(&z[..n_out * n_in]), to_f64(&z[n_out * n_in..]));
    let x = to_f64(slice(&work, s.meta.x_off, rows * n_in));
    let t_x = to_f64(slice(&work, s.meta.t_x_off, rows * n_in));
    let y = dense::fwd(shape, &w, &b, &x);
    let t_y = dense::tangent(shape, &w, &zw, &zb, &x, Some(&t_x));
    for act in Activation::ALL.into_iter().filter(|a| a.kernels().is_some()) {
        let meta = LayerMeta {
            w_off: 0,
            b_off: (n_out * n_in) as u32,
            flags: FLAG_INPUT_HAS_TANGENT,
            act_fwd: act.code(),
            post_x_off: post,
            post_t_off: post + (rows * n_out) as u32,
            ..s.meta
        };
        let mut a = LayerArenas {
            theta: theta.clone(),
            z: z.clone(),
            g_theta: vec![0.0; p],
            r_theta: vec![0.0; p],
            work: work.clone(),
            stats: vec![0.0; 8],
        };
        let tiles = rows.div_ceil(4) * n_out.div_ceil(4);
        block_on(run_layer_kernel(gpu, dense::kernels::DenseFwdTangentTiled, &meta, rows as u32, tiles as u32, &mut a))
            .unwrap();
        let want_post: Vec<f64> = y.iter().map(|&v| act.f(v)).collect();
        let want_t: Vec<f64> = y.iter().zip(&t_y).map(|(&v, &t)| act.d1(v) * t).collect();
        Tolerance::F32_KERNEL.check(&format!("{act:?} post"), slice(&a.work, post, rows * n_out), &want_post);
        Tolerance::F32_KERNEL.check(
            &format!("{act:?} post tangent"),
            slice(&a.work, post + (rows * n_out) as u32, rows * n_out),
            &want_t,
        );
    }
}
