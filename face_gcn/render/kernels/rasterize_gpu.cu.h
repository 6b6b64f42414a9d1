// CUDA rasterizer kernels (no TensorFlow): used by rasterize_triangles_gpu.cu.cc
// and by the standalone harness in tools/cuda_rasterizer/.
//
// Algorithm, deterministic:
//  1. every pixel's 64-bit key is cleared to all ones;
//  2. one thread per (image, triangle) walks the triangle's bounding box and,
//     for each covered pixel that passes clipping, atomicMin's the key
//     (order-preserving bits of the NDC depth) << 32 | (0xFFFFFFFF - id): the
//     nearest fragment wins and equal depths go to the higher triangle index,
//     exactly as the CPU kernel's sequential rule;
//  3. one thread per pixel decodes the winner and recomputes its barycentrics
//     and depth with the same float code as the CPU (rasterize_core.h).
// Compile with --fmad=false so that no multiply-add is fused and the GPU's
// float results equal the CPU's bit for bit.
#ifndef FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_CU_H_
#define FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_CU_H_

#if !defined(FACE_GCN_CUDA_HOST_EMULATION)  // the host shim supplies the CUDA names
#include <cuda_runtime.h>
#endif

#include <cstdint>

// Kernel launch: `FACE_GCN_CUDA_LAUNCH(kernel, grid, block, stream)(args...)`.
// Under nvcc it is the plain `kernel<<<grid, block, 0, stream>>>(args...)`. The
// host emulation (tools/cuda_rasterizer/cuda_host_shim.h, used by the CI test
// tests/render/test_cuda_kernel_emulation.py) defines it first to run the grid
// on the CPU, since g++ cannot parse the triple-chevron syntax.
#ifndef FACE_GCN_CUDA_LAUNCH
#define FACE_GCN_CUDA_LAUNCH(kernel, grid, block, stream) kernel<<<grid, block, 0, stream>>>
#endif

#include "face_gcn/render/kernels/rasterize_core.h"

namespace face_gcn {
namespace raster {
namespace gpu {

constexpr unsigned long long kEmptyKey = ~0ull;

// Maps a float to a uint32 whose unsigned order is the float order (-0 == +0).
__device__ inline uint32_t OrderedDepthBits(float depth) {
  const uint32_t bits = __float_as_uint(depth + 0.0f);  // turns -0 into +0
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__global__ void ClearKeys(unsigned long long* keys, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keys[i] = kEmptyKey;
  }
}

// Sets bit 0 of *flags for a vertex index outside [0, V), bit 1 for a
// non-finite vertex coordinate.
__global__ void ValidateMesh(const float* vertices, int64_t value_count, const int32_t* triangles,
                             int64_t index_count, int64_t vertex_count, int* flags) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < index_count;
       i += stride) {
    if (triangles[i] < 0 || triangles[i] >= vertex_count) atomicOr(flags, 1);
  }
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < value_count;
       i += stride) {
    if (!isfinite(vertices[i])) atomicOr(flags, 2);
  }
}

__global__ void RasterizeDepthKeys(const float* vertices, int64_t vertex_count,
                                   const int32_t* triangles, int64_t triangle_count,
                                   int64_t batch, int32_t width, int32_t height,
                                   unsigned long long* keys) {
  const int64_t item = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (item >= batch * triangle_count) return;
  const int64_t image = item / triangle_count;
  const int64_t t = item % triangle_count;
  const float* verts = vertices + image * vertex_count * 4;
  const int32_t* tri = triangles + 3 * t;
  const float* v0 = verts + 4 * static_cast<int64_t>(tri[0]);
  const float* v1 = verts + 4 * static_cast<int64_t>(tri[1]);
  const float* v2 = verts + 4 * static_cast<int64_t>(tri[2]);
  TriangleSetup setup;
  SetUpTriangle(v0, v1, v2, width, height, &setup);
  unsigned long long* image_keys = keys + image * static_cast<int64_t>(width) * height;
  const unsigned long long id_bits = 0xFFFFFFFFull - static_cast<unsigned long long>(t);
  for (int32_t iy = setup.bottom; iy < setup.top; ++iy) {
    const float py = PixelCenterNdc(iy, height);
    for (int32_t ix = setup.left; ix < setup.right; ++ix) {
      float bary[3];
      float depth;
      if (!ShadeFragment(setup, v0, v1, v2, PixelCenterNdc(ix, width), py, bary, &depth)) {
        continue;
      }
      const unsigned long long key =
          (static_cast<unsigned long long>(OrderedDepthBits(depth)) << 32) | id_bits;
      atomicMin(image_keys + static_cast<int64_t>(iy) * width + ix, key);
    }
  }
}

