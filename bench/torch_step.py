"""PyTorch baseline for examples/bench_step.rs: the same MLP, batch and loss, time per step of
Adam and of AdaHessian as the official optimizer computes it (double backward for H z, one
Rademacher probe, |Hz| as the curvature), on CUDA. Run on the same GPU as the wgpu benchmark.

python3 bench/torch_step.py 784-1024-1024-10 256 200 relu
"""
import sys, time, statistics
import torch

widths = [int(w) for w in (sys.argv[1] if len(sys.argv) > 1 else "64-64-10").split("-")]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 100
act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU}[sys.argv[4] if len(sys.argv) > 4 else "tanh"]
dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False  # compare like with like: the WGSL kernels are plain f32
layers = []
for i in range(1, len(widths)):
    layers.append(torch.nn.Linear(widths[i - 1], widths[i]))
    if i + 1 < len(widths):
        layers.append(act())
g = torch.Generator().manual_seed(1)
xs = [torch.randn(batch, widths[0], generator=g).to(dev) for _ in range(4)]
ys = [torch.randint(0, widths[-1], (batch,), generator=g).to(dev) for _ in range(4)]


def adam_runner(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xs[i % 4]), ys[i % 4])
        loss.backward()
        opt.step()
    return step


def adahessian_runner(model):
    """The official rule (amirgholami/adahessian), written out: grads with create_graph, Hz by a
    second backward of <g, z>, D = |Hz|, Adam-like moments with D², lr 0.15, eps 1e-4."""
    params = list(model.parameters())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    state = {"t": 0}

    def step(i):
        loss = torch.nn.functional.cross_entropy(model(xs[i % 4]), ys[i % 4])
        grads = torch.autograd.grad(loss, params, create_graph=True)
        zs = [torch.randint_like(p, 2) * 2 - 1 for p in params]
        hzs = torch.autograd.grad(grads, params, grad_outputs=zs)
        state["t"] += 1
        t = state["t"]
        with torch.no_grad():
            for p, gr, hz, mi, vi in zip(params, grads, hzs, m, v):
                mi.mul_(0.9).add_(gr, alpha=0.1)
                vi.mul_(0.999).addcmul_(hz.abs(), hz.abs(), value=0.001)
                denom = (vi / (1 - 0.999 ** t)).sqrt().add_(1e-4)
                p.addcdiv_(mi / (1 - 0.9 ** t), denom, value=-0.15)
    return step


print(f"torch {torch.__version__}, device {torch.cuda.get_device_name()}, TF32 off")
print(f"model: MLP {'-'.join(map(str, widths))}, batch {batch}, {steps} steps per repetition")
results = {}
for name, runner in [("adam", adam_runner), ("adahessian", adahessian_runner)]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[l for l in layers]).to(dev)
    step = runner(model)
    for i in range(10):
        step(i)
    torch.cuda.synchronize()
    reps = []
    for _ in range(7):
        start = time.perf_counter()
        for i in range(steps):
            step(i)
        torch.cuda.synchronize()
        reps.append((time.perf_counter() - start) * 1e3 / steps)
    results[name] = statistics.median(reps)
    print(f"torch {name:<12} {results[name]:8.3f} ms/step  ({results[name] / results['adam']:.2f}x adam)")
