"""The seed's pattern, mistakes included: one worker thread per video stream, `pycuda.autoinit`.

This is the script of NVIDIA/TensorRT#4427 in spirit (plain TensorRT 10 + pycuda, no `helpers`):
the engine, the buffers and the stream are made on the main thread, in the context
`pycuda.autoinit` created; each worker makes its own execution context and runs frames. Nothing
is checked, the outputs are read by position and nobody poisons them, so the failure reads
"0 faces" at a high frame rate. `seed_worker_threads_fixed.py` is the same script, fixed;
notebooks/05b_your_script_fixed.ipynb walks through the changes.

    python examples/seed_worker_threads.py --model scrfd_2.5g.onnx --image photo.jpg --workers 2
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pycuda.autoinit  # noqa: F401  (mistake: a private context, current on the main thread only)
import pycuda.driver as cuda
import tensorrt as trt
from plain_scrfd import SIZE, STRIDES, arguments, count_faces, io_names, letterbox, load_engine

LOGGER = trt.Logger(trt.Logger.WARNING)


def main() -> None:
    args, image = arguments(__doc__)
    engine = load_engine(args.model, LOGGER)
    input_name, output_names = io_names(engine)
    setup = engine.create_execution_context()
    setup.set_input_shape(input_name, (1, 3, SIZE, SIZE))
    # Shared by every worker "to save memory": one stream, one set of buffers.
    host, device = {}, {}
    for name in [input_name, *output_names]:
        host[name] = cuda.pagelocked_empty(tuple(setup.get_tensor_shape(name)), np.float32)
        device[name] = cuda.mem_alloc(host[name].nbytes)
    stream = cuda.Stream()
    blob, _ = letterbox(image)

    def worker(index: int) -> None:
        context = engine.create_execution_context()  # "each thread needs its own context"
        faces = 0
        for _ in range(args.frames):
            context.set_input_shape(input_name, (1, 3, SIZE, SIZE))
            for name in host:
                context.set_tensor_address(name, int(device[name]))
            np.copyto(host[input_name], blob)
            cuda.memcpy_htod_async(device[input_name], host[input_name], stream)
            context.execute_async_v3(stream.handle)
            for name in output_names:
                cuda.memcpy_dtoh_async(host[name], device[name], stream)
            stream.synchronize()
            # insightface's habit: outputs by position, scores first, then boxes.
            outs = [host[name].reshape(-1, host[name].shape[-1]) for name in output_names]
            scores = dict(zip(STRIDES, outs[:3], strict=True))
            boxes = dict(zip(STRIDES, outs[3:6], strict=True))
            faces = count_faces(scores, boxes)
        print(
            json.dumps(
                {"script": "seed", "worker": index, "frames": args.frames, "faces": faces, "errors": []}
            ),
            flush=True,
        )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
