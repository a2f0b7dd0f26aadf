"""The detector: a compact anchor-free network (CenterNet-style: a heatmap of object centres
per class, and each centre's box size and sub-pixel offset) trained here on the CPU,
exported to ONNX and quantized to static INT8 for ONNX Runtime. PyTorch is imported only
by the modules that train and export."""
