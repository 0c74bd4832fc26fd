//! The CNN path climbs the same ladder as the MLP path: conv and pooling kernels against their f64
//! references (odd sizes, stride > 1, padding, kernels larger than 3, batch 1), the f64 CNN
//! against finite differences, the whole GPU CNN's gradient and H·z against the reference and the
//! symmetry identity, AdaHessian's spatial averaging against its f64 rule, and a small CNN
//! trained on the 8×8 digits to ≥ 97% test accuracy.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::data::{self, DeviceDataset};
use adahessian_wgpu::gpu::harness::{run_layer_kernel, run_layer_kernels, LayerArenas};
use adahessian_wgpu::gpu::Kernel;
use adahessian_wgpu::nn::meta::{LayerMeta, FLAG_INPUT_HAS_TANGENT};
use adahessian_wgpu::nn::KernelSet;
use adahessian_wgpu::nn::{
    conv, pool, reference, Batch, Geometry, Layer, LayerOp, Loss, ModelSpec, Network, NetworkOptions,
};
use adahessian_wgpu::optim::{AdaHessianConfig, Method, Optimizer, OptimizerConfig};
use adahessian_wgpu::probe::SplitMix64;
use adahessian_wgpu::train;
use common::{compare, dot, problem, problem_with, random_data, to_f64, uniform, Tolerance};

fn geometry(spec_input: [usize; 3], layer: Layer) -> Geometry {
    let spec = ModelSpec {
        input: spec_input.to_vec(),
        layers: vec![layer, Layer::Flatten, Layer::Dense { out: 2, bias: true }],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    };
    match spec.resolve().unwrap().layers[0].op {
        LayerOp::Conv2d(conv::ConvOp { geom, .. })
        | LayerOp::MaxPool2d(pool::MaxPoolOp { geom })
        | LayerOp::AvgPool2d(pool::AvgPoolOp { geom }) => geom,
        other => panic!("{other:?}"),
    }
}

fn meta_for(g: &Geometry, rows: usize) -> (LayerMeta, usize) {
    let (a, b) = ((rows * g.in_len()) as u32, (rows * g.out_len()) as u32);
    let meta = LayerMeta {
        n_in: g.in_len() as u32,
        n_out: g.out_len() as u32,
        x_off: 0,
        t_x_off: a,
        g_x_off: 2 * a,
        r_x_off: 3 * a,
        y_off: 4 * a,
        t_y_off: 4 * a + b,
        g_y_off: 4 * a + 2 * b,
        r_y_off: 4 * a + 3 * b,
        aux_off: 4 * (a + b),
        c_in: g.c_in as u32,
        h_in: g.h_in as u32,
        w_in: g.w_in as u32,
        c_out: g.c_out as u32,
        h_out: g.h_out as u32,
        w_out: g.w_out as u32,
        k_h: g.k_h as u32,
        k_w: g.k_w as u32,
        stride_h: g.stride_h as u32,
        stride_w: g.stride_w as u32,
        pad_h: g.pad_h as u32,
        pad_w: g.pad_w as u32,
        ..Default::default()
    };
    (meta, 4 * (a + b) as usize + b as usize)
}

fn part(v: &[f32], off: u32, len: usize) -> &[f32] {
    &v[off as usize..off as usize + len]
}

