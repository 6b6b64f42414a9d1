// Core math of the face_gcn triangle rasterizer, free of TensorFlow.
//
// Plain functions on raw arrays, shared by the TensorFlow CPU kernel
// (rasterize_triangles_op.cc), the CUDA kernels (rasterize_gpu.cu.h) and the
// standalone CUDA harness (tools/cuda_rasterizer/), so every backend runs the
// same float arithmetic in the same order. The CPU kernel (rasterize_core.cc)
// evaluates TriangleBounds, TriangleEdgeMatrix and ShadeFragment's edge values
// for several triangles at once with the same operations lane by lane; the
// CUDA emulation test and tests/render/test_simd_paths.py hold it to the same
// bits.
//
// Conventions (Genova et al.'s tf_mesh_renderer behaviour):
//  * vertices are homogeneous clip coordinates (x, y, z, w), 4 floats each;
//  * Olano-Greer homogeneous rasterization: the edge functions of a triangle
//    are the rows of the (unnormalised) inverse of M = [x; y; w] applied to the
//    pixel centre (px, py, 1) in NDC; no backface culling (the inverse takes the
//    sign of det M); a pixel is inside when all three edge values are >= 0 and
//    at least one is > 0; triangles whose three w are all < 0 are skipped;
//  * pixel (ix, iy) has its centre at NDC ((ix+0.5)/(W/2) - 1, (iy+0.5)/(H/2) - 1):
//    row 0 is NDC y = -1 (no flip);
//  * depth test on NDC z = clip_z / clip_w, with near/far clipping to [-1, 1];
//    a fragment is kept when z <= the stored depth, so among equal depths the
//    triangle with the higher index wins (what Genova's sequential loop does);
//  * empty pixels: triangle id -1, barycentrics 0, z 1.
#ifndef FACE_GCN_RENDER_KERNELS_RASTERIZE_CORE_H_
#define FACE_GCN_RENDER_KERNELS_RASTERIZE_CORE_H_

#include <cmath>
#include <cstdint>
#include <functional>

#if defined(__CUDACC__)
#define FACE_GCN_HOST_DEVICE __host__ __device__
#else
#define FACE_GCN_HOST_DEVICE
#endif

