// CPU rasterization of one image on raw arrays (no TensorFlow); see rasterize_core.h.
//
// Work split: triangle setup runs in parallel over triangles; triangles are then
// binned into horizontal bands of kBandRows rows (each band keeps its triangles
// in increasing index order) and bands are rasterized in parallel. Every pixel
// belongs to exactly one band and sees its triangles in index order, so the
// result equals the sequential loop's whatever the thread count.
#include "face_gcn/render/kernels/rasterize_core.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

namespace face_gcn {
namespace raster {

namespace {

constexpr int32_t kBandRows = 8;

// 1 + the largest vertex index used (the caller validated them).
int64_t VertexCountBound(const int32_t* triangles, int64_t triangle_count) {
  int32_t largest = -1;
  for (int64_t i = 0; i < 3 * triangle_count; ++i) largest = std::max(largest, triangles[i]);
  return static_cast<int64_t>(largest) + 1;
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
  std::fill(triangle_ids, triangle_ids + pixel_count, kEmptyTriangleId);
  std::fill(barycentrics, barycentrics + 3 * pixel_count, 0.0f);
  std::fill(z_buffer, z_buffer + pixel_count, kClearDepth);
  if (triangle_count == 0 || pixel_count == 0) return;

  // Project every vertex once (each is shared by about six triangles), then
  // set up the triangles; the edge matrix only for those that touch the image.
  const int64_t vertex_count = VertexCountBound(triangles, triangle_count);
  std::unique_ptr<float[]> projected(new float[2 * vertex_count]);
  runner(vertex_count, 40, [&](int64_t begin, int64_t end) {
    for (int64_t v = begin; v < end; ++v) {
      ProjectVertex(vertices + 4 * v, width, height, &projected[2 * v], &projected[2 * v + 1]);
    }
  });
  std::unique_ptr<TriangleSetup[]> setups(new TriangleSetup[triangle_count]);
  runner(triangle_count, 120, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int32_t* tri = triangles + 3 * t;
      const float* v0 = vertices + 4 * static_cast<int64_t>(tri[0]);
      const float* v1 = vertices + 4 * static_cast<int64_t>(tri[1]);
      const float* v2 = vertices + 4 * static_cast<int64_t>(tri[2]);
      const float px[3] = {projected[2 * tri[0]], projected[2 * tri[1]], projected[2 * tri[2]]};
      const float py[3] = {projected[2 * tri[0] + 1], projected[2 * tri[1] + 1],
                           projected[2 * tri[2] + 1]};
      TriangleSetup& s = setups[t];
      TriangleBounds(v0[3], v1[3], v2[3], px, py, width, height, &s);
      if (s.right > s.left && s.top > s.bottom) TriangleEdgeMatrix(v0, v1, v2, s.m_inv);
    }
  });

  // Bin triangles into bands: counting pass, then fill (keeps index order).
  const int32_t band_count = (height + kBandRows - 1) / kBandRows;
  std::vector<int64_t> band_start(band_count + 1, 0);
  for (int64_t t = 0; t < triangle_count; ++t) {
    const TriangleSetup& s = setups[t];
    if (s.right <= s.left || s.top <= s.bottom) continue;
    const int32_t first = s.bottom / kBandRows, last = (s.top - 1) / kBandRows;
    for (int32_t band = first; band <= last; ++band) ++band_start[band + 1];
  }
  for (int32_t band = 0; band < band_count; ++band) band_start[band + 1] += band_start[band];
  std::vector<int32_t> band_triangles(band_start[band_count]);
  std::vector<int64_t> cursor(band_start.begin(), band_start.end() - 1);
  for (int64_t t = 0; t < triangle_count; ++t) {
    const TriangleSetup& s = setups[t];
    if (s.right <= s.left || s.top <= s.bottom) continue;
    const int32_t first = s.bottom / kBandRows, last = (s.top - 1) / kBandRows;
    for (int32_t band = first; band <= last; ++band) {
      band_triangles[cursor[band]++] = static_cast<int32_t>(t);
    }
  }

