// Runs the CPU rasterizer (rasterize_core.cc) on fixed pseudo-random scenes with
// several ways of splitting the work and prints, per scene and split,
// "scene split forward-digest gradient-digest covered=N ok=0|1".
// test_simd_paths.py builds it with each SIMD code path and expects the same
// digests everywhere.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "face_gcn/render/kernels/rasterize_core.h"

namespace {

using face_gcn::raster::ParallelRunner;

struct Scene {
  const char* name;
  int32_t width, height;
  std::vector<float> vertices;
  std::vector<int32_t> triangles;
};

// Triangles anywhere: large, tiny, crossing w = 0, behind the eye, past the
// near and far planes, and repeated (exact depth ties).
Scene Soup(uint32_t seed, int triangle_count, int32_t width, int32_t height) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  Scene scene{"soup", width, height, {}, {}};
  for (int t = 0; t < triangle_count; ++t) {
    const float w = 0.2f + 1.5f * (unit(rng) + 1.0f);
    const float cx = 1.2f * unit(rng) * w, cy = 1.2f * unit(rng) * w;
    const float size = (t % 3 == 0 ? 1.5f : 0.05f) * w;
    for (int corner = 0; corner < 3; ++corner) {
      const float corner_w = t % 17 == 0 ? unit(rng) : w + 0.3f * unit(rng);
      scene.vertices.insert(scene.vertices.end(), {cx + size * unit(rng), cy + size * unit(rng),
                                                   1.3f * unit(rng) * w, corner_w});
    }
    const int32_t first = 3 * t;
    if (t % 11 == 5) {  // the previous triangle again
      scene.triangles.insert(scene.triangles.end(), {first - 3, first - 2, first - 1});
    } else {
      scene.triangles.insert(scene.triangles.end(), {first, first + 1, first + 2});
    }
  }
  return scene;
}

// A bumpy grid of n x n vertices seen in perspective: mostly sub-pixel triangles.
Scene Grid(int n, int32_t width, int32_t height) {
  Scene scene{"grid", width, height, {}, {}};
  for (int row = 0; row < n; ++row) {
    for (int col = 0; col < n; ++col) {
      const float u = -0.8f + 1.6f * col / (n - 1), v = -0.9f + 1.8f * row / (n - 1);
      const float w = 1.0f + 0.3f * u + 0.1f * v;
      const float z = 0.3f * std::sin(7.0f * u) * std::cos(5.0f * v);
      scene.vertices.insert(scene.vertices.end(), {u * w, v * w, z * w, w});
    }
  }
  for (int row = 0; row + 1 < n; ++row) {
    for (int col = 0; col + 1 < n; ++col) {
      const int32_t a = row * n + col, b = a + 1, c = a + n + 1, d = a + n;
      scene.triangles.insert(scene.triangles.end(), {a, b, c, a, c, d});
    }
  }
  return scene;
}

// Splits [0, total) into `pieces` contiguous ranges (as even as possible) and
// runs them last first, on two threads.
ParallelRunner Splitter(int pieces) {
  return [pieces](int64_t total, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
    std::vector<std::pair<int64_t, int64_t>> ranges;
    for (int i = pieces - 1; i >= 0; --i) {
      const int64_t begin = total * i / pieces, end = total * (i + 1) / pieces;
      if (begin < end) ranges.push_back({begin, end});
    }
    std::thread other([&] {
      for (size_t i = 1; i < ranges.size(); i += 2) fn(ranges[i].first, ranges[i].second);
    });
    for (size_t i = 0; i < ranges.size(); i += 2) fn(ranges[i].first, ranges[i].second);
    other.join();
  };
}

uint64_t Digest(const void* data, size_t bytes, uint64_t hash = 1469598103934665603ull) {
  const unsigned char* c = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ c[i]) * 1099511628211ull;
  return hash;
}

void Run(const Scene& scene, const char* split, const ParallelRunner& runner) {
  const int64_t pixels = static_cast<int64_t>(scene.width) * scene.height;
  const int64_t vertex_count = static_cast<int64_t>(scene.vertices.size() / 4);
  const int64_t triangle_count = static_cast<int64_t>(scene.triangles.size() / 3);
  std::vector<int32_t> ids(pixels);
  std::vector<float> barycentrics(3 * pixels), z(pixels), d_vertices(scene.vertices.size());
  face_gcn::raster::RasterizeImage(scene.vertices.data(), scene.triangles.data(), triangle_count,
                                   scene.width, scene.height, runner, ids.data(),
                                   barycentrics.data(), z.data());
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> upstream(3 * pixels);
  for (float& value : upstream) value = normal(rng);
  const bool ok = face_gcn::raster::RasterizeImageGrad(
      scene.vertices.data(), vertex_count, scene.triangles.data(), triangle_count, scene.width,
      scene.height, barycentrics.data(), ids.data(), upstream.data(), runner, d_vertices.data());
  int64_t covered = 0;
  for (int32_t id : ids) covered += id >= 0;
  uint64_t forward = Digest(ids.data(), 4 * ids.size());
  forward = Digest(barycentrics.data(), 4 * barycentrics.size(), forward);
  forward = Digest(z.data(), 4 * z.size(), forward);
  std::printf("%s-%dx%d %s %016llx %016llx covered=%lld ok=%d\n", scene.name, scene.width,
              scene.height, split, static_cast<unsigned long long>(forward),
              static_cast<unsigned long long>(Digest(d_vertices.data(), 4 * d_vertices.size())),
              static_cast<long long>(covered), ok ? 1 : 0);
}

}  // namespace

int main() {
  const std::vector<Scene> scenes = {Soup(1, 301, 64, 48), Soup(2, 1000, 97, 131),
                                     Grid(120, 160, 144), Grid(45, 23, 17)};
  for (const Scene& scene : scenes) {
    Run(scene, "serial", face_gcn::raster::RunSerially);
    Run(scene, "split2", Splitter(2));
    Run(scene, "split7", Splitter(7));
  }
  return 0;
}