#[test]
fn conv_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(1);
    let cases = [
        (1, [1, 5, 5], 2, (3, 3), (1, 1), (1, 1)),
        (2, [3, 7, 6], 4, (5, 3), (2, 1), (2, 0)),
        (3, [2, 9, 9], 3, (4, 4), (3, 3), (1, 1)),
        (1, [2, 8, 8], 5, (1, 1), (1, 1), (0, 0)),
        (2, [1, 6, 11], 2, (6, 2), (1, 3), (0, 1)),
    ];
    for (rows, input, out, kernel, stride, padding) in cases {
        let g = geometry(input, Layer::Conv2d { out, kernel, stride, padding, bias: true });
        let (mut meta, len) = meta_for(&g, rows);
        let p = g.weight_len() + g.c_out;
        meta.w_off = 0;
        meta.b_off = g.weight_len() as u32;
        // the weight gradients' split partials go after the tensors (at most a split per pixel)
        let pixels = rows * g.h_out * g.w_out;
        let partials = pixels * p;
        let theta = uniform(&mut rng, p, -1.0, 1.0);
        let z = uniform(&mut rng, p, -1.0, 1.0);
        let work = uniform(&mut rng, len + 2 * partials, -2.0, 2.0);
        let wl = g.weight_len();
        let (w, b, zw, zb) = (to_f64(&theta[..wl]), to_f64(&theta[wl..]), to_f64(&z[..wl]), to_f64(&z[wl..]));
        let (nx, ny) = (rows * g.in_len(), rows * g.out_len());
        let x = to_f64(part(&work, meta.x_off, nx));
        let t_x = to_f64(part(&work, meta.t_x_off, nx));
        let g_y = to_f64(part(&work, meta.g_y_off, ny));
        let r_y = to_f64(part(&work, meta.r_y_off, ny));
        let arenas = LayerArenas { theta, z, g_theta: vec![0.0; p], r_theta: vec![0.0; p], work, stats: vec![0.0; 8] };
        let run = |kernel, meta: &LayerMeta, items: usize| {
            let mut a = arenas.clone();
            block_on(run_layer_kernel(gpu, kernel, meta, rows as u32, items as u32, &mut a)).unwrap();
            a
        };
        let tag = format!("conv rows {rows} {input:?}->{out} k{kernel:?} s{stride:?} p{padding:?}");
        let tol = Tolerance::F32_KERNEL;
        let a = run(conv::kernels::ConvFwd, &meta, ny);
        tol.check(&format!("{tag} fwd"), part(&a.work, meta.y_off, ny), &conv::fwd(&g, rows, &w, &b, &x));
        let (gw, gb, gx) = conv::bwd(&g, rows, &w, &x, &g_y);
        for k in [conv::kernels::ConvBwdW, conv::kernels::ConvBwdWSerial] {
            let a = run(k, &meta, p);
            tol.check(&format!("{tag} {k:?} W"), &a.g_theta[..wl], &gw);
            tol.check(&format!("{tag} {k:?} b"), &a.g_theta[wl..], &gb);
        }
        let a = run(conv::kernels::ConvBwdX, &meta, nx);
        tol.check(&format!("{tag} bwd x"), part(&a.work, meta.g_x_off, nx), &gx);
        for has_t in [false, true] {
            meta.flags = if has_t { FLAG_INPUT_HAS_TANGENT } else { 0 };
            let t_in = has_t.then_some(t_x.as_slice());
            let a = run(conv::kernels::ConvTangent, &meta, ny);
            let want = conv::tangent(&g, rows, &w, &zw, &zb, &x, t_in);
            tol.check(&format!("{tag} tangent ({has_t})"), part(&a.work, meta.t_y_off, ny), &want);
            let (rw, rb, rx) = conv::rbwd(&g, rows, &w, &zw, &x, t_in, &g_y, &r_y);
            for k in [conv::kernels::ConvRbwdW, conv::kernels::ConvRbwdWSerial] {
                let a = run(k, &meta, p);
                tol.check(&format!("{tag} {k:?} W ({has_t})"), &a.r_theta[..wl], &rw);
                tol.check(&format!("{tag} {k:?} b"), &a.r_theta[wl..], &rb);
            }
            let a = run(conv::kernels::ConvRbwdX, &meta, nx);
            tol.check(&format!("{tag} rbwd x"), part(&a.work, meta.r_x_off, nx), &rx);
        }
    }
}

