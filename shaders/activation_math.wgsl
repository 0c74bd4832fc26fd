// Element-wise activation maths f, f′, f″ at the pre-activation x (see activation.wgsl for the
// passes built from them). Shared by the activation kernels and the dense kernels' epilogues.
// Each function stays finite and accurate for |x| ≥ 45 (no exp overflow, no 1 − s cancellation),
// matching PyTorch's definitions (softplus: beta 1, threshold 20; GELU: erf form).

fn relu_f(x: f32) -> f32 { return max(x, 0.0); }
fn relu_d1(x: f32) -> f32 { return select(0.0, 1.0, x > 0.0); }   // PyTorch: f'(0) = 0
fn relu_d2(x: f32) -> f32 { return 0.0; }

fn tanh_f(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.01) { return x * (1.0 - x * x / 3.0); }             // avoids 1 − e^{−2a} cancellation
    let e = exp(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}
// f′ = sech² x = 4e / (1 + e)² with e = exp(−2|x|): not 1 − tanh² x, which cancels to 0 in f32
// once |x| ≳ 9 (and loses all relative accuracy from |x| ≈ 4), though sech² x is still ~1e-8
fn tanh_d1(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return 4.0 * e / ((1.0 + e) * (1.0 + e)); }
fn tanh_d2(x: f32) -> f32 { return -2.0 * tanh_f(x) * tanh_d1(x); }

// σ(x), computed from exp(−|x|) so it never overflows
fn sigmoid_f(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
// σ' = σ(x) σ(−x): written this way, not σ(1 − σ), so it stays accurate where σ rounds to 1
fn sigmoid_d1(x: f32) -> f32 { return sigmoid_f(x) * sigmoid_f(-x); }
fn sigmoid_d2(x: f32) -> f32 { return sigmoid_d1(x) * (sigmoid_f(-x) - sigmoid_f(x)); }

// log(1 + e) for 0 ≤ e ≤ 1 without losing e when it is tiny (WGSL has no log1p)
fn log1p_small(e: f32) -> f32 {
    if (e < 1e-4) { return e * (1.0 - 0.5 * e); }
    return log(1.0 + e);
}
// PyTorch Softplus(beta=1, threshold=20): linear above the threshold, and so are its derivatives
fn softplus_f(x: f32) -> f32 {
    if (x > 20.0) { return x; }
    return max(x, 0.0) + log1p_small(exp(-abs(x)));
}
fn softplus_d1(x: f32) -> f32 { return select(sigmoid_f(x), 1.0, x > 20.0); }
fn softplus_d2(x: f32) -> f32 { return select(sigmoid_d1(x), 0.0, x > 20.0); }

// erfc(u) for u ≥ 0 with a fractional error below 1.2e-7 (Chebyshev fit, Numerical Recipes §6.2)
fn erfc_pos(u: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * u);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-u * u + p);
}
// Φ(x), the standard normal CDF, accurate in relative terms in the lower tail
fn normal_cdf(x: f32) -> f32 {
    let u = abs(x) * 0.70710678118654752;
    let tail = 0.5 * erfc_pos(u);
    return select(1.0 - tail, tail, x < 0.0);
}
fn normal_pdf(x: f32) -> f32 { return 0.39894228040143268 * exp(-0.5 * x * x); }
// GELU (exact, erf form): f = x Φ(x), f' = Φ + x φ, f'' = φ (2 − x²)
fn gelu_f(x: f32) -> f32 { return x * normal_cdf(x); }
fn gelu_d1(x: f32) -> f32 { return normal_cdf(x) + x * normal_pdf(x); }
fn gelu_d2(x: f32) -> f32 { return normal_pdf(x) * (2.0 - x * x); }


// Activation codes of `LayerMeta::act_fwd` / `act_bwd` (src/nn/activation.rs `Activation::code`):
// 0 none, 1 identity, 2 ReLU, 3 tanh, 4 sigmoid, 5 softplus, 6 GELU.
const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 2u;

// (f(x), f′(x), f″(x)) for an activation code
fn act_eval(code: u32, x: f32) -> vec3<f32> {
    switch code {
        case 2u: { return vec3<f32>(relu_f(x), relu_d1(x), relu_d2(x)); }
        case 3u: { return vec3<f32>(tanh_f(x), tanh_d1(x), tanh_d2(x)); }
        case 4u: { return vec3<f32>(sigmoid_f(x), sigmoid_d1(x), sigmoid_d2(x)); }
        case 5u: { return vec3<f32>(softplus_f(x), softplus_d1(x), softplus_d2(x)); }
        case 6u: { return vec3<f32>(gelu_f(x), gelu_d1(x), gelu_d2(x)); }
        default: { return vec3<f32>(x, 1.0, 0.0); }
    }
}
