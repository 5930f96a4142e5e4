"""GPU throughput (issue 5, benchmark 1): cnnlab's trainer against a plain PyTorch loop, same GPU.

    python benchmarks/train_gpu_throughput.py [--models alexnet vgg16 ...] [--steps 60] [--no-compile]

For each model, images/s of a full training step (forward, backward, SGD step) and of inference:
- cnnlab: `cnnlab.train` on synthetic data held on the GPU (its own bf16 autocast, channels_last,
  fused SGD, on-device metrics; `compile="default"`), timed on its second epoch (the first one
  compiles and autotunes); inference through `cnnlab.training.metrics.evaluate`.
- plain: the best plain loop: torchvision's model (cnnlab's for the CIFAR ResNets, which
  torchvision lacks), bf16 autocast, channels_last, `torch.compile`, fused SGD, no host sync
  inside the timed steps.
Reports the ratio cnnlab/plain (target >= 1.0) and the model-FLOPs utilisation from the
analyzer's MACs (training step = 3x the forward MACs; 2 FLOPs per MAC) against --peak-tflops
(default 989, the H100 SXM's dense bf16).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

# name -> (cnnlab zoo name, torchvision builder or None, input shape, batch size)
MODELS = {
    "alexnet": ("alexnet_torchvision", "alexnet", (3, 224, 224), 256),
    "vgg16": ("vgg_d", "vgg16", (3, 224, 224), 64),
    "googlenet": ("googlenet", "googlenet", (3, 224, 224), 128),
    "resnet18": ("resnet18", "resnet18", (3, 224, 224), 256),
    "resnet50": ("resnet50", "resnet50", (3, 224, 224), 128),
    "resnet20": ("resnet20", None, (3, 32, 32), 512),
    "resnet56": ("resnet56", None, (3, 32, 32), 512),
}


def synthetic_loaders(shape, batch, steps, device):
    from cnnlab.data.loaders import DeviceLoader, Loaders
    from cnnlab.data.preprocess import Adapter

    g = torch.Generator(device=device).manual_seed(0)
    n = batch * steps
    x = torch.randint(0, 256, (n, *shape), generator=g, device=device, dtype=torch.uint8)
    y = torch.randint(0, 1000, (n,), generator=g, device=device)
    adapter = Adapter(shape, shape, (0.5,) * shape[0], (0.25,) * shape[0])
    return Loaders(train=DeviceLoader(x, y, batch, adapter, shuffle=True),
                   val=None, test=DeviceLoader(x[:batch], y[:batch], batch, adapter, shuffle=False),
                   classes=[str(i) for i in range(1000)], mean=adapter.input_mean, std=adapter.input_std,
                   info={"dataset": "synthetic"})


def cnnlab_train(zoo_name, shape, batch, steps, compile_mode, out):
    from cnnlab.training.settings import TrainSettings
    from cnnlab.training.spec import TrainSpec
    from cnnlab.training.trainer import train

    data = synthetic_loaders(shape, batch, steps, "cuda")
    settings = TrainSettings(dataset="synthetic", epochs=2, batch_size=batch, lr=0.01, log_interval=steps,
                             compile=compile_mode)
    spec = TrainSpec(zoo_name, settings, out=out, quiet=True, device="cuda", model_kwargs={"num_classes": 1000},
                     input_shape=shape, checkpoint_minutes=None)
    result = train(spec, data=data)
    return [r for r in result.history if r["split"] == "train"][-1]["images_per_s"], result.model, data


def cnnlab_infer(model, data, repeats):
    from cnnlab.device import autocast_for
    from cnnlab.inference import infer

    autocast = autocast_for("bf16", torch.device("cuda"))
    infer(model, data.train, 1000, autocast=autocast, channels_last=True)  # warm-up
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        infer(model, data.train, 1000, autocast=autocast, channels_last=True)
    torch.cuda.synchronize()
    return repeats * data.train.num_samples / (time.perf_counter() - started)


def plain_model(zoo_name, tv_name):
    if tv_name is None:
        import cnnlab

        return cnnlab.create(zoo_name, num_classes=1000)
    import torchvision

    kwargs = {"aux_logits": False, "init_weights": True} if tv_name == "googlenet" else {}
    return getattr(torchvision.models, tv_name)(num_classes=1000, **kwargs)


def plain_loop(zoo_name, tv_name, shape, batch, steps, compile_mode):
    model = plain_model(zoo_name, tv_name).cuda().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
    step_model = torch.compile(model) if compile_mode else model
    x = torch.randn(batch, *shape, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device="cuda")

    def train_step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(step_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed(fn):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
        return steps * batch / (time.perf_counter() - started)

    training = timed(train_step)
    model.eval()

    @torch.inference_mode()
    def infer_step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            step_model(x)

    return training, timed(infer_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    import tempfile

    from cnnlab.analysis import summary

    compile_mode = None if args.no_compile else "default"
    print(f"{time.strftime('%Y-%m-%d')}, {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"compile={compile_mode}\n")
    print("| model | batch | train img/s cnnlab | plain | ratio | MFU | infer img/s cnnlab | plain | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            zoo_name, tv_name, shape, batch = MODELS[name]
            ours, model, data = cnnlab_train(zoo_name, shape, batch, args.steps, compile_mode, f"{tmp}/{name}")
            ours_infer = cnnlab_infer(model, data, repeats=3)
            theirs, theirs_infer = plain_loop(zoo_name, tv_name, shape, batch, args.steps, compile_mode)
            macs = summary(zoo_name, shape).totals.macs
            mfu = ours * 3 * 2 * macs / (args.peak_tflops * 1e12)
            print(f"| {name} | {batch} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} | {100 * mfu:.1f}% | "
                  f"{ours_infer:,.0f} | {theirs_infer:,.0f} | {ours_infer / theirs_infer:.2f} |", flush=True)
            del model, data
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