/// The implicit-GEMM register-tiled conv kernels (8 channels × 8 pixels, 8 columns or 4 taps
/// per invocation, fused pairs) against the same f64 references, on channel and pixel counts
/// that are not multiples of the tile, strides > 1, padding, rectangular and 1×1 kernels, batch
/// 1; the weight gradients whole (one split, stored by the tile kernel) and split over their
/// reduction (runs of 1, 5 and about a third of the pixels, the last run short, summed by the
/// reduce kernels); the tiles after their pass has packed W and Z_W (forward, input
/// cotangents) or g_y (weight gradients).
#[test]
fn tiled_conv_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(11);
    let cases = [
        (1, [1, 5, 5], 2, (3, 3), (1, 1), (1, 1)),
        (2, [3, 7, 6], 4, (5, 3), (2, 1), (2, 0)),
        (3, [2, 9, 9], 3, (4, 4), (3, 3), (1, 1)),
        (1, [2, 8, 8], 5, (1, 1), (1, 1), (0, 0)),
        (2, [1, 6, 11], 2, (6, 2), (1, 3), (0, 1)),
        (3, [5, 7, 5], 9, (3, 3), (2, 2), (1, 1)),
        (1, [4, 4, 4], 4, (2, 2), (2, 2), (0, 0)),
        // strided input cotangents: padding wider than the stride, a width that is not a
        // multiple of the stride (phases of unequal length), the ResNet's stride-2 3 × 3
        (2, [3, 9, 13], 5, (5, 5), (2, 3), (3, 2)),
        (1, [6, 10, 10], 7, (3, 3), (2, 2), (1, 1)),
        // more channels than one 8-channel tile, the second one partial (in and out)
        (2, [12, 6, 5], 13, (3, 3), (1, 1), (1, 1)),
        (1, [9, 5, 7], 17, (3, 3), (2, 2), (1, 1)),
        // 3-wide kernels of column stride 1 by row windows: rows of 15 and 16 columns (a partial
        // and a whole second tile), a row stride of 2, no padding and padding wider than the
        // window's two extra columns, a single column
        (2, [3, 9, 13], 5, (4, 3), (2, 1), (1, 2)),
        (1, [2, 4, 16], 9, (3, 3), (1, 1), (1, 1)),
        (3, [4, 5, 11], 3, (3, 3), (1, 1), (0, 0)),
        (1, [2, 3, 3], 2, (1, 3), (1, 1), (0, 3)),
        (2, [1, 6, 1], 4, (3, 3), (1, 1), (1, 1)),
    ];
    for (rows, input, out, kernel, stride, padding) in cases {
        let g = geometry(input, Layer::Conv2d { out, kernel, stride, padding, bias: true });
        let (mut meta, len) = meta_for(&g, rows);
        let p = g.weight_len() + g.c_out;
        meta.w_off = 0;
        meta.b_off = g.weight_len() as u32;
        // the weight gradients' split partials go after the tensors (at most a split per pixel)
        let pixels = rows * g.h_out * g.w_out;
        let partials = pixels * p;
        // then the packings (W and Z_W, or g_y and r_y), vec4-aligned: each pass packs before its tiles
        let pack = conv::PackedWeights::new(&g);
        let pack_len = 4 * pack.forward.max(pack.input).max(rows * pack.cotangents_per_row);
        meta.pack_off = (len + 2 * partials).next_multiple_of(4) as u32;
        meta.pack_z_off = meta.pack_off + pack_len as u32;
        let packed = (meta.pack_off, 2 * pack_len);
        let theta = uniform(&mut rng, p, -1.0, 1.0);
        let z = uniform(&mut rng, p, -1.0, 1.0);
        let work = uniform(&mut rng, meta.pack_off as usize + 2 * pack_len, -2.0, 2.0);
        let wl = g.weight_len();
        let (w, b, zw, zb) = (to_f64(&theta[..wl]), to_f64(&theta[wl..]), to_f64(&z[..wl]), to_f64(&z[wl..]));
        let (nx, ny) = (rows * g.in_len(), rows * g.out_len());
        let x = to_f64(part(&work, meta.x_off, nx));
        let t_x = to_f64(part(&work, meta.t_x_off, nx));
        let g_y = to_f64(part(&work, meta.g_y_off, ny));
        let r_y = to_f64(part(&work, meta.r_y_off, ny));
        let arenas = LayerArenas {
            theta,
            z,
            g_theta: vec![f32::NAN; p],
            r_theta: vec![f32::NAN; p],
            work: work.clone(),
            stats: vec![0.0; 8],
        };
        // outputs start as NaN so a missed element fails; everything else must stay untouched
        let run_all = |kernels: &[(Kernel, u32)], meta: &LayerMeta, outputs: &[(u32, usize)]| {
            let mut a = arenas.clone();
            for &(off, n) in outputs {
                a.work[off as usize..off as usize + n].fill(f32::NAN);
            }
            block_on(run_layer_kernels(gpu, kernels, meta, rows as u32, &mut a)).unwrap();
            for (i, (&got, &was)) in a.work.iter().zip(&work).enumerate() {
                let written = outputs.iter().any(|&(off, n)| (off as usize..off as usize + n).contains(&i));
                assert!(written || got.to_bits() == was.to_bits(), "{kernels:?}: stray write at work[{i}]");
            }
            a
        };
        // a tile kernel after its pass's packing kernel, which may write only the packed copies
        let run = |(pack_kernel, pack_items): (Kernel, usize),
                   kernel,
                   meta: &LayerMeta,
                   items: usize,
                   outputs: &[(u32, usize)]| {
            let outputs: Vec<(u32, usize)> = outputs.iter().copied().chain([packed]).collect();
            run_all(&[(pack_kernel, pack_items as u32), (kernel, items as u32)], meta, &outputs)
        };
        let (fwd_w, fwd_wz) = ((conv::kernels::ConvPackFwd, pack.forward), (conv::kernels::ConvPackFwdZ, pack.forward));
        let (in_w, in_wz) = ((conv::kernels::ConvPackBwd, pack.input), (conv::kernels::ConvPackBwdZ, pack.input));
        // the weight-gradient kernels with `split_len` pixels per split, then their reduction;
        // only the partials' scratch and the packed g_y may change in work
        let param_tiles =
            g.c_out.div_ceil(conv::CHANNEL_TILE) * (g.c_in * g.k_h * g.k_w + 1).div_ceil(conv::WEIGHT_TAP_TILE);
        let split_runs = [pixels, 1, 5, pixels / 3 + 1];
        // (by row windows, for 3-wide kernels of column stride 1: 8 channels × 3 groups of the
        // three taps of one kernel row, the bias column a group of its own)
        let row_param_tiles = g.c_out.div_ceil(conv::CHANNEL_TILE) * (g.c_in * g.k_h + 1).div_ceil(3);
        let run_split =
            |pack_kernel, (kernel, param_tiles): (Kernel, usize), reduce, meta: &LayerMeta, split_len: usize| {
                let splits = pixels.div_ceil(split_len);
                let mut meta = *meta;
                meta.split_len = split_len as u32;
                meta.aux_off = len as u32;
                meta.aux_r_off = (len + splits * p) as u32;
                let pack_items = (rows * pack.cotangents_per_row) as u32;
                let items = [(pack_kernel, pack_items), (kernel, (param_tiles * splits) as u32), (reduce, p as u32)];
                run_all(&items, &meta, &[(meta.aux_off, splits * p), (meta.aux_r_off, splits * p), packed])
            };
        let out_tiles = g.c_out.div_ceil(conv::CHANNEL_TILE) * (rows * g.h_out * g.w_out).div_ceil(conv::PIXEL_TILE);
        let in_tiles = g.input_cotangent_tiles(rows);
        let tag = format!("tiled conv rows {rows} {input:?}->{out} k{kernel:?} s{stride:?} p{padding:?}");
        let tol = Tolerance::F32_KERNEL;
        let y = conv::fwd(&g, rows, &w, &b, &x);
        let a = run(fwd_w, conv::kernels::ConvFwdTiled, &meta, out_tiles, &[(meta.y_off, ny)]);
        tol.check(&format!("{tag} fwd"), part(&a.work, meta.y_off, ny), &y);
        // kernels 3 wide with a column stride of 1 also run by row windows: forward tiles of 8
        // channels × 8 columns of an output row, the row's last tile partial where w_out is no
        // multiple of 8 (the input cotangents' tiles are the pixel tiles' at stride 1)
        let by_rows = kernel.1 == 3 && stride.1 == 1;
        assert_eq!(g.by_row_windows(), by_rows);
        let row_tiles = g.c_out.div_ceil(conv::CHANNEL_TILE) * rows * g.h_out * g.w_out.div_ceil(conv::PIXEL_TILE);
        if by_rows {
            let a = run(fwd_w, conv::kernels::ConvFwdRowsTiled, &meta, row_tiles, &[(meta.y_off, ny)]);
            tol.check(&format!("{tag} fwd by rows"), part(&a.work, meta.y_off, ny), &y);
        }
        let (gw, gb, gx) = conv::bwd(&g, rows, &w, &x, &g_y);
        let weight_kernels = |tap_tiles, rows_kernel| {
            let mut k = vec![(tap_tiles, param_tiles, "")];
            if by_rows {
                k.push((rows_kernel, row_param_tiles, " by rows"));
            }
            k
        };
        for (kernel, tiles, how) in weight_kernels(conv::kernels::ConvBwdWTiled, conv::kernels::ConvBwdWRowsTiled) {
            for split_len in split_runs {
                let a = run_split(
                    conv::kernels::ConvPackDy,
                    (kernel, tiles),
                    conv::kernels::ConvBwdWReduce,
                    &meta,
                    split_len,
                );
                tol.check(&format!("{tag} bwd W{how} (splits of {split_len})"), &a.g_theta[..wl], &gw);
                tol.check(&format!("{tag} bwd b{how} (splits of {split_len})"), &a.g_theta[wl..], &gb);
            }
        }
        let a = run(in_w, conv::kernels::ConvBwdXTiled, &meta, in_tiles, &[(meta.g_x_off, nx)]);
        tol.check(&format!("{tag} bwd x"), part(&a.work, meta.g_x_off, nx), &gx);
        if by_rows {
            let a = run(in_w, conv::kernels::ConvBwdXRowsTiled, &meta, in_tiles, &[(meta.g_x_off, nx)]);
            tol.check(&format!("{tag} bwd x by rows"), part(&a.work, meta.g_x_off, nx), &gx);
        }
        for has_t in [false, true] {
            meta.flags = if has_t { FLAG_INPUT_HAS_TANGENT } else { 0 };
            let t_in = has_t.then_some(t_x.as_slice());
            let tag = format!("{tag} (t_x: {has_t})");
            let a = run(
                fwd_wz,
                conv::kernels::ConvFwdTangentTiled,
                &meta,
                out_tiles,
                &[(meta.y_off, ny), (meta.t_y_off, ny)],
            );
            let t_y = conv::tangent(&g, rows, &w, &zw, &zb, &x, t_in);
            tol.check(&format!("{tag} fused fwd"), part(&a.work, meta.y_off, ny), &y);
            tol.check(&format!("{tag} fused tangent"), part(&a.work, meta.t_y_off, ny), &t_y);
            if by_rows {
                let outputs = [(meta.y_off, ny), (meta.t_y_off, ny)];
                let a = run(fwd_wz, conv::kernels::ConvFwdTangentRowsTiled, &meta, row_tiles, &outputs);
                tol.check(&format!("{tag} fused fwd by rows"), part(&a.work, meta.y_off, ny), &y);
                tol.check(&format!("{tag} fused tangent by rows"), part(&a.work, meta.t_y_off, ny), &t_y);
            }
            let (rw, rb, rx) = conv::rbwd(&g, rows, &w, &zw, &x, t_in, &g_y, &r_y);
            for (kernel, tiles, how) in
                weight_kernels(conv::kernels::ConvBwdRbwdWTiled, conv::kernels::ConvBwdRbwdWRowsTiled)
            {
                for split_len in split_runs {
                    let reduce = conv::kernels::ConvBwdRbwdWReduce;
                    let a = run_split(conv::kernels::ConvPackDy, (kernel, tiles), reduce, &meta, split_len);
                    let tag = format!("{tag}{how} (splits of {split_len})");
                    tol.check(&format!("{tag} fused bwd W"), &a.g_theta[..wl], &gw);
                    tol.check(&format!("{tag} fused bwd b"), &a.g_theta[wl..], &gb);
                    tol.check(&format!("{tag} fused rbwd W"), &a.r_theta[..wl], &rw);
                    tol.check(&format!("{tag} fused rbwd b"), &a.r_theta[wl..], &rb);
                }
            }
            let a = run(
                in_wz,
                conv::kernels::ConvBwdRbwdXTiled,
                &meta,
                in_tiles,
                &[(meta.g_x_off, nx), (meta.r_x_off, nx)],
            );
            tol.check(&format!("{tag} fused bwd x"), part(&a.work, meta.g_x_off, nx), &gx);
            tol.check(&format!("{tag} fused rbwd x"), part(&a.work, meta.r_x_off, nx), &rx);
            if by_rows {
                let outputs = [(meta.g_x_off, nx), (meta.r_x_off, nx)];
                let a = run(in_wz, conv::kernels::ConvBwdRbwdXRowsTiled, &meta, in_tiles, &outputs);
                tol.check(&format!("{tag} fused bwd x by rows"), part(&a.work, meta.g_x_off, nx), &gx);
                tol.check(&format!("{tag} fused rbwd x by rows"), part(&a.work, meta.r_x_off, nx), &rx);
            }
        }
    }
}

