// Loss-landscape support (`BindLayout::Axpy`): θ = θ₀ + a·d₁ + b·d₂, built on the GPU for each
// grid point so a whole grid is one command buffer with no uploads between points.

struct PointMeta {
    a: f32, b: f32, n: u32, _pad: u32,
};

@group(0) @binding(0) var<uniform> point: PointMeta;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read> d1: array<f32>;
@group(0) @binding(4) var<storage, read> d2: array<f32>;

// θ[i] = θ₀[i] + a d₁[i] + b d₂[i]
@compute @workgroup_size(256)
fn landscape_point(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = item_index(gid, nwg);
    if (i >= point.n) { return; }
    theta[i] = base[i] + point.a * d1[i] + point.b * d2[i];
}
