// CPU rasterization of one image on raw arrays (no TensorFlow); see rasterize_core.h.
//
// Forward: triangles are taken N (4 or 8) at a time, one per SIMD lane: bounding
// boxes, edge matrices and the inside test at the pixel centres of each box
// (up to 4 x 4 pixels) are computed side by side with the scalar code's
// arithmetic, and only the pixels found inside are shaded, in triangle index
// order; larger boxes are scanned a row of N pixels at a time. In parallel,
// each call of the runner rasterizes one contiguous range of triangles into
// its own buffers, merged in range order afterwards (a fragment replaces the
// merged one when its depth is <= the stored one): exactly the sequential
// loop's result (minimum depth, ties to the highest index) for any split.
//
// Backward: the covered pixels of each block of rows, N at a time in double,
// in parallel over blocks; the partials are summed into the vertices in pixel
// order.
//
// The SIMD code uses GCC / Clang vector extensions (lane-wise IEEE arithmetic,
// so each lane gives the scalar code's bits). On x86-64 the hot loops are
// compiled twice, for the baseline ISA (4 lanes) and for AVX2 (8 lanes; no FMA,
// so the same bits), and picked at run time.
#include "face_gcn/render/kernels/rasterize_core.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

// -DFACE_GCN_NO_AVX2 / -DFACE_GCN_NO_SHUFFLEVECTOR build the code paths other
// CPUs and older compilers take (tests/render/test_simd_paths.py does).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(FACE_GCN_NO_AVX2)
#define FACE_GCN_AVX2_CLONE 1
#endif
#if (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)) && \
    !defined(FACE_GCN_NO_SHUFFLEVECTOR)
#define FACE_GCN_HAS_SHUFFLEVECTOR 1
#endif

