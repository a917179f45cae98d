# A forum-style SCRFD TensorRT script (the way TensorRT#4427 / #2040 and forum answers write it).
# Not executed by the tests: it is lint input; tests/test_lint.py checks the line of every finding.
import threading

import cv2
import numpy as np
import pycuda.autoinit  # LINT TRT001
import pycuda.driver as cuda
import tensorrt as trt

TRT_LOGGER = trt.Logger(trt.Logger.WARNING)


class HostDeviceMem:
    def __init__(self, host_mem, device_mem):
        self.host = host_mem
        self.device = device_mem


class SCRFD:
    def __init__(self, engine_path):
        runtime = trt.Runtime(TRT_LOGGER)
        with open(engine_path, "rb") as f:
            self.engine = runtime.deserialize_cuda_engine(f.read())  # LINT TRT004
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs, self.bindings = [], [], []
        self.stream = cuda.Stream()
        for binding in self.engine:
            shape = self.engine.get_binding_shape(binding)  # LINT TRT006
            size = trt.volume(shape)  # LINT TRT003
            dtype = trt.nptype(self.engine.get_binding_dtype(binding))  # LINT TRT006
            host_mem = cuda.pagelocked_empty(size, dtype)
            device_mem = cuda.mem_alloc(host_mem.nbytes)
            self.bindings.append(int(device_mem))
            if self.engine.binding_is_input(binding):  # LINT TRT006
                self.inputs.append(HostDeviceMem(host_mem, device_mem))
            else:
                self.outputs.append(HostDeviceMem(host_mem, device_mem))
            self.context.set_tensor_address(binding, int(device_mem))  # LINT TRT004

    def infer(self, img):
        np.copyto(self.inputs[0].host, img.ravel())
        cuda.memcpy_htod_async(self.inputs[0].device, self.inputs[0].host, self.stream)
        self.context.execute_async_v3(stream_handle=self.stream.handle)  # LINT TRT004
        for out in self.outputs:
            cuda.memcpy_dtoh_async(out.host, out.device, self.stream)
        return [out.host for out in self.outputs]  # LINT TRT005

    def detect(self, img):
        blob = cv2.dnn.blobFromImage(img, 1.0 / 128, (640, 640), (127.5, 127.5, 127.5), swapRB=True)
        net_outs = self.infer(blob)
        fmc = 3
        scores_list = []
        for idx, stride in enumerate([8, 16, 32]):
            scores = net_outs[idx]  # LINT TRT009
            bbox_preds = net_outs[idx + fmc] * stride  # LINT TRT009
            scores_list.append((scores, bbox_preds))
        return scores_list


detector = SCRFD("scrfd_10g_bnkps.engine")


def camera_worker(source):
    cap = cv2.VideoCapture(source)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        faces = detector.detect(frame)  # LINT TRT002
        print(len(faces))


threads = [threading.Thread(target=camera_worker, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
