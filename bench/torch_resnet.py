"""PyTorch baseline for `adahessian bench --data random:3x32x32 --model resnet:DEPTH`: the same CIFAR
ResNet (He et al. option A, bias-free convs, train-mode BatchNorm), batch and loss; time per step
of Adam and of AdaHessian as the official optimizer computes it (double backward for H z through
the batch statistics, one Rademacher probe, |Hz|; no spatial averaging here, which costs little).
Eager mode, on the CPU with the given number of threads (or CUDA with device=cuda).

python3 bench/torch_resnet.py DEPTH BATCH STEPS [THREADS] [device]
"""
import sys, time, statistics
import torch
from torch_runners import adam_runner, adahessian_runner
import torch.nn as nn
import torch.nn.functional as F

depth = int(sys.argv[1]) if len(sys.argv) > 1 else 8
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
dev = sys.argv[5] if len(sys.argv) > 5 else "cpu"
torch.set_num_threads(threads)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = (cout - cin) // 2 if (stride != 1 or cin != cout) else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.pad is None:
            short = x
        else:  # option A
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class ResNet(nn.Module):
    def __init__(self, depth, width=16, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage in range(3):
            w = width << stage
            for i in range(n):
                blocks.append(Block(cin, w, 2 if stage > 0 and i == 0 else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


g = torch.Generator().manual_seed(1)
xs = [torch.randn(batch, 3, 32, 32, generator=g).to(dev) for _ in range(4)]
ys = [torch.randint(0, 10, (batch,), generator=g).to(dev) for _ in range(4)]


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


print(f"torch {torch.__version__}, {dev}, {threads} threads, resnet{depth}, batch {batch}")
results = {}
for name, runner in [("adam", adam_runner), ("adahessian", adahessian_runner)]:
    torch.manual_seed(0)
    model = ResNet(depth).to(dev).train()
    step = runner(model, xs, ys)
    for i in range(2):
        step(i)
    sync()
    times = []
    for rep in range(3):
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        sync()
        times.append((time.perf_counter() - t0) / steps * 1000)
    results[name] = statistics.median(times)
    print(f"{name:<12} {results[name]:9.1f} ms/step  ({', '.join(f'{t:.1f}' for t in times)})")
print(f"adahessian / adam: {results['adahessian'] / results['adam']:.2f}")