namespace face_gcn {
namespace raster {

// Triangle id written to pixels that no triangle covers.
constexpr int32_t kEmptyTriangleId = -1;
// Depth the z-buffer is cleared to (the far plane).
constexpr float kClearDepth = 1.0f;
// Pixels whose barycentric sum is below this get no gradient (Genova's rule:
// empty pixels hold zeros).
constexpr float kDegenerateBarycentricSum = 0.9f;
// Largest image side and pixel count the op accepts.
constexpr int64_t kMaxImageSide = 8192;
constexpr int64_t kMaxTotalPixels = int64_t{1} << 28;

// Per-triangle state computed once per image: the sign-corrected unnormalised
// inverse of M (row i gives edge function i) and the pixel bounding box
// [left, right) x [bottom, top), empty when the triangle is skipped.
struct TriangleSetup {
  float m_inv[9];
  int32_t left, right, bottom, top;
};

// Clamps before converting so huge or infinite projections never overflow.
FACE_GCN_HOST_DEVICE inline int32_t ClampToInt(float value, int32_t low, int32_t high) {
  if (!(value > static_cast<float>(low))) return low;  // also catches NaN
  if (value >= static_cast<float>(high)) return high;
  return static_cast<int32_t>(value);
}

FACE_GCN_HOST_DEVICE inline float Min3(float a, float b, float c) {
  const float ab = a < b ? a : b;
  return ab < c ? ab : c;
}

FACE_GCN_HOST_DEVICE inline float Max3(float a, float b, float c) {
  const float ab = a > b ? a : b;
  return ab > c ? ab : c;
}

FACE_GCN_HOST_DEVICE inline float FloorF(float v) {
  const float t = static_cast<float>(static_cast<int64_t>(v));
  return t > v ? t - 1.0f : t;
}

FACE_GCN_HOST_DEVICE inline float CeilF(float v) {
  const float t = static_cast<float>(static_cast<int64_t>(v));
  return t < v ? t + 1.0f : t;
}

// Pixel-space projection of a clip-space vertex (meaningful when w > 0).
FACE_GCN_HOST_DEVICE inline void ProjectVertex(const float* v, int32_t width, int32_t height,
                                               float* pixel_x, float* pixel_y) {
  *pixel_x = (v[0] / v[3] + 1.0f) * (0.5f * width);
  *pixel_y = (v[1] / v[3] + 1.0f) * (0.5f * height);
}

// Integer pixel range [floor(min), ceil(max)) of three projected coordinates,
// clamped to [0, size]. Clamped in float first so that huge values never
// overflow an int.
FACE_GCN_HOST_DEVICE inline void PixelRange(float a, float b, float c, int32_t size,
                                            int32_t* begin, int32_t* end) {
  const float limit = static_cast<float>(size);
  *begin = ClampToInt(FloorF(fmaxf(fminf(Min3(a, b, c), limit), -1.0f)), 0, size);
  *end = ClampToInt(CeilF(fmaxf(fminf(Max3(a, b, c), limit), -1.0f)), 0, size);
}

// Bounding box of a triangle from its corners' w and projections (px, py):
// empty when all w < 0, the whole image when the triangle crosses w = 0.
FACE_GCN_HOST_DEVICE inline void TriangleBounds(float w0, float w1, float w2, const float px[3],
                                                const float py[3], int32_t width,
                                                int32_t height, TriangleSetup* setup) {
  setup->left = setup->right = setup->bottom = setup->top = 0;
  if (w0 < 0 && w1 < 0 && w2 < 0) return;  // entirely behind the eye
  if (w0 > 0 && w1 > 0 && w2 > 0) {
    PixelRange(px[0], px[1], px[2], width, &setup->left, &setup->right);
    PixelRange(py[0], py[1], py[2], height, &setup->bottom, &setup->top);
  } else {
    // Crosses the w = 0 plane: the projection is unbounded, scan the whole image.
    setup->right = width;
    setup->top = height;
  }
}

// Edge-function matrix: the adjugate of M (rows x, y, w; columns corners),
// negated when det M < 0 so that both windings give non-negative values inside.
FACE_GCN_HOST_DEVICE inline void TriangleEdgeMatrix(const float* v0, const float* v1,
                                                    const float* v2, float m[9]) {
  const float a11 = v0[0], a12 = v1[0], a13 = v2[0];
  const float a21 = v0[1], a22 = v1[1], a23 = v2[1];
  const float a31 = v0[3], a32 = v1[3], a33 = v2[3];
  m[0] = a22 * a33 - a32 * a23;
  m[1] = a13 * a32 - a33 * a12;
  m[2] = a12 * a23 - a22 * a13;
  m[3] = a23 * a31 - a33 * a21;
  m[4] = a11 * a33 - a31 * a13;
  m[5] = a13 * a21 - a23 * a11;
  m[6] = a21 * a32 - a31 * a22;
  m[7] = a12 * a31 - a32 * a11;
  m[8] = a11 * a22 - a21 * a12;
  const float det = a11 * m[0] + a12 * m[3] + a13 * m[6];
  if (det < 0.0f) {
    for (int i = 0; i < 9; ++i) m[i] = -m[i];
  }
}

// Fills `setup` for the triangle with corners v0, v1, v2 (pointers to 4 floats).
FACE_GCN_HOST_DEVICE inline void SetUpTriangle(const float* v0, const float* v1,
                                               const float* v2, int32_t width,
                                               int32_t height, TriangleSetup* setup) {
  float px[3], py[3];
  ProjectVertex(v0, width, height, &px[0], &py[0]);
  ProjectVertex(v1, width, height, &px[1], &py[1]);
  ProjectVertex(v2, width, height, &px[2], &py[2]);
  TriangleBounds(v0[3], v1[3], v2[3], px, py, width, height, setup);
  if (setup->right > setup->left && setup->top > setup->bottom) {
    TriangleEdgeMatrix(v0, v1, v2, setup->m_inv);
  }
}

// NDC coordinate of the centre of pixel `index` along an axis of `size` pixels.
FACE_GCN_HOST_DEVICE inline float PixelCenterNdc(int32_t index, int32_t size) {
  const float half = 0.5f * size;
  return static_cast<float>((index + 0.5) / half - 1.0);
}

// The rest of ShadeFragment, for a pixel centre found inside with edge values
// e0, e1, e2, given the corners' clip z and w: perspective-correct
// barycentrics and NDC depth; false when the depth is clipped.
FACE_GCN_HOST_DEVICE inline bool ShadeInside(float e0, float e1, float e2, const float z[3],
                                             const float w[3], float bary[3], float* depth) {
  const float one_over_w = e0 + e1 + e2;
  const float b0 = e0 / one_over_w, b1 = e1 / one_over_w, b2 = e2 / one_over_w;
  const float clip_z = b0 * z[0] + b1 * z[1] + b2 * z[2];
  const float clip_w = b0 * w[0] + b1 * w[1] + b2 * w[2];
  const float ndc_z = clip_z / clip_w;
  if (!(ndc_z >= -1.0f && ndc_z <= 1.0f)) return false;  // near/far clipping (and NaN)
  bary[0] = b0;
  bary[1] = b1;
  bary[2] = b2;
  *depth = ndc_z;
  return true;
}

// Tests the pixel centre (px, py) against the triangle. On success writes the
// perspective-correct barycentrics and the NDC depth and returns true; the
// caller still applies the depth test against its buffer.
FACE_GCN_HOST_DEVICE inline bool ShadeFragment(const TriangleSetup& setup, const float* v0,
                                               const float* v1, const float* v2, float px,
                                               float py, float bary[3], float* depth) {
  const float* m = setup.m_inv;
  const float e0 = m[0] * px + m[1] * py + m[2];
  const float e1 = m[3] * px + m[4] * py + m[5];
  const float e2 = m[6] * px + m[7] * py + m[8];
  if (!(e0 >= 0 && e1 >= 0 && e2 >= 0)) return false;
  if (!(e0 > 0 || e1 > 0 || e2 > 0)) return false;
  const float z[3] = {v0[2], v1[2], v2[2]};
  const float w[3] = {v0[3], v1[3], v2[3]};
  return ShadeInside(e0, e1, e2, z, w, bary, depth);
}

// Runs fn(begin, end) over [0, total) split into shards; `cost` is a rough
// per-unit cost in cycles. Implementations must call fn on disjoint ranges
// covering [0, total); results never depend on how the range is split (but
// RasterizeImage gives each call its own image buffers: few shards are best).
using ParallelRunner =
    std::function<void(int64_t total, int64_t cost, const std::function<void(int64_t, int64_t)>& fn)>;

// Runs everything on the calling thread.
void RunSerially(int64_t total, int64_t cost, const std::function<void(int64_t, int64_t)>& fn);

// Rasterizes one image. vertices: [V, 4]; triangles: [T, 3] (indices already
// validated to lie in [0, V)); outputs: triangle_ids [H, W], barycentrics
// [H, W, 3], z_buffer [H, W], all overwritten. Deterministic for any runner.
void RasterizeImage(const float* vertices, const int32_t* triangles, int64_t triangle_count,
                    int32_t width, int32_t height, const ParallelRunner& runner,
                    int32_t* triangle_ids, float* barycentrics, float* z_buffer);

// Gradient for one image. Inputs as above plus the forward outputs and
// d_barycentrics [H, W, 3]; d_vertices [V, 4] is overwritten (z column 0).
// Pixels whose stored barycentrics sum to >= kDegenerateBarycentricSum get a
// gradient, with their barycentrics and derivatives recomputed in double from
// the pixel centre and the vertices. Returns false if such a pixel holds a
// triangle id outside [0, T).
bool RasterizeImageGrad(const float* vertices, int64_t vertex_count, const int32_t* triangles,
                        int64_t triangle_count, int32_t width, int32_t height,
                        const float* barycentrics, const int32_t* triangle_ids,
                        const float* d_barycentrics, const ParallelRunner& runner,
                        float* d_vertices);

}  // namespace raster
}  // namespace face_gcn

#endif  // FACE_GCN_RENDER_KERNELS_RASTERIZE_CORE_H_
