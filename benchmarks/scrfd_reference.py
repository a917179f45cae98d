"""A faithful re-implementation of insightface's SCRFD pipeline (model_zoo/scrfd.py).

Kept outside the package on purpose: it is the yardstick that parity tests
and the benchmark measure `helpers` against, line for line the reference's
algorithm (decode every anchor, then filter; sort; row-at-a-time NMS).
"""

from __future__ import annotations

import cv2
import numpy as np


def distance2bbox(points, distance):
    x1 = points[:, 0] - distance[:, 0]
    y1 = points[:, 1] - distance[:, 1]
    x2 = points[:, 0] + distance[:, 2]
    y2 = points[:, 1] + distance[:, 3]
    return np.stack([x1, y1, x2, y2], axis=-1)


def distance2kps(points, distance):
    preds = []
    for i in range(0, distance.shape[1], 2):
        px = points[:, i % 2] + distance[:, i]
        py = points[:, i % 2 + 1] + distance[:, i + 1]
        preds.append(px)
        preds.append(py)
    return np.stack(preds, axis=-1)


class ReferenceSCRFD:
    """insightface's SCRFD class, ONNX Runtime session included, positional outputs and all."""

    def __init__(self, session, nms_thresh=0.4, det_thresh=0.5):
        self.session = session
        self.center_cache = {}
        self.nms_thresh = nms_thresh
        self.det_thresh = det_thresh
        inp = session.get_inputs()[0]
        shape = inp.shape
        self.input_size = tuple(shape[2:4][::-1]) if not isinstance(shape[2], str) else None
        self.input_name = inp.name
        outputs = session.get_outputs()
        self.batched = len(outputs[0].shape) == 3
        self.output_names = [o.name for o in outputs]
        self.input_mean, self.input_std = 127.5, 128.0
        self.use_kps = False
        self._anchor_ratio = 1.0
        self._num_anchors = 1
        if len(outputs) == 6:
            self.fmc, self._feat_stride_fpn, self._num_anchors = 3, [8, 16, 32], 2
        elif len(outputs) == 9:
            self.fmc, self._feat_stride_fpn, self._num_anchors = 3, [8, 16, 32], 2
            self.use_kps = True
        elif len(outputs) == 10:
            self.fmc, self._feat_stride_fpn, self._num_anchors = 5, [8, 16, 32, 64, 128], 1
        elif len(outputs) == 15:
            self.fmc, self._feat_stride_fpn, self._num_anchors = 5, [8, 16, 32, 64, 128], 1
            self.use_kps = True

    def forward(self, img, threshold):
        input_size = tuple(img.shape[0:2][::-1])
        blob = self.blob(img, input_size)
        net_outs = self.session.run(self.output_names, {self.input_name: blob})
        return self.decode(net_outs, blob.shape[2], blob.shape[3], threshold)

    def blob(self, img, input_size):
        return cv2.dnn.blobFromImage(
            img, 1.0 / self.input_std, input_size, (self.input_mean,) * 3, swapRB=True
        )

    def decode(self, net_outs, input_height, input_width, threshold):
        """The loop of the reference's `forward` after the session run, split out for timing."""
        scores_list, bboxes_list, kpss_list = [], [], []
        fmc = self.fmc
        for idx, stride in enumerate(self._feat_stride_fpn):
            if self.batched:
                scores = net_outs[idx][0]
                bbox_preds = net_outs[idx + fmc][0] * stride
                if self.use_kps:
                    kps_preds = net_outs[idx + fmc * 2][0] * stride
            else:
                scores = net_outs[idx]
                bbox_preds = net_outs[idx + fmc] * stride
                if self.use_kps:
                    kps_preds = net_outs[idx + fmc * 2] * stride
            height, width = input_height // stride, input_width // stride
            key = (height, width, stride)
            if key in self.center_cache:
                anchor_centers = self.center_cache[key]
            else:
                anchor_centers = np.stack(np.mgrid[:height, :width][::-1], axis=-1).astype(np.float32)
                anchor_centers = (anchor_centers * stride).reshape((-1, 2))
                if self._num_anchors > 1:
                    anchor_centers = np.stack([anchor_centers] * self._num_anchors, axis=1).reshape((-1, 2))
                if len(self.center_cache) < 100:
                    self.center_cache[key] = anchor_centers
            pos_inds = np.where(scores >= threshold)[0]
            bboxes = distance2bbox(anchor_centers, bbox_preds)
            scores_list.append(scores[pos_inds])
            bboxes_list.append(bboxes[pos_inds])
            if self.use_kps:
                kpss = distance2kps(anchor_centers, kps_preds)
                kpss = kpss.reshape((kpss.shape[0], -1, 2))
                kpss_list.append(kpss[pos_inds])
        return scores_list, bboxes_list, kpss_list

    def preprocess(self, img, input_size):
        """The letterbox half of `detect`, split out so the benchmark can time it."""
        im_ratio = float(img.shape[0]) / img.shape[1]
        model_ratio = float(input_size[1]) / input_size[0]
        if im_ratio > model_ratio:
            new_height = input_size[1]
            new_width = int(new_height / im_ratio)
        else:
            new_width = input_size[0]
            new_height = int(new_width * im_ratio)
        det_scale = float(new_height) / img.shape[0]
        resized_img = cv2.resize(img, (new_width, new_height))
        det_img = np.zeros((input_size[1], input_size[0], 3), dtype=np.uint8)
        det_img[:new_height, :new_width, :] = resized_img
        return det_img, det_scale

    def detect(self, img, input_size=None):
        input_size = self.input_size if input_size is None else input_size
        det_img, det_scale = self.preprocess(img, input_size)
        scores_list, bboxes_list, kpss_list = self.forward(det_img, self.det_thresh)
        return self.postprocess(scores_list, bboxes_list, kpss_list, det_scale)

    def postprocess(self, scores_list, bboxes_list, kpss_list, det_scale):
        scores = np.vstack(scores_list)
        order = scores.ravel().argsort()[::-1]
        bboxes = np.vstack(bboxes_list) / det_scale
        kpss = np.vstack(kpss_list) / det_scale if self.use_kps else None
        pre_det = np.hstack((bboxes, scores)).astype(np.float32, copy=False)
        pre_det = pre_det[order, :]
        keep = self.nms(pre_det)
        det = pre_det[keep, :]
        if self.use_kps:
            kpss = kpss[order, :, :][keep, :, :]
        return det, kpss

    def nms(self, dets):
        thresh = self.nms_thresh
        x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
        areas = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = scores.argsort()[::-1]
        keep = []
        while order.size > 0:
            i = order[0]
            keep.append(i)
            xx1 = np.maximum(x1[i], x1[order[1:]])
            yy1 = np.maximum(y1[i], y1[order[1:]])
            xx2 = np.minimum(x2[i], x2[order[1:]])
            yy2 = np.minimum(y2[i], y2[order[1:]])
            w = np.maximum(0.0, xx2 - xx1 + 1)
            h = np.maximum(0.0, yy2 - yy1 + 1)
            inter = w * h
            ovr = inter / (areas[i] + areas[order[1:]] - inter)
            inds = np.where(ovr <= thresh)[0]
            order = order[inds + 1]
        return keep
