"""The CUDA kernels of the GPU stages, compiled once per process with CuPy (NVRTC).

`--fmad=false` keeps every float operation separately rounded, as NumPy does: the decode and the
NMS IoU then give the CPU path's numbers to the bit, and the resize coefficients OpenCV's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

RECORD = 18  # floats per candidate: score, x1 y1 x2 y2, 5 x (x, y), level, row, image
LEVEL_FIELDS = 8  # per level in the level table: score, bbox, kps pointers, rows, grid_w, stride, start, -
SLOT_FIELDS = 8  # per image in the letterbox table: frame pointer, w, h, new w, new h, scale x, y, -
BLOCK = 256

SOURCE = r"""
#define COEF_SCALE 2048.0f
typedef unsigned long long u64;

// OpenCV's INTER_LINEAR taps for output position d (resize.cpp, the fixed-point branch).
__device__ __forceinline__ void taps(int d, double scale, int size, int* s0, int* s1, int* w0, int* w1) {
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    if (s < 0) { f = 0.0f; s = 0; }
    if (s >= size - 1) { f = 0.0f; s = size - 1; }
    *s0 = s;
    *s1 = min(s + 1, size - 1);
    *w0 = __float2int_rn((1.0f - f) * COEF_SCALE);
    *w1 = __float2int_rn(f * COEF_SCALE);
}

// Resize (new_w x new_h, top-left), BGR -> RGB, (x - 127.5) / 128, HWC -> CHW, padding: one pass
// over the whole (N, 3, dst_h, dst_w) float canvas, one thread per canvas pixel, blockIdx.z = image.
// Each image's frame and geometry come from its row of `slots` (SLOT_FIELDS u64; the scales are
// doubles' bits), so images of any size share one launch.
extern "C" __global__ void letterbox(
    const unsigned long long* __restrict__ slots, float* __restrict__ canvas, int dst_w, int dst_h)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    const unsigned long long* slot = slots + (u64)blockIdx.z * 8;
    const unsigned char* src = (const unsigned char*)slot[0];
    int src_w = (int)slot[1], src_h = (int)slot[2], new_w = (int)slot[3], new_h = (int)slot[4];
    double scale_x = __longlong_as_double((long long)slot[5]);
    double scale_y = __longlong_as_double((long long)slot[6]);
    u64 plane = (u64)dst_w * dst_h;
    float* dst = canvas + (u64)blockIdx.z * 3 * plane;
    u64 o = (u64)y * dst_w + x;
    if (x >= new_w || y >= new_h) {
        const float pad = -127.5f / 128.0f;
        dst[o] = pad; dst[o + plane] = pad; dst[o + 2 * plane] = pad;
        return;
    }
    int x0, x1, a0, a1, y0, y1, b0, b1;
    taps(x, scale_x, src_w, &x0, &x1, &a0, &a1);
    taps(y, scale_y, src_h, &y0, &y1, &b0, &b1);
    const unsigned char* top = src + (u64)y0 * src_w * 3;
    const unsigned char* bottom = src + (u64)y1 * src_w * 3;
    for (int c = 0; c < 3; ++c) {
        int h0 = top[x0 * 3 + c] * a0 + top[x1 * 3 + c] * a1;
        int h1 = bottom[x0 * 3 + c] * a0 + bottom[x1 * 3 + c] * a1;
        // OpenCV's vertical SIMD pass: 16-bit high multiplies, then a rounding shift by 2.
        int v = ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2;
        v = min(max(v, 0), 255);
        dst[o + (u64)(2 - c) * plane] = ((float)v - 127.5f) * (1.0f / 128.0f);
    }
}

