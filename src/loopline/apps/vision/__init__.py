"""Edge vision: detection and tracking for a vehicle's camera, under a frame deadline on one
CPU core, with a fail-safe, a fleet data loop and signed over-the-air updates
(docs/vision.md).

Needs the ``vision`` extra (PyTorch to train, ONNX Runtime to run, OpenCV). Nothing heavy is
imported here.
"""
