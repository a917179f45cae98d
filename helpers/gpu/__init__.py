"""Pre- and post-processing on the GPU with CuPy, straight into and out of the engine's buffers.

Nothing here is imported by the decode core or the detector: `GpuStages` is handed to a
`Detector` (duck-typed), and cupy is imported only when GPU work is asked for.
"""