#define FACE_GCN_INLINE inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
// The helpers taking or returning 32-byte vectors are always inlined: no call
// crosses the baseline / AVX2 boundary with them.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace face_gcn {
namespace raster {

namespace {

// N lanes of floats, int32s and doubles: 4 for the baseline x86-64 / NEON
// build, 8 for the AVX2 one.
template <int N>
struct Lanes {
  typedef float Float __attribute__((vector_size(4 * N)));
  typedef int32_t Int __attribute__((vector_size(4 * N)));
  typedef double Double __attribute__((vector_size(8 * N)));
};
typedef Lanes<4>::Float Float4;
typedef Lanes<4>::Int Int4;
typedef float Float2 __attribute__((vector_size(8)));

// Boxes up to kMaxSide x kMaxSide pixels are tested side by side (2 x 2 or
// kMaxSide x kMaxSide pixel centres per lane); larger ones a row at a time.
constexpr int kMaxSide = 4;
// Extra entries past the end of the pixel-centre tables the loads may touch.
constexpr int kCentrePadding = 8;
// Floats per covered pixel in the backward pass: dL/d(x, y, w) of 3 corners.
constexpr int kPartials = 9;
// Rows per parallel work item of the backward pass and the merge.
constexpr int32_t kBlockRows = 16;
// Units of triangles the forward pass hands to the runner.
constexpr int64_t kTriangleChunks = 64;

template <typename V>
FACE_GCN_INLINE V Splat(float value) {
  return V{} + value;
}

template <typename F, typename I>
FACE_GCN_INLINE F Select(I mask, F a, F b) {
  return reinterpret_cast<F>((mask & reinterpret_cast<I>(a)) | (~mask & reinterpret_cast<I>(b)));
}

// Two floats from `low` and two from `high` (register shuffles: loading a
// vector just stored in parts would stall on store forwarding).
FACE_GCN_INLINE Float4 Join(const float* low, Float2 high) {
  Float2 first;
  std::memcpy(&first, low, sizeof(first));
#if FACE_GCN_HAS_SHUFFLEVECTOR
  return __builtin_shufflevector(first, high, 0, 1, 2, 3);
#else
  return Float4{first[0], first[1], high[0], high[1]};
#endif
}

// One bit per lane of a comparison result (lanes -1 or 0).
FACE_GCN_INLINE uint32_t LaneBits(Int4 mask) {
#if defined(__SSE2__)
  return static_cast<uint32_t>(_mm_movemask_ps(reinterpret_cast<__m128>(mask)));
#else
  uint32_t bits = 0;
  for (int lane = 0; lane < 4; ++lane) bits |= static_cast<uint32_t>(mask[lane] & 1) << lane;
  return bits;
#endif
}

FACE_GCN_INLINE uint32_t LaneBits(Lanes<8>::Int mask) {
#if FACE_GCN_HAS_SHUFFLEVECTOR
  const Int4 low = __builtin_shufflevector(mask, mask, 0, 1, 2, 3);
  const Int4 high = __builtin_shufflevector(mask, mask, 4, 5, 6, 7);
#else
  const Int4 low = {mask[0], mask[1], mask[2], mask[3]};
  const Int4 high = {mask[4], mask[5], mask[6], mask[7]};
#endif
  return LaneBits(low) | LaneBits(high) << 4;
}

// Columns of N rows of four floats: out[k][lane] = rows[lane][k].
FACE_GCN_INLINE void Transpose(const Float4 rows[4], Float4 out[4]) {
#if FACE_GCN_HAS_SHUFFLEVECTOR
  const Float4 ab_low = __builtin_shufflevector(rows[0], rows[1], 0, 4, 1, 5);
  const Float4 ab_high = __builtin_shufflevector(rows[0], rows[1], 2, 6, 3, 7);
  const Float4 cd_low = __builtin_shufflevector(rows[2], rows[3], 0, 4, 1, 5);
  const Float4 cd_high = __builtin_shufflevector(rows[2], rows[3], 2, 6, 3, 7);
  out[0] = __builtin_shufflevector(ab_low, cd_low, 0, 1, 4, 5);
  out[1] = __builtin_shufflevector(ab_low, cd_low, 2, 3, 6, 7);
  out[2] = __builtin_shufflevector(ab_high, cd_high, 0, 1, 4, 5);
  out[3] = __builtin_shufflevector(ab_high, cd_high, 2, 3, 6, 7);
#else
  for (int lane = 0; lane < 4; ++lane) {
    for (int k = 0; k < 4; ++k) out[k][lane] = rows[lane][k];
  }
#endif
}

FACE_GCN_INLINE void Transpose(const Float4 rows[8], Lanes<8>::Float out[4]) {
#if FACE_GCN_HAS_SHUFFLEVECTOR
  typedef Lanes<8>::Float Float8;
  // Rows i and i + 4 side by side, then a 4 x 4 transpose in each half.
  const Float8 a = __builtin_shufflevector(rows[0], rows[4], 0, 1, 2, 3, 4, 5, 6, 7);
  const Float8 b = __builtin_shufflevector(rows[1], rows[5], 0, 1, 2, 3, 4, 5, 6, 7);
  const Float8 c = __builtin_shufflevector(rows[2], rows[6], 0, 1, 2, 3, 4, 5, 6, 7);
  const Float8 d = __builtin_shufflevector(rows[3], rows[7], 0, 1, 2, 3, 4, 5, 6, 7);
  const Float8 ab_low = __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13);
  const Float8 ab_high = __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15);
  const Float8 cd_low = __builtin_shufflevector(c, d, 0, 8, 1, 9, 4, 12, 5, 13);
  const Float8 cd_high = __builtin_shufflevector(c, d, 2, 10, 3, 11, 6, 14, 7, 15);
  out[0] = __builtin_shufflevector(ab_low, cd_low, 0, 1, 8, 9, 4, 5, 12, 13);
  out[1] = __builtin_shufflevector(ab_low, cd_low, 2, 3, 10, 11, 6, 7, 14, 15);
  out[2] = __builtin_shufflevector(ab_high, cd_high, 0, 1, 8, 9, 4, 5, 12, 13);
  out[3] = __builtin_shufflevector(ab_high, cd_high, 2, 3, 10, 11, 6, 7, 14, 15);
#else
  for (int lane = 0; lane < 8; ++lane) {
    for (int k = 0; k < 4; ++k) out[k][lane] = rows[lane][k];
  }
#endif
}

// Clip x, y, z, w of one corner of N triangles (or pixels' triangles).
template <int N>
FACE_GCN_INLINE void LoadCorners(const float* vertices, const int32_t* const tri[N], int corner,
                                 typename Lanes<N>::Float out[4]) {
  Float4 rows[N];
  for (int lane = 0; lane < N; ++lane) {
    std::memcpy(&rows[lane], vertices + 4 * static_cast<int64_t>(tri[lane][corner]),
                sizeof(Float4));
  }
  Transpose(rows, out);
}

// Rows of adj(M), M = [x; y; w] (columns = corners), lane by lane in the header's
// TriangleEdgeMatrix order (float lanes for the forward pass, double for the
// gradient); returns det M.
template <typename V>
FACE_GCN_INLINE V AdjugateRows(const V x[3], const V y[3], const V w[3], V m[9]) {
  m[0] = y[1] * w[2] - w[1] * y[2];
  m[1] = x[2] * w[1] - w[2] * x[1];
  m[2] = x[1] * y[2] - y[1] * x[2];
  m[3] = y[2] * w[0] - w[2] * y[0];
  m[4] = x[0] * w[2] - w[0] * x[2];
  m[5] = x[2] * y[0] - y[2] * x[0];
  m[6] = y[0] * w[1] - w[0] * y[1];
  m[7] = x[1] * w[0] - w[1] * x[0];
  m[8] = x[0] * y[1] - y[0] * x[1];
  return x[0] * m[0] + x[1] * m[3] + x[2] * m[6];
}

