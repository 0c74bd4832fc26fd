"""The PyTorch steps the wgpu benchmarks are compared with, shared by bench/torch_step.py and
bench/torch_resnet.py: Adam (lr 1e-3), and AdaHessian as the official optimizer
(amirgholami/adahessian) computes it, written out: grads with create_graph, Hz by a second
backward of <g, z> with one Rademacher probe, D = |Hz|, Adam-like moments with D², lr 0.15,
eps 1e-4. Each runner returns step(i), which trains on batch i % len(xs)."""
import torch
import torch.nn.functional as F


def adam_runner(model, xs, ys):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(i):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xs[i % len(xs)]), ys[i % len(ys)]).backward()
        opt.step()
    return step


def adahessian_runner(model, xs, ys):
    params = list(model.parameters())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    state = {"t": 0}

    def step(i):
        loss = F.cross_entropy(model(xs[i % len(xs)]), ys[i % len(ys)])
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
