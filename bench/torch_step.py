"""PyTorch baseline for examples/bench_step.rs: the same MLP, batch and loss, time per step of
Adam and of AdaHessian as the official optimizer computes it (double backward for H z, one
Rademacher probe, |Hz| as the curvature), on CUDA. Run on the same GPU as the wgpu benchmark.

python3 bench/torch_step.py 784-1024-1024-10 256 200 relu
"""
import sys, time, statistics
import torch
from torch_runners import adam_runner, adahessian_runner

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


print(f"torch {torch.__version__}, device {torch.cuda.get_device_name()}, TF32 off")
print(f"model: MLP {'-'.join(map(str, widths))}, batch {batch}, {steps} steps per repetition")
results = {}
for name, runner in [("adam", adam_runner), ("adahessian", adahessian_runner)]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[l for l in layers]).to(dev)
    step = runner(model, xs, ys)
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