// PixelRange lane by lane: fminf(x, size) and fmaxf(x, -1) as selects (a NaN
// goes to size, as with fminf), floor and ceil by truncation (exact on
// [-1, size]), then the clamp at 0.
template <typename F, typename I>
FACE_GCN_INLINE void PixelRangeV(F a, F b, F c, int32_t size, I* begin, I* end) {
  const F limit = Splat<F>(static_cast<float>(size)), minus_one = Splat<F>(-1.0f);
  const F ab_low = Select(a < b, a, b), ab_high = Select(a > b, a, b);
  F low = Select(ab_low < c, ab_low, c), high = Select(ab_high > c, ab_high, c);
  low = Select(low < limit, low, limit);
  high = Select(high < limit, high, limit);
  low = Select(low > minus_one, low, minus_one);
  high = Select(high > minus_one, high, minus_one);
  const I low_int = __builtin_convertvector(low, I);
  const I high_int = __builtin_convertvector(high, I);
  // A true comparison is -1 in a lane.
  const I floor_low = low_int + (__builtin_convertvector(low_int, F) > low);
  const I ceil_high = high_int - (__builtin_convertvector(high_int, F) < high);
  *begin = floor_low & (floor_low > 0);
  *end = ceil_high & (ceil_high > 0);
}

// Output buffers of one image (or of one range's partial image).
struct Buffers {
  int32_t* ids;
  float* barycentrics;
  float* z;
};

void ClearBuffers(const Buffers& out, int64_t begin, int64_t end) {
  std::fill(out.ids + begin, out.ids + end, kEmptyTriangleId);
  std::fill(out.barycentrics + 3 * begin, out.barycentrics + 3 * end, 0.0f);
  std::fill(out.z + begin, out.z + end, kClearDepth);
}

// Everything the triangle loop of one image reads.
struct Scene {
  const float* vertices;
  const int32_t* triangles;
  const float* centre_x;  // NDC pixel centres, kCentrePadding entries past the image
  const float* centre_y;
  int32_t width, height;
};

// Shades pixel (ix, iy), found inside triangle t (corners' clip z and w) with
// edge values e, and applies the depth test.
FACE_GCN_INLINE void Commit(const Scene& scene, int32_t t, const float z[3], const float w[3],
                            int32_t ix, int32_t iy, float e0, float e1, float e2,
                            const Buffers& out) {
  float bary[3];
  float depth;
  if (!ShadeInside(e0, e1, e2, z, w, bary, &depth)) return;
  const int64_t pixel = static_cast<int64_t>(iy) * scene.width + ix;
  if (depth > out.z[pixel]) return;
  out.z[pixel] = depth;
  out.ids[pixel] = t;
  out.barycentrics[3 * pixel + 0] = bary[0];
  out.barycentrics[3 * pixel + 1] = bary[1];
  out.barycentrics[3 * pixel + 2] = bary[2];
}

// Rasterizes a triangle whose box is larger than kMaxSide on a side:
// the edge functions of N pixels of a row side by side, then the pixels inside.
template <int N>
FACE_GCN_INLINE void RasterizeLarge(const Scene& scene, const float m[9], int32_t t,
                                    const float z[3], const float w[3], int32_t left,
                                    int32_t right, int32_t bottom, int32_t top,
                                    const Buffers& out) {
  typedef typename Lanes<N>::Float FloatV;
  const FloatV zero = Splat<FloatV>(0.0f);
  for (int32_t iy = bottom; iy < top; ++iy) {
    const float py = scene.centre_y[iy];
    const float e0_row = m[1] * py, e1_row = m[4] * py, e2_row = m[7] * py;
    for (int32_t ix = left; ix < right; ix += N) {
      FloatV px;
      std::memcpy(&px, scene.centre_x + ix, sizeof(px));
      // m[0] * px + m[1] * py + m[2], as in ShadeFragment.
      const FloatV e0 = m[0] * px + e0_row + m[2];
      const FloatV e1 = m[3] * px + e1_row + m[5];
      const FloatV e2 = m[6] * px + e2_row + m[8];
      uint32_t bits = LaneBits((e0 >= zero) & (e1 >= zero) & (e2 >= zero) &
                               ((e0 > zero) | (e1 > zero) | (e2 > zero)));
      if (right - ix < N) bits &= (1u << (right - ix)) - 1;  // pixels past the box
      for (; bits; bits &= bits - 1) {
        const int lane = __builtin_ctz(bits);
        Commit(scene, t, z, w, ix + lane, iy, e0[lane], e1[lane], e2[lane], out);
      }
    }
  }
}

// N triangles side by side, one per lane: corners' clip z and w,
// TriangleEdgeMatrix's matrices and TriangleBounds' boxes.
template <int N>
struct Group {
  typename Lanes<N>::Float z[3], w[3], m[9];
  typename Lanes<N>::Int left, right, bottom, top;
  int64_t first;  // index of the triangle in lane 0
  int count;      // lanes in use
};

