//! What one storage load costs on this adapter, by kind: a scalar f32, four scalars, one vec4
//! (the question behind the packed conv weights, shaders/conv_tiled.wgsl); and, for comparison,
//! a vec4 from a uniform buffer and from a texture, and vec4s whose address all the lanes of a
//! workgroup share (whether the adapter has a fast path for them). Each of 65,536
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
@group(0) @binding(3) var<uniform> ubo: array<vec4<f32>, 4096>;
@group(0) @binding(4) var tex: texture_2d<f32>;
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
@compute @workgroup_size(64)
fn ubo_vec4(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = vec4<f32>();
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += ubo[((at & MASK) / 4u) & 4095u]; at += STEP; }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + scalars[0] + quads[0].x;
}
@compute @workgroup_size(64)
fn ubo_shared_vec4(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    var acc = vec4<f32>();
    var at = w.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += ubo[((at & MASK) / 4u) & 4095u]; at += STEP; }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + scalars[0] + quads[0].x + f32(g.x);
}
@compute @workgroup_size(64)
fn storage_shared_vec4(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    var acc = vec4<f32>();
    var at = w.x * 4u;
    for (var i = 0u; i < ITERS; i++) { acc += quads[(at & MASK) / 4u]; at += STEP; }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + scalars[0] + f32(g.x);
}
@compute @workgroup_size(64)
fn texture_vec4(@builtin(global_invocation_id) g: vec3<u32>) {
    var acc = vec4<f32>();
    var at = g.x * 4u;
    for (var i = 0u; i < ITERS; i++) {
        let j = (at & MASK) / 4u;
        acc += textureLoad(tex, vec2<u32>(j & 511u, j >> 9u), 0);
        at += STEP;
    }
    out[g.x] = acc.x + acc.y + acc.z + acc.w + scalars[0] + quads[0].x;
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
    // the first 64 KiB of the same values as a uniform buffer and all of them as a 512 × 512
    // RGBA32 texture
    let ubo = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("loads (uniform)"),
        contents: bytemuck::cast_slice(&values[..16384]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let texture = device.create_texture_with_data(
        &gpu.queue,
        &wgpu::TextureDescriptor {
            label: Some("loads (texture)"),
            size: wgpu::Extent3d { width: 512, height: 512, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        },
        wgpu::util::TextureDataOrder::LayerMajor,
        bytemuck::cast_slice(&values),
    );
    let view = texture.create_view(&Default::default());
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
        for name in [
            "no_load",
            "one_scalar",
            "four_scalars",
            "one_vec4",
            "ubo_vec4",
            "ubo_shared_vec4",
            "storage_shared_vec4",
            "texture_vec4",
        ] {
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
                // (the layout is the entry point's own: only the bindings it reads)
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: input.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: input.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: out.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: ubo.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::TextureView(&view) },
                ]
                .into_iter()
                .filter(|e| match e.binding {
                    3 => name.starts_with("ubo"),
                    4 => name.starts_with("texture"),
                    _ => true,
                })
                .collect::<Vec<_>>(),
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