#[test]
fn pooling_kernels_match_reference() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(2);
    let cases = [
        (1, [1, 4, 4], (2, 2), (2, 2)),
        (2, [3, 7, 7], (3, 3), (2, 2)), // overlapping windows
        (3, [2, 5, 9], (2, 3), (1, 2)),
        (1, [2, 6, 5], (6, 5), (6, 5)),  // global
        (2, [2, 7, 8], (2, 2), (3, 3)),  // stride > kernel: uncovered inputs, floor-mode leftovers
        (1, [1, 9, 10], (3, 4), (2, 1)), // overlapping in both directions, rectangular
        (3, [3, 6, 8], (2, 2), (2, 2)),  // windows tiling the plane
        (2, [2, 6, 6], (3, 2), (3, 2)),  // rectangular windows tiling the plane
    ];
    let mut tiling_cases = 0;
    for (rows, input, kernel, stride) in cases {
        for max in [true, false] {
            let layer = if max { Layer::MaxPool2d { kernel, stride } } else { Layer::AvgPool2d { kernel, stride } };
            let g = geometry(input, layer);
            let (meta, len) = meta_for(&g, rows);
            let mut work = uniform(&mut rng, len, -2.0, 2.0);
            // ties: the first maximum in row-major window order wins, on both sides
            work[1] = work[0];
            let (nx, ny) = (rows * g.in_len(), rows * g.out_len());
            let x = to_f64(part(&work, meta.x_off, nx));
            let t_x = to_f64(part(&work, meta.t_x_off, nx));
            let g_y = to_f64(part(&work, meta.g_y_off, ny));
            let r_y = to_f64(part(&work, meta.r_y_off, ny));
            let arenas = LayerArenas {
                theta: vec![0.0],
                z: vec![0.0],
                g_theta: vec![0.0],
                r_theta: vec![0.0],
                work,
                stats: vec![0.0; 8],
            };
            let [fwd, tangent, bwd, rbwd, bwd_rbwd] = if max {
                [
                    pool::kernels::MaxpoolFwd,
                    pool::kernels::MaxpoolTangent,
                    pool::kernels::MaxpoolBwd,
                    pool::kernels::MaxpoolRbwd,
                    pool::kernels::MaxpoolBwdRbwd,
                ]
            } else {
                [
                    pool::kernels::AvgpoolFwd,
                    pool::kernels::AvgpoolTangent,
                    pool::kernels::AvgpoolBwd,
                    pool::kernels::AvgpoolRbwd,
                    pool::kernels::AvgpoolBwdRbwd,
                ]
            };
            let tag =
                format!("{} rows {rows} {input:?} k{kernel:?} s{stride:?}", if max { "maxpool" } else { "avgpool" });
            let tol = Tolerance::F32_KERNEL;
            let mut a = arenas.clone();
            block_on(run_layer_kernel(gpu, fwd, &meta, rows as u32, ny as u32, &mut a)).unwrap();
            let after_fwd = a.clone();
            let run = |kernel, items: usize| {
                let mut b = after_fwd.clone();
                block_on(run_layer_kernel(gpu, kernel, &meta, rows as u32, items as u32, &mut b)).unwrap();
                b.work
            };
            let (want_y, want_t, want_g, want_r) = if max {
                let arg = pool::argmax(&g, rows, &x);
                (
                    pool::max_gather(&arg, &x),
                    pool::max_gather(&arg, &t_x),
                    pool::max_scatter(&arg, &g_y, nx),
                    pool::max_scatter(&arg, &r_y, nx),
                )
            } else {
                (
                    pool::avg_fwd(&g, rows, &x),
                    pool::avg_fwd(&g, rows, &t_x),
                    pool::avg_bwd(&g, rows, &g_y),
                    pool::avg_bwd(&g, rows, &r_y),
                )
            };
            tol.check(&format!("{tag} fwd"), part(&a.work, meta.y_off, ny), &want_y);
            let fwd_tangent = if max { pool::kernels::MaxpoolFwdTangent } else { pool::kernels::AvgpoolFwdTangent };
            let mut b = arenas.clone();
            block_on(run_layer_kernel(gpu, fwd_tangent, &meta, rows as u32, ny as u32, &mut b)).unwrap();
            tol.check(&format!("{tag} fused fwd"), part(&b.work, meta.y_off, ny), &want_y);
            tol.check(&format!("{tag} fused tangent"), part(&b.work, meta.t_y_off, ny), &want_t);
            if max {
                let arg_of = |w: &[f32]| part(w, meta.aux_off, ny).to_vec();
                assert_eq!(arg_of(&b.work), arg_of(&a.work), "{tag}: the fused kernel's argmax");
            }
            tol.check(&format!("{tag} tangent"), part(&run(tangent, ny), meta.t_y_off, ny), &want_t);
            tol.check(&format!("{tag} bwd"), part(&run(bwd, nx), meta.g_x_off, nx), &want_g);
            tol.check(&format!("{tag} rbwd"), part(&run(rbwd, nx), meta.r_x_off, nx), &want_r);
            let both = run(bwd_rbwd, nx);
            tol.check(&format!("{tag} fused bwd"), part(&both, meta.g_x_off, nx), &want_g);
            tol.check(&format!("{tag} fused rbwd"), part(&both, meta.r_x_off, nx), &want_r);
            // windows that tile the input: one invocation per window writes each input once
            // (NaN beforehand, so a missed input fails)
            if g.stride_h == g.k_h && g.stride_w == g.k_w && g.h_in == g.h_out * g.k_h && g.w_in == g.w_out * g.k_w {
                let kernels = if max {
                    [pool::kernels::MaxpoolTilingBwd, pool::kernels::MaxpoolTilingBwdRbwd]
                } else {
                    [pool::kernels::AvgpoolTilingBwd, pool::kernels::AvgpoolTilingBwdRbwd]
                };
                for (kernel, with_r) in kernels.into_iter().zip([false, true]) {
                    let mut b = after_fwd.clone();
                    b.work[meta.g_x_off as usize..][..nx].fill(f32::NAN);
                    b.work[meta.r_x_off as usize..][..nx].fill(f32::NAN);
                    block_on(run_layer_kernel(gpu, kernel, &meta, rows as u32, ny as u32, &mut b)).unwrap();
                    tol.check(&format!("{tag} {kernel:?} bwd"), part(&b.work, meta.g_x_off, nx), &want_g);
                    if with_r {
                        tol.check(&format!("{tag} {kernel:?} rbwd"), part(&b.work, meta.r_x_off, nx), &want_r);
                    } else {
                        assert!(part(&b.work, meta.r_x_off, nx).iter().all(|v| v.is_nan()), "{tag}: r_x written");
                    }
                }
                tiling_cases += 1;
            }
        }
    }
    assert_eq!(tiling_cases, 2 * 4, "the window-tiling kernels ran on every tiling geometry");
}