// One thread per anchor row of every level of every image (image = i / total_rows): rows scoring
// >= threshold are decoded and appended at an atomically taken slot (count keeps counting past
// capacity, so overflow shows). Image b's rows of a level start b * rows * C floats into each
// output, C = 1, 4, 10: true of (N, rows, C) rows and of (N, A*C, H, W) maps alike.
extern "C" __global__ void decode(
    const unsigned long long* __restrict__ levels, int n_levels, int total_rows, int images,
    int anchors, int nchw, float threshold,
    float* __restrict__ out, unsigned int capacity, unsigned int* __restrict__ count)
{
    long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= (long long)total_rows * images) return;
    int b = (int)(g / total_rows);
    int i = (int)(g - (long long)b * total_rows);
    int l = 0;
    while (l + 1 < n_levels && i >= (int)levels[(l + 1) * 8 + 6]) ++l;
    const unsigned long long* level = levels + l * 8;
    int row = i - (int)level[6];
    int rows = (int)level[3];
    int cells = rows / anchors;
    int grid_w = (int)level[4];
    float stride = (float)(int)level[5];
    int cell = row / anchors, a = row - cell * anchors;
    const float* score = (const float*)level[0] + (u64)b * rows;
    float s = nchw ? score[(u64)a * cells + cell] : score[row];
    if (!(s >= threshold)) return;  // NaN (an output never written) is never a face
    unsigned int slot = atomicAdd(count, 1u);
    if (slot >= capacity) return;
    float* r = out + (u64)slot * 18;
    float cx = (float)(cell % grid_w) * stride;
    float cy = (float)(cell / grid_w) * stride;
    const float* bbox = (const float*)level[1] + (u64)b * rows * 4;
    float d[4];
    for (int k = 0; k < 4; ++k)
        d[k] = (nchw ? bbox[(u64)(a * 4 + k) * cells + cell] : bbox[(u64)row * 4 + k]) * stride;
    r[0] = s;
    r[1] = cx - d[0]; r[2] = cy - d[1]; r[3] = cx + d[2]; r[4] = cy + d[3];
    const float* kps = level[2] ? (const float*)level[2] + (u64)b * rows * 10 : 0;
    for (int k = 0; k < 10; ++k) {
        float v = kps ? (nchw ? kps[(u64)(a * 10 + k) * cells + cell] : kps[(u64)row * 10 + k]) : 0.0f;
        r[5 + k] = v * stride + ((k & 1) ? cy : cx);
    }
    r[15] = (float)l;
    r[16] = (float)row;
    r[17] = (float)b;
}

// Greedy NMS's IoU test for many boxes (sorted best first): bit j of word w of row i says
// box i suppresses box j = 64 w + bit (j > i only), with the CPU path's float32 arithmetic.
extern "C" __global__ void suppress(
    const float* __restrict__ boxes, int n, float threshold, unsigned long long* __restrict__ mask)
{
    int i = blockIdx.y;
    int w = blockIdx.x * blockDim.x + threadIdx.x;
    int words = (n + 63) / 64;
    if (i >= n || w >= words) return;
    const float* b = boxes + (u64)i * 4;
    float area_i = (b[2] - b[0] + 1.0f) * (b[3] - b[1] + 1.0f);
    unsigned long long bits = 0;
    for (int k = 0; k < 64; ++k) {
        int j = w * 64 + k;
        if (j <= i || j >= n) continue;
        const float* c = boxes + (u64)j * 4;
        float xx1 = fmaxf(b[0], c[0]), yy1 = fmaxf(b[1], c[1]);
        float xx2 = fminf(b[2], c[2]), yy2 = fminf(b[3], c[3]);
        float inter = fmaxf(0.0f, xx2 - xx1 + 1.0f) * fmaxf(0.0f, yy2 - yy1 + 1.0f);
        float area_j = (c[2] - c[0] + 1.0f) * (c[3] - c[1] + 1.0f);
        if (inter / (area_i + area_j - inter) > threshold) bits |= 1ull << k;
    }
    mask[(u64)i * words + w] = bits;
}
"""


@cache
def _module() -> Any:
    import cupy

    return cupy.RawModule(code=SOURCE, options=("--fmad=false", "-std=c++14"))


@cache
def kernel(name: str) -> Any:
    """The compiled kernel `name` (letterbox, decode, suppress); one device per process."""
    return _module().get_function(name)
