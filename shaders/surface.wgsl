// Two-dimensional test surfaces for the optimizer race (`BindLayout::Layer`, one point θ = (x, y)
// in theta[0..2]): value, gradient and the analytic 2×2 Hessian, so H z is exact.
//   surface_fwd      work[0] = f(θ); stats[LOSS] = f, stats[HITS] = 0
//   surface_tangent  work[1] = ∇f · z
//   surface_bwd      g_theta = ∇f
//   surface_rbwd     r_theta = H z
// src/surface.rs holds the f64 reference of each, tested against finite differences.

struct SurfaceMeta {
    kind: u32, _p0: u32, _p1: u32, _p2: u32,
    condition: f32, angle: f32, _p3: f32, _p4: f32,
};

@group(0) @binding(0) var<storage, read> surf: SurfaceMeta;
@group(0) @binding(1) var<uniform> batch: BatchMeta;
@group(0) @binding(2) var<storage, read> theta: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_theta: array<f32>;
@group(0) @binding(5) var<storage, read_write> r_theta: array<f32>;
@group(0) @binding(6) var<storage, read_write> work: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
// the layer layout's second window of the arena (layer_bindings.wgsl); a surface has no scratch
@group(0) @binding(8) var<storage, read_write> side: array<f32>;

const ROSENBROCK: u32 = 0u;
const BEALE: u32 = 1u;
const HIMMELBLAU: u32 = 2u;
const QUADRATIC: u32 = 3u;
const SADDLE: u32 = 4u;
const RASTRIGIN: u32 = 5u;
const TAU: f32 = 6.283185307179586;

// value, gradient (x, y) and Hessian (xx, xy, yy) at p
struct Taylor { f: f32, g: vec2<f32>, h: vec3<f32>, };

fn quadratic_h() -> vec3<f32> {
    // H = R diag(1, κ) Rᵀ with R the rotation by `angle`
    let c = cos(surf.angle);
    let s = sin(surf.angle);
    let k = surf.condition;
    return vec3<f32>(c * c + k * s * s, (1.0 - k) * c * s, s * s + k * c * c);
}

fn taylor(p: vec2<f32>) -> Taylor {
    let x = p.x;
    let y = p.y;
    switch surf.kind {
        case 0u: { // Rosenbrock (1 − x)² + 100 (y − x²)²
            let r = y - x * x;
            return Taylor((1.0 - x) * (1.0 - x) + 100.0 * r * r,
                vec2<f32>(-2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r),
                vec3<f32>(2.0 - 400.0 * r + 800.0 * x * x, -400.0 * x, 200.0));
        }
        case 1u: { // Beale Σ_i (c_i − x + x yⁱ)², c = (1.5, 2.25, 2.625)
            var f = 0.0;
            var g = vec2<f32>(0.0);
            var h = vec3<f32>(0.0);
            let c = array<f32, 3>(1.5, 2.25, 2.625);
            // powers by multiplication: pow() is undefined for negative bases in WGSL
            let yp = array<f32, 4>(1.0, y, y * y, y * y * y);
            for (var i = 1u; i <= 3u; i++) {
                let n = f32(i);
                let t = c[i - 1u] - x + x * yp[i];
                let tx = yp[i] - 1.0;
                let ty = x * n * yp[i - 1u];
                let txy = n * yp[i - 1u];
                let tyy = select(x * n * (n - 1.0) * yp[max(i, 2u) - 2u], 0.0, i == 1u);
                f += t * t;
                g += 2.0 * t * vec2<f32>(tx, ty);
                h += 2.0 * vec3<f32>(tx * tx, tx * ty + t * txy, ty * ty + t * tyy);
            }
            return Taylor(f, g, h);
        }
        case 2u: { // Himmelblau (x² + y − 11)² + (x + y² − 7)²
            let a = x * x + y - 11.0;
            let b = x + y * y - 7.0;
            return Taylor(a * a + b * b,
                vec2<f32>(4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b),
                vec3<f32>(12.0 * x * x + 4.0 * y - 42.0, 4.0 * x + 4.0 * y, 12.0 * y * y + 4.0 * x - 26.0));
        }
        case 3u: { // ½ pᵀ H p with condition κ and rotation
            let h = quadratic_h();
            let g = vec2<f32>(h.x * x + h.y * y, h.y * x + h.z * y);
            return Taylor(0.5 * dot(p, g), g, h);
        }
        case 4u: { // saddle x² − y²
            return Taylor(x * x - y * y, vec2<f32>(2.0 * x, -2.0 * y), vec3<f32>(2.0, 0.0, -2.0));
        }
        default: { // Rastrigin 20 + Σ (u² − 10 cos 2πu)
            let f = 20.0 + x * x - 10.0 * cos(TAU * x) + y * y - 10.0 * cos(TAU * y);
            return Taylor(f,
                vec2<f32>(2.0 * x + 10.0 * TAU * sin(TAU * x), 2.0 * y + 10.0 * TAU * sin(TAU * y)),
                vec3<f32>(2.0 + 10.0 * TAU * TAU * cos(TAU * x), 0.0, 2.0 + 10.0 * TAU * TAU * cos(TAU * y)));
        }
    }
}

fn here() -> vec2<f32> { return vec2<f32>(theta[0], theta[1]); }

@compute @workgroup_size(256)
fn surface_fwd(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (lid.x != 0u) { return; }
    let t = taylor(here());
    work[0] = t.f;
    stats[0] = t.f;
    stats[1] = 0.0;
}

@compute @workgroup_size(256)
fn surface_tangent(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (lid.x != 0u) { return; }
    work[1] = dot(taylor(here()).g, vec2<f32>(z[0], z[1]));
}

@compute @workgroup_size(256)
fn surface_bwd(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (lid.x != 0u) { return; }
    let g = taylor(here()).g;
    g_theta[0] = g.x;
    g_theta[1] = g.y;
}

@compute @workgroup_size(256)
fn surface_rbwd(@builtin(local_invocation_id) lid: vec3<u32>) {
    if (lid.x != 0u) { return; }
    let h = taylor(here()).h;
    r_theta[0] = h.x * z[0] + h.y * z[1];
    r_theta[1] = h.y * z[0] + h.z * z[1];
}