// Tests every lane's box (up to kSide x kSide pixels) one candidate pixel
// centre (dx, dy) of all lanes per pass, then shades the pixels found inside
// in triangle order; lanes with larger boxes go to RasterizeLarge in their turn.
template <int N, int kSide>
FACE_GCN_INLINE void ShadeGroup(const Scene& scene, const Group<N>& group, const Buffers& out) {
  typedef typename Lanes<N>::Float FloatV;
  typedef typename Lanes<N>::Int IntV;
  constexpr int kPerLane = kSide * kSide;
  const float* cx = scene.centre_x;
  const float* cy = scene.centre_y;
  const FloatV zero = Splat<FloatV>(0.0f);
  const FloatV* m = group.m;
  FloatV centre_x[4], centre_y[4];  // columns left + dx, rows bottom + dy
  Float4 rows[N];
  if (kSide == 2) {  // x, x + 1, y, y + 1 in one transpose
    for (int lane = 0; lane < N; ++lane) {
      Float2 y_pair;
      std::memcpy(&y_pair, cy + group.bottom[lane], sizeof(y_pair));
      rows[lane] = Join(cx + group.left[lane], y_pair);
    }
    Transpose(rows, centre_x);
    centre_y[0] = centre_x[2];
    centre_y[1] = centre_x[3];
  } else {
    for (int lane = 0; lane < N; ++lane) std::memcpy(&rows[lane], cx + group.left[lane], 16);
    Transpose(rows, centre_x);
    for (int lane = 0; lane < N; ++lane) std::memcpy(&rows[lane], cy + group.bottom[lane], 16);
    Transpose(rows, centre_y);
  }
  const IntV wide = group.right - group.left, tall = group.top - group.bottom;
  FloatV e[kPerLane][3];
  IntV hits = {};  // bit dy * kSide + dx per lane
  for (int dy = 0; dy < kSide; ++dy) {
    for (int dx = 0; dx < kSide; ++dx) {
      const int q = dy * kSide + dx;
      e[q][0] = m[0] * centre_x[dx] + m[1] * centre_y[dy] + m[2];
      e[q][1] = m[3] * centre_x[dx] + m[4] * centre_y[dy] + m[5];
      e[q][2] = m[6] * centre_x[dx] + m[7] * centre_y[dy] + m[8];
      const IntV inside = (wide > dx) & (tall > dy) & (e[q][0] >= zero) & (e[q][1] >= zero) &
                          (e[q][2] >= zero) &
                          ((e[q][0] > zero) | (e[q][1] > zero) | (e[q][2] > zero));
      hits |= inside & (1 << q);
    }
  }
  const IntV large = (wide > kSide) | (tall > kSide);
  const uint32_t large_lanes = kSide == 2 ? 0 : LaneBits(large);  // kSide 2: none (caller)
  hits &= ~large;
  // The hits as bits, lane-major (so in triangle order).
  constexpr int kLanesPerWord = 64 / kPerLane < N ? 64 / kPerLane : N;
  uint64_t words[N / kLanesPerWord] = {};
  for (int lane = 0; lane < N; ++lane) {
    words[lane / kLanesPerWord] |= static_cast<uint64_t>(hits[lane])
                                   << (kPerLane * (lane % kLanesPerWord));
  }
  const auto commit = [&](int lane, int q) {
    const float z[3] = {group.z[0][lane], group.z[1][lane], group.z[2][lane]};
    const float w[3] = {group.w[0][lane], group.w[1][lane], group.w[2][lane]};
    Commit(scene, static_cast<int32_t>(group.first + lane), z, w, group.left[lane] + q % kSide,
           group.bottom[lane] + q / kSide, e[q][0][lane], e[q][1][lane], e[q][2][lane], out);
  };
  if (large_lanes == 0) {
    for (int word = 0; word < N / kLanesPerWord; ++word) {
      for (uint64_t bits = words[word]; bits; bits &= bits - 1) {
        const int bit = __builtin_ctzll(bits);
        commit(kLanesPerWord * word + bit / kPerLane, bit % kPerLane);
      }
    }
    return;
  }
  for (int lane = 0; lane < group.count; ++lane) {
    if (large_lanes & (1u << lane)) {
      const float lane_m[9] = {m[0][lane], m[1][lane], m[2][lane], m[3][lane], m[4][lane],
                               m[5][lane], m[6][lane], m[7][lane], m[8][lane]};
      const float z[3] = {group.z[0][lane], group.z[1][lane], group.z[2][lane]};
      const float w[3] = {group.w[0][lane], group.w[1][lane], group.w[2][lane]};
      RasterizeLarge<N>(scene, lane_m, static_cast<int32_t>(group.first + lane), z, w,
                        group.left[lane], group.right[lane], group.bottom[lane], group.top[lane],
                        out);
      continue;
    }
    const uint64_t lane_hits = words[lane / kLanesPerWord] >> (kPerLane * (lane % kLanesPerWord));
    for (uint64_t bits = lane_hits & ((uint64_t{1} << kPerLane) - 1); bits; bits &= bits - 1) {
      commit(lane, __builtin_ctzll(bits));
    }
  }
}

