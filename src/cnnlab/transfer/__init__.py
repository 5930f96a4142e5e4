"""Transfer learning, interoperability and export.

A network trained on one data set becomes the start of another: `source` loads it (a cnnlab run,
a safetensors file, a torchvision checkpoint), `anatomy` finds its classifier head and its first
convolution, `adapt` carries weights across a change of input channels, `finetune` trains the new
task, `interop` converts to and from torchvision, `export` writes ONNX / TorchScript /
safetensors, and `features` saves a layer's embeddings for scikit-learn.
"""
