// jax-js's side of the side-by-side benchmark (web/jaxjs.html): the same MLP, batch, loss and
// optimizer rules as the library's bench page, written in jax-js and jitted whole:
//   Adam        g = ∇L;  m, v moments;  θ −= lr m̂ / (√v̂ + ε)                    (lr 1e-3, ε 1e-8)
//   AdaHessian  g = ∇L and H z in ONE forward-over-reverse pass (jvp of grad), z Rademacher,
//               D = |H z|;  v ← β2 v + (1−β2) D²;  θ −= lr m̂ / (√v̂ + ε)       (lr 0.15, ε 1e-4)
// jax-js counts references: every function consumes its array arguments, `.ref` keeps one alive.
import { numpy as np, nn, random, grad, jvp, jit, tree } from './jax.js';

const B1 = 0.9;

/** An MLP `widths` (e.g. [64, 128, 128, 10]) as [[W (in × out), b], ...], PyTorch's init range. */
export function mlpParams(widths, seed) {
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
  const params = [];
  for (let i = 1; i < widths.length; i++) {
    const [n_in, n_out] = [widths[i - 1], widths[i]];
    const bound = 1 / Math.sqrt(n_in);
    const w = Float32Array.from({ length: n_in * n_out }, () => (2 * next() - 1) * bound);
    const b = Float32Array.from({ length: n_out }, () => (2 * next() - 1) * bound);
    params.push([np.array(w).reshape([n_in, n_out]), np.array(b)]);
  }
  return params;
}

function forward(params, x, activation) {
  let h = x;
  params.forEach(([w, b], i) => {
    h = np.matmul(h, w).add(b);
    if (i + 1 < params.length) h = activation === 'relu' ? nn.relu(h) : np.tanh(h);
  });
  return h;
}

/** Mean softmax cross-entropy; `y` one-hot [B, K]. */
function loss(params, x, y, activation) {
  const logp = nn.logSoftmax(forward(params, x, activation), -1);
  return np.sum(logp.mul(y), -1).mean().neg();
}

/** The jitted Adam step: (params, m, v, x, y, bias1, bias2) → [params, m, v]. */
export function adamStep(activation, lr = 1e-3, b2 = 0.999, eps = 1e-8) {
  return jit((params, m, v, x, y, bias1, bias2) => {
    const g = grad((p) => loss(p, x, y, activation))(tree.ref(params));
    const m2 = tree.map((mi, gi) => mi.mul(B1).add(gi.ref.mul(1 - B1)), m, tree.ref(g));
    const v2 = tree.map((vi, gi) => vi.mul(b2).add(gi.ref.mul(gi).mul(1 - b2)), v, g);
    const p2 = tree.map((p, mi, vi) => p.sub(mi.div(bias1.ref).mul(lr).div(np.sqrt(vi.div(bias2.ref)).add(eps))),
      params, tree.ref(m2), tree.ref(v2));
    bias1.dispose(); bias2.dispose();
    return [p2, m2, v2];
  });
}

/** The jitted AdaHessian step: (params, m, v, x, y, key, bias1, bias2) → [params, m, v]. */
export function adahessianStep(activation, lr = 0.15, b2 = 0.999, eps = 1e-4) {
  return jit((params, m, v, x, y, key, bias1, bias2) => {
    // one Rademacher vector over all parameters jointly, cut into the leaves' shapes
    const shapes = tree.leaves(params).map((p) => p.shape);
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const cuts = sizes.slice(0, -1).map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0));
    const all = random.rademacher(key, { shape: [sizes.reduce((a, b) => a + b, 0)] });
    const pieces = np.split(all, cuts);
    const z = tree.unflatten(tree.structure(params), pieces.map((piece, i) => piece.reshape(shapes[i])));
    const gradFn = (p) => grad((q) => loss(q, x.ref, y.ref, activation))(p);
    const [g, hz] = jvp(gradFn, [tree.ref(params)], [z]);
    x.dispose(); y.dispose();
    const m2 = tree.map((mi, gi) => mi.mul(B1).add(gi.mul(1 - B1)), m, g);
    const v2 = tree.map((vi, h) => vi.mul(b2).add(h.ref.mul(h).mul(1 - b2)), v, hz);
    const p2 = tree.map((p, mi, vi) => p.sub(mi.div(bias1.ref).mul(lr).div(np.sqrt(vi.div(bias2.ref)).add(eps))),
      params, tree.ref(m2), tree.ref(v2));
    bias1.dispose(); bias2.dispose();
    return [p2, m2, v2];
  });
}