// ShadeGroup for groups with a box larger than 2 x 2, out of line so that the
// common small case keeps the triangle loop compact; one per compiled variant.
__attribute__((noinline)) void ShadeWideGroup(const Scene& scene, const Group<4>& group,
                                              const Buffers& out) {
  ShadeGroup<4, kMaxSide>(scene, group, out);
}

#if FACE_GCN_AVX2_CLONE
__attribute__((noinline, target("avx2"))) void ShadeWideGroup(const Scene& scene,
                                                              const Group<8>& group,
                                                              const Buffers& out) {
  ShadeGroup<8, kMaxSide>(scene, group, out);
}
#endif

// Rasterizes triangles [begin, end) in index order into `out` (cleared), N at
// a time (Group).
template <int N>
FACE_GCN_INLINE void RasterizeRangeBody(const Scene& scene, int64_t begin, int64_t end,
                                        const Buffers& out) {
  typedef typename Lanes<N>::Float FloatV;
  typedef typename Lanes<N>::Int IntV;
  const FloatV zero = Splat<FloatV>(0.0f);
  IntV lane_index;
  for (int lane = 0; lane < N; ++lane) lane_index[lane] = lane;
  Group<N> group;
  for (int64_t first = begin; first < end; first += N) {
    group.first = first;
    group.count = static_cast<int>(std::min<int64_t>(N, end - first));
    // Corners: clip coordinates (missing lanes repeat the first triangle) and
    // their pixel projections (ProjectVertex).
    const int32_t* tri[N];
    for (int lane = 0; lane < N; ++lane) {
      tri[lane] = scene.triangles + 3 * (first + (lane < group.count ? lane : 0));
    }
    FloatV x[3], y[3], px[3], py[3];
    FloatV* z = group.z;
    FloatV* w = group.w;
    for (int c = 0; c < 3; ++c) {
      FloatV columns[4];
      LoadCorners<N>(scene.vertices, tri, c, columns);
      x[c] = columns[0];
      y[c] = columns[1];
      z[c] = columns[2];
      w[c] = columns[3];
      px[c] = (x[c] / w[c] + 1.0f) * (0.5f * scene.width);
      py[c] = (y[c] / w[c] + 1.0f) * (0.5f * scene.height);
    }
    // Boxes (TriangleBounds): the whole image when crossing w = 0, empty when
    // behind the eye or for a missing lane.
    const IntV present = lane_index < group.count;
    const IntV in_front = (w[0] > zero) & (w[1] > zero) & (w[2] > zero) & present;
    const IntV behind = (w[0] < zero) & (w[1] < zero) & (w[2] < zero);
    const IntV whole = ~in_front & ~behind & present;
    IntV right, top;
    PixelRangeV(px[0], px[1], px[2], scene.width, &group.left, &right);
    PixelRangeV(py[0], py[1], py[2], scene.height, &group.bottom, &top);
    group.left &= in_front;
    group.bottom &= in_front;
    group.right = (right & in_front) | (whole & scene.width);
    group.top = (top & in_front) | (whole & scene.height);
    // Edge matrices (TriangleEdgeMatrix): rows of adj(M), M = [x; y; w], sign of det M.
    FloatV* m = group.m;
    const FloatV det = AdjugateRows(x, y, w, m);
    const IntV flip = (det < zero) & INT32_MIN;
    for (int i = 0; i < 9; ++i) {
      m[i] = reinterpret_cast<FloatV>(reinterpret_cast<IntV>(m[i]) ^ flip);
    }
    const IntV wide = group.right - group.left, tall = group.top - group.bottom;
    if (LaneBits((wide > 2) | (tall > 2)) == 0) {
      ShadeGroup<N, 2>(scene, group, out);
    } else {
      ShadeWideGroup(scene, group, out);
    }
  }
}

// What the gradient of one image reads.
struct GradScene {
  const float* vertices;
  const int32_t* triangles;
  const int32_t* triangle_ids;
  const float* d_barycentrics;
  int32_t width, height;
};

// A covered pixel of the gradient.
struct Covered {
  int32_t ix, iy;
};

// The ix and iy of N covered pixels as two vectors.
FACE_GCN_INLINE void SplitCovered(const Covered* pixels, Int4* ix, Int4* iy) {
  Int4 a, b;
  std::memcpy(&a, pixels, sizeof(a));
  std::memcpy(&b, pixels + 2, sizeof(b));
#if FACE_GCN_HAS_SHUFFLEVECTOR
  *ix = __builtin_shufflevector(a, b, 0, 2, 4, 6);
  *iy = __builtin_shufflevector(a, b, 1, 3, 5, 7);
#else
  *ix = Int4{a[0], a[2], b[0], b[2]};
  *iy = Int4{a[1], a[3], b[1], b[3]};
#endif
}

