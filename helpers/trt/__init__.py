"""TensorRT layer: build SCRFD engines, cache them, and run them three ways.

Every module here imports `tensorrt` lazily, inside the functions that need it, so
`import helpers.trt.<module>` works on machines without TensorRT; the pure parts (tensor
specs, profile arithmetic, cache manifests, build progress) are tested on the CPU.
"""