  const int64_t mean_per_band = band_start[band_count] / band_count + 1;
  runner(band_count, 400 * mean_per_band, [&](int64_t band_begin, int64_t band_end) {
    for (int64_t band = band_begin; band < band_end; ++band) {
      const int32_t row_begin = static_cast<int32_t>(band) * kBandRows;
      const int32_t row_end = std::min(height, row_begin + kBandRows);
      for (int64_t k = band_start[band]; k < band_start[band + 1]; ++k) {
        const int32_t t = band_triangles[k];
        const TriangleSetup& s = setups[t];
        const int32_t* tri = triangles + 3 * static_cast<int64_t>(t);
        const float* v0 = vertices + 4 * static_cast<int64_t>(tri[0]);
        const float* v1 = vertices + 4 * static_cast<int64_t>(tri[1]);
        const float* v2 = vertices + 4 * static_cast<int64_t>(tri[2]);
        const int32_t y0 = std::max(row_begin, s.bottom), y1 = std::min(row_end, s.top);
        for (int32_t iy = y0; iy < y1; ++iy) {
          const float py = PixelCenterNdc(iy, height);
          for (int32_t ix = s.left; ix < s.right; ++ix) {
            const float px = PixelCenterNdc(ix, width);
            float bary[3];
            float depth;
            if (!ShadeFragment(s, v0, v1, v2, px, py, bary, &depth)) continue;
            const int64_t pixel = static_cast<int64_t>(iy) * width + ix;
            if (depth > z_buffer[pixel]) continue;
            z_buffer[pixel] = depth;
            triangle_ids[pixel] = t;
            barycentrics[3 * pixel + 0] = bary[0];
            barycentrics[3 * pixel + 1] = bary[1];
            barycentrics[3 * pixel + 2] = bary[2];
          }
        }
      }
    }
  });
}

bool RasterizeImageGrad(const float* vertices, int64_t vertex_count, const int32_t* triangles,
                        int64_t triangle_count, int32_t width, int32_t height,
                        const float* barycentrics, const int32_t* triangle_ids,
                        const float* d_barycentrics, const ParallelRunner& runner,
                        float* d_vertices) {
  const int64_t pixel_count = static_cast<int64_t>(width) * height;
  std::fill(d_vertices, d_vertices + 4 * vertex_count, 0.0f);
  // Phase 1 (parallel): each pixel's 9 partials; phase 2 (serial, pixel order):
  // scatter-add into the vertices, so the sum order never depends on threads.
  std::vector<float> partials(9 * pixel_count, 0.0f);
  std::vector<uint8_t> used(pixel_count, 0);
  std::atomic<bool> bad_id(false);
  runner(pixel_count, 100, [&](int64_t begin, int64_t end) {
    for (int64_t pixel = begin; pixel < end; ++pixel) {
      const float* b = barycentrics + 3 * pixel;
      if (!(b[0] + b[1] + b[2] >= kDegenerateBarycentricSum)) continue;
      const int32_t t = triangle_ids[pixel];
      if (t < 0 || t >= triangle_count) {
        bad_id.store(true, std::memory_order_relaxed);
        continue;
      }
      const int32_t* tri = triangles + 3 * static_cast<int64_t>(t);
      if (PixelGradient(vertices + 4 * static_cast<int64_t>(tri[0]),
                        vertices + 4 * static_cast<int64_t>(tri[1]),
                        vertices + 4 * static_cast<int64_t>(tri[2]), b,
                        d_barycentrics + 3 * pixel, &partials[9 * pixel])) {
        used[pixel] = 1;
      }
    }
  });
  if (bad_id.load()) return false;
  for (int64_t pixel = 0; pixel < pixel_count; ++pixel) {
    if (!used[pixel]) continue;
    const int32_t* tri = triangles + 3 * static_cast<int64_t>(triangle_ids[pixel]);
    const float* p = &partials[9 * pixel];
    for (int j = 0; j < 3; ++j) {
      float* d = d_vertices + 4 * static_cast<int64_t>(tri[j]);
      d[0] += p[3 * j + 0];  // x
      d[1] += p[3 * j + 1];  // y
      d[3] += p[3 * j + 2];  // w (z gets no gradient)
    }
  }
  return true;
}

}  // namespace raster
}  // namespace face_gcn
