"""CUDA layer under the TensorRT runner: contexts, buffers, streams, graphs, a doctor.

Import the submodules you need (`from helpers.cuda.context import CudaContext`); they load
pycuda and cuda-python only when called, so importing this package works without a GPU.
"""