FACE_GCN_INLINE void SplitCovered(const Covered* pixels, Lanes<8>::Int* ix, Lanes<8>::Int* iy) {
  Int4 ix_low, iy_low, ix_high, iy_high;
  SplitCovered(pixels, &ix_low, &iy_low);
  SplitCovered(pixels + 4, &ix_high, &iy_high);
#if FACE_GCN_HAS_SHUFFLEVECTOR
  *ix = __builtin_shufflevector(ix_low, ix_high, 0, 1, 2, 3, 4, 5, 6, 7);
  *iy = __builtin_shufflevector(iy_low, iy_high, 0, 1, 2, 3, 4, 5, 6, 7);
#else
  for (int lane = 0; lane < 4; ++lane) {
    (*ix)[lane] = ix_low[lane];
    (*ix)[4 + lane] = ix_high[lane];
    (*iy)[lane] = iy_low[lane];
    (*iy)[4 + lane] = iy_high[lane];
  }
#endif
}

// Partials dL/d(x, y, w) of the three corners (out[9 * i + 3 * corner + k])
// for the covered pixels pixels[0, count), N at a time, in double from
// the float inputs, the barycentrics included (the stored float ones lose
// digits to cancellation on small triangles). With M = [x; y; w] (corners as
// columns) and the pixel centre p = (px, py, 1): lambda = adj(M) p,
// b = lambda / sum(lambda), and for corner j and row k
// dL/dM[k][j] = -b_j * sum_i (g_i - g.b) * adj(M)[i][k] / det M.
// A singular pixel (det M or sum(lambda) zero) gets zeros.
template <int N>
FACE_GCN_INLINE void PixelGradientsBody(const GradScene& scene, const Covered* pixels,
                                        int64_t count, float* out) {
  typedef typename Lanes<N>::Float FloatV;
  typedef typename Lanes<N>::Int IntV;
  typedef typename Lanes<N>::Double DoubleV;
  for (int64_t first = 0; first < count; first += N) {
    const int lanes = static_cast<int>(std::min<int64_t>(N, count - first));
    const Covered* batch = pixels + first;
    Covered padded[N];
    if (lanes < N) {  // the last few: repeat the first
      for (int lane = 0; lane < N; ++lane) padded[lane] = batch[lane < lanes ? lane : 0];
      batch = padded;
    }
    IntV ix, iy;
    SplitCovered(batch, &ix, &iy);
    const IntV pixel = iy * scene.width + ix;
    const int32_t* tri[N];
    Float4 rows[N];
    for (int lane = 0; lane < N; ++lane) {
      tri[lane] = scene.triangles + 3 * static_cast<int64_t>(scene.triangle_ids[pixel[lane]]);
      const float* d = scene.d_barycentrics + 3 * static_cast<int64_t>(pixel[lane]);
      rows[lane] = Join(d, Float2{d[2], 0.0f});
    }
    FloatV upstream[4];
    Transpose(rows, upstream);
    DoubleV g[3];
    for (int c = 0; c < 3; ++c) g[c] = __builtin_convertvector(upstream[c], DoubleV);
    // Pixel centres in NDC.
    const DoubleV px = (__builtin_convertvector(ix, DoubleV) + 0.5) / (0.5 * scene.width) - 1.0;
    const DoubleV py = (__builtin_convertvector(iy, DoubleV) + 0.5) / (0.5 * scene.height) - 1.0;
    DoubleV x[3], y[3], w[3];
    for (int c = 0; c < 3; ++c) {
      FloatV columns[4];
      LoadCorners<N>(scene.vertices, tri, c, columns);
      x[c] = __builtin_convertvector(columns[0], DoubleV);
      y[c] = __builtin_convertvector(columns[1], DoubleV);
      w[c] = __builtin_convertvector(columns[3], DoubleV);
    }
    DoubleV adj[9];
    const DoubleV det = AdjugateRows(x, y, w, adj);
    const DoubleV l0 = adj[0] * px + adj[1] * py + adj[2];
    const DoubleV l1 = adj[3] * px + adj[4] * py + adj[5];
    const DoubleV l2 = adj[6] * px + adj[7] * py + adj[8];
    // Products of finite floats: no overflow, and zero only if a factor is.
    const DoubleV denominator = (l0 + l1 + l2) * det;
    const DoubleV scale = -1.0 / denominator;  // -1 / (sum(lambda) det M)
    const DoubleV gb = -(g[0] * l0 + g[1] * l1 + g[2] * l2) * det * scale;  // g.b
    const DoubleV r0 = g[0] - gb, r1 = g[1] - gb, r2 = g[2] - gb;
    const DoubleV c0 = l0 * scale, c1 = l1 * scale, c2 = l2 * scale;
    for (int k = 0; k < 3; ++k) {
      const DoubleV s = r0 * adj[k] + r1 * adj[3 + k] + r2 * adj[6 + k];
      const DoubleV d[3] = {c0 * s, c1 * s, c2 * s};
      for (int lane = 0; lane < lanes; ++lane) {
        float* o = out + kPartials * (first + lane);
        for (int j = 0; j < 3; ++j) {
          o[3 * j + k] = denominator[lane] != 0.0 ? static_cast<float>(d[j][lane]) : 0.0f;
        }
      }
    }
  }
}