__global__ void ResolvePixels(const float* vertices, int64_t vertex_count,
                              const int32_t* triangles, int64_t batch, int32_t width,
                              int32_t height, const unsigned long long* keys,
                              int32_t* triangle_ids, float* barycentrics, float* z_buffer) {
  const int64_t pixels = static_cast<int64_t>(width) * height;
  const int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (index >= batch * pixels) return;
  const unsigned long long key = keys[index];
  float* bary = barycentrics + 3 * index;
  if (key == kEmptyKey) {
    triangle_ids[index] = kEmptyTriangleId;
    bary[0] = bary[1] = bary[2] = 0.0f;
    z_buffer[index] = kClearDepth;
    return;
  }
  const int64_t t = static_cast<int64_t>(0xFFFFFFFFull - (key & 0xFFFFFFFFull));
  const int64_t image = index / pixels;
  const int32_t iy = static_cast<int32_t>((index % pixels) / width);
  const int32_t ix = static_cast<int32_t>(index % width);
  const float* verts = vertices + image * vertex_count * 4;
  const int32_t* tri = triangles + 3 * t;
  const float* v0 = verts + 4 * static_cast<int64_t>(tri[0]);
  const float* v1 = verts + 4 * static_cast<int64_t>(tri[1]);
  const float* v2 = verts + 4 * static_cast<int64_t>(tri[2]);
  TriangleSetup setup;
  SetUpTriangle(v0, v1, v2, width, height, &setup);
  float depth = kClearDepth;
  ShadeFragment(setup, v0, v1, v2, PixelCenterNdc(ix, width), PixelCenterNdc(iy, height), bary,
                &depth);  // succeeded in RasterizeDepthKeys with the same inputs
  triangle_ids[index] = static_cast<int32_t>(t);
  z_buffer[index] = depth;
}

// Rasterizes `batch` images on `stream`. All pointers are device pointers;
// keys is scratch of batch * width * height entries. Inputs must be valid
// (see ValidateMesh). Returns the first launch error.
inline cudaError_t LaunchRasterize(const float* vertices, int64_t batch, int64_t vertex_count,
                                   const int32_t* triangles, int64_t triangle_count,
                                   int32_t width, int32_t height, unsigned long long* keys,
                                   int32_t* triangle_ids, float* barycentrics, float* z_buffer,
                                   cudaStream_t stream) {
  const int64_t pixel_total = batch * static_cast<int64_t>(width) * height;
  if (pixel_total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t pixel_blocks = (pixel_total + kThreads - 1) / kThreads;
  FACE_GCN_CUDA_LAUNCH(ClearKeys,
                       static_cast<unsigned>(pixel_blocks < 65535 ? pixel_blocks : 65535),
                       kThreads, stream)(keys, pixel_total);
  const int64_t items = batch * triangle_count;
  if (items > 0) {
    FACE_GCN_CUDA_LAUNCH(RasterizeDepthKeys,
                         static_cast<unsigned>((items + kThreads - 1) / kThreads), kThreads,
                         stream)(vertices, vertex_count, triangles, triangle_count, batch, width,
                                 height, keys);
  }
  FACE_GCN_CUDA_LAUNCH(ResolvePixels, static_cast<unsigned>(pixel_blocks), kThreads, stream)(
      vertices, vertex_count, triangles, batch, width, height, keys, triangle_ids, barycentrics,
      z_buffer);
  return cudaGetLastError();
}

}  // namespace gpu
}  // namespace raster
}  // namespace face_gcn

#endif  // FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_CU_H_
