"""`cnnlab finetune`, `cnnlab export` and `cnnlab features`: start from a trained network, take a
model out of cnnlab, and take a layer's embeddings to scikit-learn."""

from __future__ import annotations

ORDER = 60


def register(subparsers) -> None:
    from cnnlab.commands.train import SETTING_FLAGS, add_data_flags, add_run_flags, add_setting_flags

    finetune = subparsers.add_parser(
        "finetune",
        help="train a pretrained network on a new data set (transfer learning)",
        description="Start from SOURCE (a run folder, a .safetensors file, a torchvision .pth state dict, or "
        "torchvision:NAME.WEIGHTS), give it a new classifier for the target classes and train. "
        "See docs/transfer.md.",
    )
    finetune.add_argument("source", help="run folder, weights file, or torchvision:resnet18.IMAGENET1K_V1")
    finetune.add_argument("--mode", choices=("features", "finetune"), default="finetune",
                          help="features: freeze the backbone (kept in eval mode), train the new head; "
                          "finetune (default): train everything, the backbone at a lower lr")
    finetune.add_argument("--unfreeze-from", metavar="LAYER",
                          help="finetune only LAYER and what follows it (e.g. layer4, classifier)")
    finetune.add_argument("--backbone-lr-ratio", type=float, default=0.1,
                          help="backbone lr = ratio x --lr (default 0.1; the new head trains at --lr)")
    finetune.add_argument("--model", help="zoo architecture of a weights file that does not name it")
    add_setting_flags(finetune)
    add_run_flags(finetune)
    finetune.set_defaults(run=run_finetune, setting_flags=tuple(SETTING_FLAGS))

    export = subparsers.add_parser(
        "export",
        help="write a run's model as ONNX, TorchScript or safetensors",
        description="Export a run's best model. The file carries the model name, input shape, classes and "
        "normalisation. An ONNX file is checked against PyTorch with onnxruntime when it is installed.",
    )
    export.add_argument("run_dir", metavar="RUN", help="a run directory")
    export.add_argument("--format", required=True, choices=("onnx", "torchscript", "safetensors"),
                        help="ONNX (checked with onnxruntime), TorchScript, or safetensors weights")
    export.add_argument("--out", help="file to write (default: RUN/export/model.onnx|.ts|.safetensors)")
    export.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint's weights")
    export.add_argument("--force", action="store_true", help="replace an existing file (never a run's own files)")
    export.set_defaults(run=run_export)

    features = subparsers.add_parser(
        "features",
        help="save a layer's embeddings of a data set as .npz (for scikit-learn)",
        description="Run a run's model over the train and test splits of a data set and save one layer's "
        "outputs, flattened, with the labels (train_features, train_labels, test_features, test_labels).",
    )
    features.add_argument("run_dir", metavar="RUN", help="a run directory")
    features.add_argument("--dataset", help="data set (default: the one the run trained on)")
    features.add_argument("--layer", help="layer name (see 'cnnlab show MODEL'); default: the input of the classifier")
    features.add_argument("--out", help=".npz file to write (default: RUN/features/<dataset>-<layer>.npz)")
    features.add_argument("--batch-size", type=int, default=256, help="images per batch")
    features.add_argument("--force", action="store_true", help="replace an existing file (never a run's own files)")
    add_data_flags(features)
    features.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    features.set_defaults(run=run_features)


def run_finetune(args) -> int:
    from cnnlab.commands.train import finish_run, run_options
    from cnnlab.training.settings import TrainSettings
    from cnnlab.training.spec import TrainSpec
    from cnnlab.transfer.finetune import finetune

    given = {name: getattr(args, name) for name in args.setting_flags if getattr(args, name) is not None}
    settings = TrainSettings.from_dict({**TrainSettings().to_dict(), **given})
    spec = TrainSpec(args.source, settings, out=args.out, data_dir=args.data_dir, **run_options(args))
    result = finetune(args.source, spec, mode=args.mode, unfreeze_from=args.unfreeze_from,
                      backbone_lr_ratio=args.backbone_lr_ratio, model=args.model)
    return finish_run(result, args.quiet)


def run_export(args) -> int:
    from cnnlab.transfer.export import export_run, onnx_max_difference

    path, model, input_shape = export_run(args.run_dir, args.format, args.out, args.checkpoint, args.force)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.format == "onnx":
        try:
            difference = onnx_max_difference(path, model, input_shape)
        except ImportError:
            print("  (install onnxruntime to check the file against PyTorch)")
        else:
            print(f"  onnxruntime vs PyTorch on a random batch: max |difference| = {difference:.2e}")
    return 0


def run_features(args) -> int:
    from cnnlab.transfer.features import extract_run_features

    path, shapes = extract_run_features(args.run_dir, args.dataset, args.layer, args.out, batch_size=args.batch_size,
                                        data_dir=args.data_dir, download=args.download, device=args.device,
                                        force=args.force)
    for split, shape in shapes.items():
        print(f"{split}: {shape[0]:,} images x {shape[1]:,} features")
    print(f"saved {path}")
    return 0
