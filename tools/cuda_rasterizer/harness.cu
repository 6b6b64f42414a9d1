// Standalone check of the CUDA rasterizer against the CPU implementation, no
// TensorFlow: both come from face_gcn/render/kernels (rasterize_gpu.cu.h and
// rasterize_core.cc). Builds random triangle soups and a face-sized grid mesh,
// reports mismatching triangle ids and the largest barycentric / depth
// differences, and times both backends.
//
// Usage: ./rasterizer_harness [width height batch]   (defaults 224 224 4)
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "face_gcn/render/kernels/rasterize_core.h"
#include "face_gcn/render/kernels/rasterize_gpu.cu.h"

namespace raster = face_gcn::raster;

#define CHECK_CUDA(call)                                                        \
  do {                                                                          \
    const cudaError_t status_ = (call);                                         \
    if (status_ != cudaSuccess) {                                               \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__,                   \
                   cudaGetErrorString(status_));                                \
      std::exit(2);                                                             \
    }                                                                           \
  } while (0)

struct Mesh {
  std::vector<float> vertices;    // [B, V, 4]
  std::vector<int32_t> triangles; // [T, 3]
  int64_t vertex_count = 0;
};

// Random soup: triangles anywhere (some partly behind the eye, some clipped).
Mesh RandomSoup(int batch, int triangle_count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> xy(-1.2f, 1.2f), z(-1.1f, 1.1f), w(0.5f, 2.0f);
  Mesh mesh;
  mesh.vertex_count = 3 * triangle_count;
  for (int b = 0; b < batch; ++b) {
    for (int64_t v = 0; v < mesh.vertex_count; ++v) {
      const float wv = (v % 97 == 0) ? -0.5f : w(rng);
      mesh.vertices.insert(mesh.vertices.end(), {xy(rng) * wv, xy(rng) * wv, z(rng) * wv, wv});
    }
  }
  for (int t = 0; t < triangle_count; ++t) {
    mesh.triangles.insert(mesh.triangles.end(), {3 * t, 3 * t + 1, 3 * t + 2});
  }
  return mesh;
}

// Face-sized grid (n x n vertices) on a dome, perspective camera at z = 10.
Mesh FaceGrid(int batch, int n) {
  Mesh mesh;
  mesh.vertex_count = static_cast<int64_t>(n) * n;
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        const float x = -1.0f + 2.0f * j / (n - 1) + 0.01f * b, y = -1.0f + 2.0f * i / (n - 1);
        const float h = 0.6f * std::sqrt(std::max(0.0f, 1.2f - x * x - y * y));
        const float w = 10.0f - h;
        mesh.vertices.insert(mesh.vertices.end(),
                             {9.0f * 0.85f * x, 9.0f * y, (w - 10.0f) * 0.5f + 0.1f * w, w});
      }
    }
  }
  for (int i = 0; i + 1 < n; ++i) {
    for (int j = 0; j + 1 < n; ++j) {
      const int32_t a = i * n + j, b = a + 1, c = a + n + 1, d = a + n;
      mesh.triangles.insert(mesh.triangles.end(), {a, b, c, a, c, d});
    }
  }
  return mesh;
}

void RunThreads(int64_t total, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t workers = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  const int64_t chunk = (total + workers - 1) / workers;
  for (int64_t begin = 0; begin < total; begin += chunk) {
    threads.emplace_back(fn, begin, std::min(total, begin + chunk));
  }
  for (auto& thread : threads) thread.join();
}