// The two hot loops compiled for the baseline ISA (4 lanes) and, on x86-64,
// for AVX2 (8 lanes); RasterizeRange and PixelGradients pick the best one.
void RasterizeRangeBaseline(const Scene& scene, int64_t begin, int64_t end,
                            const Buffers& out) {
  RasterizeRangeBody<4>(scene, begin, end, out);
}

void PixelGradientsBaseline(const GradScene& scene, const Covered* pixels, int64_t count,
                            float* out) {
  PixelGradientsBody<4>(scene, pixels, count, out);
}

#if FACE_GCN_AVX2_CLONE
__attribute__((target("avx2"))) void RasterizeRangeAvx2(const Scene& scene, int64_t begin,
                                                        int64_t end, const Buffers& out) {
  RasterizeRangeBody<8>(scene, begin, end, out);
}

__attribute__((target("avx2"))) void PixelGradientsAvx2(const GradScene& scene,
                                                        const Covered* pixels, int64_t count,
                                                        float* out) {
  PixelGradientsBody<8>(scene, pixels, count, out);
}

const bool kHasAvx2 = (__builtin_cpu_init(), __builtin_cpu_supports("avx2"));
#endif

void RasterizeRange(const Scene& scene, int64_t begin, int64_t end, const Buffers& out) {
#if FACE_GCN_AVX2_CLONE
  if (kHasAvx2) return RasterizeRangeAvx2(scene, begin, end, out);
#endif
  RasterizeRangeBaseline(scene, begin, end, out);
}

void PixelGradients(const GradScene& scene, const Covered* pixels, int64_t count, float* out) {
#if FACE_GCN_AVX2_CLONE
  if (kHasAvx2) return PixelGradientsAvx2(scene, pixels, count, out);
#endif
  PixelGradientsBaseline(scene, pixels, count, out);
}

}  // namespace

void RunSerially(int64_t total, int64_t /*cost*/,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (total > 0) fn(0, total);
}

void RasterizeImage(const float* vertices, const int32_t* triangles, int64_t triangle_count,
                    int32_t width, int32_t height, const ParallelRunner& runner,
                    int32_t* triangle_ids, float* barycentrics, float* z_buffer) {
  const int64_t pixel_count = static_cast<int64_t>(width) * height;
  const Buffers image = {triangle_ids, barycentrics, z_buffer};
  if (triangle_count == 0 || pixel_count == 0) {
    ClearBuffers(image, 0, pixel_count);
    return;
  }

  std::unique_ptr<float[]> centre_x(new float[width + kCentrePadding]);
  std::unique_ptr<float[]> centre_y(new float[height + kCentrePadding]);
  for (int32_t ix = 0; ix < width + kCentrePadding; ++ix) centre_x[ix] = PixelCenterNdc(ix, width);
  for (int32_t iy = 0; iy < height + kCentrePadding; ++iy) {
    centre_y[iy] = PixelCenterNdc(iy, height);
  }
  const Scene scene = {vertices, triangles, centre_x.get(), centre_y.get(), width, height};

  // Each runner call rasterizes its range of chunks into its own buffers; the
  // call that starts at chunk 0 writes the image itself.
  const int64_t chunk_size = triangle_count / kTriangleChunks + 1;
  const int64_t chunk_count = (triangle_count + chunk_size - 1) / chunk_size;
  std::vector<std::unique_ptr<int32_t[]>> range_ids(chunk_count);
  std::vector<std::unique_ptr<float[]>> range_floats(chunk_count);
  // Rough cost in cycles: per triangle, plus clearing and shading per pixel.
  const int64_t chunk_cost = 40 * chunk_size + 30 * pixel_count / chunk_count;
  runner(chunk_count, chunk_cost, [&](int64_t chunk_begin, int64_t chunk_end) {
    Buffers out = image;
    if (chunk_begin > 0) {
      range_ids[chunk_begin].reset(new int32_t[pixel_count]);
      range_floats[chunk_begin].reset(new float[4 * pixel_count]);
      out = {range_ids[chunk_begin].get(), range_floats[chunk_begin].get(),
             range_floats[chunk_begin].get() + 3 * pixel_count};
    }
    ClearBuffers(out, 0, pixel_count);
    const int64_t end = std::min(triangle_count, chunk_end * chunk_size);
    RasterizeRange(scene, chunk_begin * chunk_size, end, out);
  });
  std::vector<Buffers> ranges;
  for (int64_t c = 1; c < chunk_count; ++c) {
    if (range_ids[c]) {
      ranges.push_back({range_ids[c].get(), range_floats[c].get(),
                        range_floats[c].get() + 3 * pixel_count});
    }
  }
  if (ranges.empty()) return;
  const int32_t block_count = (height + kBlockRows - 1) / kBlockRows;
  runner(block_count, 20 * kBlockRows * width * static_cast<int64_t>(ranges.size()),
         [&](int64_t block_begin, int64_t block_end) {
           const int64_t first = block_begin * kBlockRows * width;
           const int64_t last = std::min(pixel_count, block_end * kBlockRows * width);
           for (const Buffers& range : ranges) {
             for (int64_t pixel = first; pixel < last; ++pixel) {
               if (range.ids[pixel] < 0 || range.z[pixel] > image.z[pixel]) continue;
               image.ids[pixel] = range.ids[pixel];
               image.z[pixel] = range.z[pixel];
               std::copy(range.barycentrics + 3 * pixel, range.barycentrics + 3 * pixel + 3,
                         image.barycentrics + 3 * pixel);
             }
           }
         });
}

