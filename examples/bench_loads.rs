//! What one storage load costs on this adapter, by kind: a scalar f32, four scalars, one vec4
//! (the question behind the packed conv weights, shaders/conv_tiled.wgsl). Each of 65,536
//! invocations walks 512 lane-varying addresses of a 4 MiB buffer and sums what it loads; a
//! kernel with the same loop and no load is the baseline. On CPU adapters (lavapipe,
//! SwiftShader) a load whose address differs between lanes is a loop over the lanes, so a vec4
//! costs far less than four scalars; on a GPU all of these are cheap. The best of 4 runs per
//! kernel, twice over. A benchmark, never a test.
//!
//! cargo run --release --example bench_loads

use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use std::time::Instant;
use wgpu::util::DeviceExt;

const KERNELS: &str = r#"
@group(0) @binding(0) var<storage, read> scalars: array<f32>;
@group(0) @binding(1) var<storage, read> quads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
const MASK: u32 = 0xFFFFCu;   // 2^20 floats, 4-aligned
const STEP: u32 = 16396u;     // lane-varying, never the same line twice in a row
const ITERS: u32 = 512u;

@compute @workgroup_size(64)
fn no_load(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = 0.0;
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += f32(at & MASK); at += STEP; }
    out[g.x] = acc + scalars[0] + quads[0].x;
}
@compute @workgroup_size(64)
fn one_scalar(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = 0.0;
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += scalars[at & MASK]; at += STEP; }
    out[g.x] = acc + quads[0].x;
}
@compute @workgroup_size(64)
fn four_scalars(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = vec4<f32>();
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) {
        let j = at & MASK;
        acc += vec4<f32>(scalars[j], scalars[j + 1u], scalars[j + 2u], scalars[j + 3u]);
        at += STEP;
    }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + quads[0].x;
}
@compute @workgroup_size(64)
fn one_vec4(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = vec4<f32>();
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += quads[(at & MASK) / 4u]; at += STEP; }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + scalars[0];
}
"#;

const INVOCATIONS: u32 = 65_536;
const ITERS: f64 = 512.0;

fn main() -> anyhow::Result<()> {
    let gpu = Gpu::new_blocking(GpuOptions::default())?;
    println!("adapter: {}", gpu.describe());
    let device = &gpu.device;
    let values: Vec<f32> = (0..1u32 << 20).map(|i| (i % 7) as f32).collect();
    let input = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("loads"),
        contents: bytemuck::cast_slice(&values),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("sums"),
        size: INVOCATIONS as u64 * 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("bench_loads"),
        source: wgpu::ShaderSource::Wgsl(KERNELS.into()),
    });
    let mut baseline = 0.0;
    for round in 1..=2 {
        for name in ["no_load", "one_scalar", "four_scalars", "one_vec4"] {
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some(name),
                compilation_options: Default::default(),
                cache: None,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(name),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: input.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: input.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: out.as_entire_binding() },
                ],
            });
            let mut best = f64::MAX;
            for _ in 0..4 {
                let mut encoder = device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&pipeline);
                    pass.set_bind_group(0, &bind_group, &[]);
                    pass.dispatch_workgroups(INVOCATIONS / 64, 1, 1);
                }
                let start = Instant::now();
                gpu.queue.submit([encoder.finish()]);
                device.poll(wgpu::PollType::wait_indefinitely())?;
                best = best.min(start.elapsed().as_secs_f64());
            }
            let per_iter_ns = best * 1e9 / (INVOCATIONS as f64 * ITERS);
            if name == "no_load" {
                baseline = per_iter_ns;
            }
            println!(
                "round {round}  {name:<13} {:>7.1} ms   {per_iter_ns:.2} ns per invocation and iteration ({:+.2} over no load)",
                best * 1e3,
                per_iter_ns - baseline
            );
        }
    }
    Ok(())
}