bool Compare(const char* name, const Mesh& mesh, int batch, int width, int height) {
  const int64_t pixels = static_cast<int64_t>(width) * height;
  const int64_t triangle_count = mesh.triangles.size() / 3;
  std::vector<int32_t> cpu_ids(batch * pixels), gpu_ids(batch * pixels);
  std::vector<float> cpu_bary(3 * batch * pixels), gpu_bary(3 * batch * pixels);
  std::vector<float> cpu_z(batch * pixels), gpu_z(batch * pixels);

  const auto cpu_start = std::chrono::steady_clock::now();
  for (int b = 0; b < batch; ++b) {
    raster::RasterizeImage(mesh.vertices.data() + b * mesh.vertex_count * 4,
                           mesh.triangles.data(), triangle_count, width, height, RunThreads,
                           cpu_ids.data() + b * pixels, cpu_bary.data() + 3 * b * pixels,
                           cpu_z.data() + b * pixels);
  }
  const double cpu_ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - cpu_start).count();

  float *d_vertices, *d_bary, *d_z;
  int32_t *d_triangles, *d_ids;
  unsigned long long* d_keys;
  CHECK_CUDA(cudaMalloc(&d_vertices, mesh.vertices.size() * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&d_triangles, mesh.triangles.size() * sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&d_bary, cpu_bary.size() * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&d_z, cpu_z.size() * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&d_ids, cpu_ids.size() * sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&d_keys, batch * pixels * sizeof(unsigned long long)));
  CHECK_CUDA(cudaMemcpy(d_vertices, mesh.vertices.data(), mesh.vertices.size() * sizeof(float),
                        cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d_triangles, mesh.triangles.data(),
                        mesh.triangles.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  float gpu_ms = 0.0f;
  for (int repeat = 0; repeat < 4; ++repeat) {  // first run warms up
    CHECK_CUDA(cudaEventRecord(start));
    CHECK_CUDA(raster::gpu::LaunchRasterize(d_vertices, batch, mesh.vertex_count, d_triangles,
                                            triangle_count, width, height, d_keys, d_ids,
                                            d_bary, d_z, nullptr));
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaEventElapsedTime(&gpu_ms, start, stop));
  }
  CHECK_CUDA(cudaMemcpy(gpu_ids.data(), d_ids, gpu_ids.size() * sizeof(int32_t),
                        cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(gpu_bary.data(), d_bary, gpu_bary.size() * sizeof(float),
                        cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(gpu_z.data(), d_z, gpu_z.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (void* p : {static_cast<void*>(d_vertices), static_cast<void*>(d_triangles),
                  static_cast<void*>(d_bary), static_cast<void*>(d_z), static_cast<void*>(d_ids),
                  static_cast<void*>(d_keys)}) {
    CHECK_CUDA(cudaFree(p));
  }

  int64_t id_mismatches = 0, covered = 0;
  double max_bary = 0.0, max_z = 0.0;
  for (int64_t i = 0; i < batch * pixels; ++i) {
    covered += cpu_ids[i] >= 0;
    if (cpu_ids[i] != gpu_ids[i]) {
      ++id_mismatches;
      continue;
    }
    for (int k = 0; k < 3; ++k) {
      max_bary = std::max(max_bary, std::fabs(double(cpu_bary[3 * i + k]) - gpu_bary[3 * i + k]));
    }
    max_z = std::max(max_z, std::fabs(double(cpu_z[i]) - gpu_z[i]));
  }
  std::printf("%-10s %5dx%-5d B=%-3d T=%-7lld covered %5.1f%%  id mismatches %lld  "
              "max|dbary| %.3g  max|dz| %.3g  CPU %.2f ms (%u threads)  GPU %.3f ms\n",
              name, width, height, batch, static_cast<long long>(triangle_count),
              100.0 * covered / (batch * pixels), static_cast<long long>(id_mismatches),
              max_bary, max_z, cpu_ms, std::max(1u, std::thread::hardware_concurrency()), gpu_ms);
  return id_mismatches == 0 && max_bary == 0.0 && max_z == 0.0;
}

int main(int argc, char** argv) {
  const int width = argc > 1 ? std::atoi(argv[1]) : 224;
  const int height = argc > 2 ? std::atoi(argv[2]) : 224;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 4;
  bool exact = true;
  exact &= Compare("soup-200", RandomSoup(batch, 200, 1), batch, width, height);
  exact &= Compare("soup-5000", RandomSoup(batch, 5000, 2), batch, width, height);
  exact &= Compare("face-grid", FaceGrid(batch, 189), batch, width, height);
  exact &= Compare("face-512", FaceGrid(batch, 189), batch, 512, 512);
  std::printf(exact ? "GPU output equals CPU output bit for bit.\n"
                    : "GPU and CPU outputs differ (see above).\n");
  return exact ? 0 : 1;
}