bool RasterizeImageGrad(const float* vertices, int64_t vertex_count, const int32_t* triangles,
                        int64_t triangle_count, int32_t width, int32_t height,
                        const float* barycentrics, const int32_t* triangle_ids,
                        const float* d_barycentrics, const ParallelRunner& runner,
                        float* d_vertices) {
  std::fill(d_vertices, d_vertices + 4 * vertex_count, 0.0f);
  const GradScene scene = {vertices, triangles, triangle_ids, d_barycentrics, width, height};
  // Per block of rows: its covered pixels and their partials, computed in
  // parallel and summed into the vertices in pixel order, so the sums never
  // depend on the split: as they come when one call covers the image, else
  // kept per block and summed block by block after all calls.
  const int32_t block_count = (height + kBlockRows - 1) / kBlockRows;
  std::vector<std::vector<Covered>> block_pixels(block_count);
  std::vector<std::vector<float>> block_partials(block_count);
  const auto scatter = [&](const Covered* pixels, int64_t count, const float* p) {
    for (int64_t i = 0; i < count; ++i, p += kPartials) {
      const int64_t pixel = static_cast<int64_t>(pixels[i].iy) * width + pixels[i].ix;
      const int32_t* tri = triangles + 3 * static_cast<int64_t>(triangle_ids[pixel]);
      for (int j = 0; j < 3; ++j) {
        float* d = d_vertices + 4 * static_cast<int64_t>(tri[j]);
        d[0] += p[3 * j + 0];  // x
        d[1] += p[3 * j + 1];  // y
        d[3] += p[3 * j + 2];  // w (z gets no gradient)
      }
    }
  };
  std::atomic<bool> bad_id(false);
  std::atomic<bool> scattered(false);
  runner(block_count, 40 * kBlockRows * width, [&](int64_t block_begin, int64_t block_end) {
    const bool whole_image = block_begin == 0 && block_end == block_count;
    std::vector<Covered> pixels;
    pixels.reserve(static_cast<size_t>(kBlockRows) * width);
    constexpr int64_t kBatch = 64;
    float batch_partials[kPartials * kBatch];
    for (int64_t block = block_begin; block < block_end; ++block) {
      pixels.clear();
      const int32_t row_end = std::min<int32_t>(height, (block + 1) * kBlockRows);
      for (int32_t iy = static_cast<int32_t>(block) * kBlockRows; iy < row_end; ++iy) {
        for (int32_t ix = 0; ix < width; ++ix) {
          const int64_t pixel = static_cast<int64_t>(iy) * width + ix;
          const float* b = barycentrics + 3 * pixel;
          if (!(b[0] + b[1] + b[2] >= kDegenerateBarycentricSum)) continue;
          const int32_t t = triangle_ids[pixel];
          if (t < 0 || t >= triangle_count) {
            bad_id.store(true, std::memory_order_relaxed);
            continue;
          }
          pixels.push_back({ix, iy});
        }
      }
      if (bad_id.load(std::memory_order_relaxed)) return;
      const int64_t count = static_cast<int64_t>(pixels.size());
      if (whole_image) {
        for (int64_t i = 0; i < count; i += kBatch) {
          const int64_t n = std::min(kBatch, count - i);
          PixelGradients(scene, pixels.data() + i, n, batch_partials);
          scatter(pixels.data() + i, n, batch_partials);
        }
      } else {
        block_partials[block].resize(kPartials * count);
        PixelGradients(scene, pixels.data(), count, block_partials[block].data());
        block_pixels[block] = pixels;
      }
    }
    if (whole_image) scattered.store(true, std::memory_order_relaxed);
  });
  if (bad_id.load()) return false;
  if (!scattered.load()) {
    for (int32_t block = 0; block < block_count; ++block) {
      scatter(block_pixels[block].data(), static_cast<int64_t>(block_pixels[block].size()),
              block_partials[block].data());
    }
  }
  return true;
}

}  // namespace raster
}  // namespace face_gcn