/// Small CNNs over every layer type; smooth activations so finite differences are meaningful.
fn cnn_specs() -> Vec<ModelSpec> {
    use Layer::*;
    vec![
        ModelSpec {
            input: vec![1, 6, 6],
            layers: vec![
                Conv2d { out: 3, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
                Activation(adahessian_wgpu::nn::Activation::Tanh),
                MaxPool2d { kernel: (2, 2), stride: (2, 2) },
                Conv2d { out: 2, kernel: (2, 2), stride: (1, 1), padding: (0, 0), bias: true },
                Activation(adahessian_wgpu::nn::Activation::Softplus),
                Flatten,
                Dense { out: 3, bias: true },
            ],
            loss: Loss::CrossEntropy,
            naming: adahessian_wgpu::nn::Naming::Sequential,
        },
        ModelSpec {
            input: vec![2, 7, 5],
            layers: vec![
                Conv2d { out: 3, kernel: (4, 3), stride: (2, 1), padding: (1, 0), bias: true },
                Activation(adahessian_wgpu::nn::Activation::Gelu),
                AvgPool2d { kernel: (2, 2), stride: (1, 1) },
                Conv2d { out: 4, kernel: (1, 1), stride: (1, 1), padding: (0, 0), bias: true },
                Activation(adahessian_wgpu::nn::Activation::Sigmoid),
                GlobalAvgPool,
                Flatten,
                Dense { out: 2, bias: true },
            ],
            loss: Loss::Mse,
            naming: adahessian_wgpu::nn::Naming::Sequential,
        },
    ]
}

#[test]
fn reference_cnn_gradient_and_hvp_match_finite_differences() {
    let mut rng = SplitMix64::new(3);
    for (i, spec) in cnn_specs().into_iter().enumerate() {
        let model = spec.resolve().unwrap();
        let theta = to_f64(&spec.init_params(i as u64).unwrap());
        let ds = random_data(&model, 3, 10 + i as u64);
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let g = reference::gradient(&model, &theta, &x, &t, 3);
        let fd = reference::fd_gradient(&model, &theta, &x, &t, 3, 1e-6);
        Tolerance { atol: 1e-7, rtol: 1e-5 }.check(&format!("cnn {i} gradient vs FD"), &g, &fd);
        let z = to_f64(&uniform(&mut rng, model.n_params, -1.0, 1.0));
        let hz = reference::hvp(&model, &theta, &x, &t, 3, &z);
        let fd_hz = reference::fd_hvp(&model, &theta, &x, &t, 3, &z, 1e-5);
        Tolerance { atol: 1e-6, rtol: 1e-5 }.check(&format!("cnn {i} Hz vs FD"), &hz, &fd_hz);
    }
}

/// A ReLU CNN: ReLU before max pooling, before a conv and before a dense layer (folded into its
/// tiled kernels), so the tangents the R-backward pass does not read (ReLU's and pooling's
/// inputs) live in the R-cotangent region (`nn::plan::ArenaLayout`).
fn relu_cnn() -> ModelSpec {
    use adahessian_wgpu::nn::Activation::Relu;
    use Layer::*;
    ModelSpec {
        input: vec![2, 6, 6],
        layers: vec![
            Conv2d { out: 3, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(Relu),
            MaxPool2d { kernel: (2, 2), stride: (2, 2) },
            Conv2d { out: 4, kernel: (2, 2), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(Relu),
            Flatten,
            Dense { out: 5, bias: true },
            Activation(Relu),
            Dense { out: 3, bias: true },
        ],
        loss: Loss::CrossEntropy,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    }
}

#[test]
fn a_relu_cnn_keeps_only_the_tangents_the_r_backward_pass_reads() {
    let gpu = gpu_or_skip!();
    let spec = relu_cnn();
    let model = spec.resolve().unwrap();
    let rows = 4;
    let net = Network::new(gpu, &spec, NetworkOptions::new(rows, 0)).unwrap();
    let m = net.memory();
    // nodes: data 2·36, conv 3·36, relu 3·36, pool 3·9, conv 4·16, relu 4·16, dense 5, relu 5, logits 3
    assert_eq!(model.nodes, vec![72, 108, 108, 27, 64, 64, 5, 5, 3]);
    // own tangent slots: the inputs of a conv, a dense layer or the loss (ReLU's and pooling's
    // inputs are not read by the R-backward pass)
    assert_eq!(m.tangents, 4 * rows as u64 * (27 + 64 + 5 + 3), "{m:?}");
    let lean = Network::new(gpu, &spec, NetworkOptions { curvature: false, ..NetworkOptions::new(rows, 0) }).unwrap();
    let all: u64 = model.nodes[1..].iter().map(|&w| 4 * (w * rows) as u64).sum();
    assert_eq!(lean.memory().cotangents, all, "cotangents of every node but the data's");
    assert!(m.cotangents < 2 * all, "the R-cotangents share a region: {m:?}");
}

#[test]
fn gpu_cnn_gradient_and_hvp_match_reference_and_are_symmetric() {
    let gpu = gpu_or_skip!();
    let mut rng = SplitMix64::new(4);
    for (i, spec) in cnn_specs().into_iter().chain([relu_cnn()]).enumerate() {
        for (rows, kernels) in [
            (1usize, KernelSet::Naive),
            (5, KernelSet::Naive),
            (1, KernelSet::Tiled),
            (5, KernelSet::Tiled),
            (5, KernelSet::Shared),
        ] {
            let p = problem_with(gpu, spec.clone(), rows, 20 + i as u64, kernels);
            let indices: Vec<u32> = (0..rows as u32).collect();
            let batch = Batch { data: &p.data, indices: &indices };
            let i = format!("{i} ({kernels:?} kernels)");
            let (z32, hz) = check_gradient_and_hvp(gpu, &p, &mut rng, &format!("cnn {i} rows {rows}"));
            let u32_ = uniform(&mut rng, p.model.n_params, -1.0, 1.0);
            let hu = to_f64(&block_on(p.net.hvp(gpu, &batch, &u32_)).unwrap());
            let (a, b) = (dot(&to_f64(&u32_), &to_f64(&hz)), dot(&to_f64(&z32), &hu));
            Tolerance::SYMMETRY.check_pair(&format!("cnn {i}: ⟨u, Hz⟩ vs ⟨z, Hu⟩"), a, b);
        }
    }
}

/// The choices made for GPUs (`AdapterClass::Discrete`'s tuning: the fused dense forward +
/// tangent kernel, conv weight gradients split for many more invocations, the naive set's
/// workgroup-per-weight reductions), run on this adapter whatever it is: the same gradient and H·z
/// as the f64 reference. A GPU-only path cannot go unchecked where only a CPU adapter exists.
#[test]
fn the_kernel_choices_for_gpus_match_the_reference_on_any_adapter() {
    use adahessian_wgpu::gpu::{AdapterClass, Gpu, GpuOptions};
    gpu_or_skip!();
    let options = GpuOptions { tune_as: Some(AdapterClass::Discrete), ..GpuOptions::from_env().unwrap() };
    let gpu = &Gpu::new_blocking(options).unwrap();
    let tuning = adahessian_wgpu::nn::KernelTuning::for_class(gpu.adapter_class());
    assert!(tuning.fuse_dense_forward_tangent && tuning.workgroup_reductions);
    let mut rng = SplitMix64::new(9);
    let mlp = ModelSpec::mlp(&[6, 9, 7, 3], adahessian_wgpu::nn::Activation::Tanh, Loss::CrossEntropy);
    // 8 rows of a 6 × 6 plane: a 288-pixel reduction, long enough for the workgroup reductions
    let rows = 8;
    for (i, spec) in cnn_specs().into_iter().chain([relu_cnn(), mlp]).enumerate() {
        for kernels in [KernelSet::Naive, KernelSet::Tiled, KernelSet::Shared] {
            let p = problem_with(gpu, spec.clone(), rows, 40 + i as u64, kernels);
            check_gradient_and_hvp(
                gpu,
                &p,
                &mut rng,
                &format!("model {i}, {kernels:?} kernels tuned for discrete GPUs"),
            );
        }
    }
}

/// The network's loss, gradient and H·z (a random z) on all of its rows against the f64
/// reference; returns z and H z.
fn check_gradient_and_hvp(
    gpu: &adahessian_wgpu::gpu::Gpu,
    p: &common::Problem,
    rng: &mut SplitMix64,
    tag: &str,
) -> (Vec<f32>, Vec<f32>) {
    let theta = to_f64(&block_on(p.net.params(gpu)).unwrap());
    let indices: Vec<u32> = (0..p.rows as u32).collect();
    let batch = Batch { data: &p.data, indices: &indices };
    let z32 = uniform(rng, p.model.n_params, -1.0, 1.0);
    let want = reference::pass(&p.model, &theta, &p.x, &p.t, p.rows, Some(&to_f64(&z32)));
    let (loss, g) = block_on(p.net.gradient(gpu, &batch)).unwrap();
    Tolerance::F32_MODEL.check(&format!("{tag}: loss"), &[loss], &[want.loss]);
    Tolerance::F32_MODEL.check(&format!("{tag}: gradient"), &g, &want.grad);
    let hz = block_on(p.net.hvp(gpu, &batch, &z32)).unwrap();
    Tolerance::F32_MODEL.check(&format!("{tag}: Hz"), &hz, want.hz.as_ref().unwrap());
    (z32, hz)
}

#[test]
fn adahessian_spatial_averaging_matches_the_official_rule() {
    let gpu = gpu_or_skip!();
    // (offset, length, group length) of the averaged tensors, worked out by hand from the layouts:
    // spec 0: conv W [3,1,3,3] at 0, b at 27; conv W [2,3,2,2] at 30, b at 54; dense W [3,8] at 56
    // spec 1: conv W [3,2,4,3] at 0, b at 72; 1×1 conv W [4,3,1,1] at 75 (not averaged), b at 87;
    //         dense W [2,4] at 91
    type Groups = Vec<(usize, usize, usize)>;
    let by_hand: [(Groups, Groups); 2] = [
        (vec![(0, 27, 9), (30, 24, 4)], vec![(0, 27, 9), (30, 24, 4), (56, 24, 8)]),
        (vec![(0, 72, 12)], vec![(0, 72, 12), (91, 8, 4)]),
    ];
    for (spec, (conv_groups, with_dense)) in cnn_specs().into_iter().zip(by_hand) {
        let p = problem(gpu, spec.clone(), 4, 30);
        let base = AdaHessianConfig { lr: 0.05, seed: 3, ..Default::default() };
        assert_eq!(base.averaging_groups(&p.model), conv_groups, "conv windows");
        assert_eq!(AdaHessianConfig { average_dense: true, ..base }.averaging_groups(&p.model), with_dense);
        assert_eq!(AdaHessianConfig { average_conv: false, ..base }.averaging_groups(&p.model), vec![]);
        for c in
            [base, AdaHessianConfig { average_conv: false, ..base }, AdaHessianConfig { average_dense: true, ..base }]
        {
            p.net.set_params(gpu, &spec.init_params(30).unwrap()).unwrap();
            compare(gpu, &p, OptimizerConfig::AdaHessian(c), 4);
        }
    }
}

/// The digits CNN of the test suite, examples and README.
pub fn digits_cnn() -> ModelSpec {
    use Layer::*;
    ModelSpec {
        input: vec![1, 8, 8],
        layers: vec![
            Conv2d { out: 16, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(adahessian_wgpu::nn::Activation::Relu),
            MaxPool2d { kernel: (2, 2), stride: (2, 2) },
            Conv2d { out: 32, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Activation(adahessian_wgpu::nn::Activation::Relu),
            MaxPool2d { kernel: (2, 2), stride: (2, 2) },
            Flatten,
            Dense { out: 10, bias: true },
        ],
        loss: Loss::CrossEntropy,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    }
}

#[test]
fn a_small_cnn_reaches_97_percent_on_digits_with_adahessian() {
    let gpu = gpu_or_skip!();
    let (train_set, test_set) = data::digits().unwrap().split(0.2, 0).unwrap();
    let net = Network::new(gpu, &digits_cnn(), NetworkOptions::new(32, 0)).unwrap();
    let train_data = net.bind(gpu, &DeviceDataset::upload(gpu, &train_set).unwrap()).unwrap();
    let test_data = net.bind(gpu, &DeviceDataset::upload(gpu, &test_set).unwrap()).unwrap();
    let mut opt = Optimizer::new(gpu, &net, OptimizerConfig::AdaHessian(AdaHessianConfig::default())).unwrap();
    let mut order = train::BatchOrder::new(train_data.rows, 32, 0);
    let start = std::time::Instant::now();
    // 15 epochs: at 10, the test accuracy over probe seeds 0..5 spread from 0.953 to 0.986 (both
    // probe hashes), too close to the bar for one seed; at 15 it is 0.969 to 0.992 (0.981 for seed 0)
    for _ in 0..15 {
        train::run_epoch(gpu, &net, &mut opt, &train_data, &mut order).unwrap();
    }
    let test = block_on(net.evaluate(gpu, &test_data)).unwrap();
    eprintln!("digits CNN, AdaHessian: test accuracy {:.4} ({:.1}s)", test.accuracy, start.elapsed().as_secs_f64());
    assert!(test.accuracy >= 0.97, "test accuracy {}", test.accuracy);
}
