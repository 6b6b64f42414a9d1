// CUDA side of the TensorFlow GPU kernel for FaceGcnRasterizeTriangles: thin
// host wrappers around rasterize_gpu.cu.h. Compiled by nvcc only (setup.py,
// when nvcc is found and TensorFlow is built with CUDA); never by the CPU build.
#if GOOGLE_CUDA

#include <cuda_runtime.h>

#include <string>

#include "face_gcn/render/kernels/rasterize_gpu.cu.h"
#include "face_gcn/render/kernels/rasterize_gpu_launch.h"

namespace face_gcn {
namespace raster {
namespace gpu {

std::string ValidateOnDevice(const float* vertices, int64_t batch, int64_t vertex_count,
                             const int32_t* triangles, int64_t triangle_count,
                             int* flags_scratch, void* stream) {
  cudaStream_t cuda_stream = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(flags_scratch, 0, sizeof(int), cuda_stream);
  const int64_t work = batch * vertex_count * 4 > triangle_count * 3
                           ? batch * vertex_count * 4 : triangle_count * 3;
  if (work > 0) {
    const int64_t blocks = (work + 255) / 256;
    ValidateMesh<<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), 256, 0, cuda_stream>>>(
        vertices, batch * vertex_count * 4, triangles, triangle_count * 3, vertex_count,
        flags_scratch);
  }
  int flags = 0;
  cudaMemcpyAsync(&flags, flags_scratch, sizeof(int), cudaMemcpyDeviceToHost, cuda_stream);
  const cudaError_t status = cudaStreamSynchronize(cuda_stream);
  if (status != cudaSuccess) return cudaGetErrorString(status);
  if (flags & 1) return "triangles hold a vertex index outside [0, V)";
  if (flags & 2) return "clip_vertices holds a non-finite value (NaN or Inf)";
  return "";
}

std::string RasterizeOnDevice(const float* vertices, int64_t batch, int64_t vertex_count,
                              const int32_t* triangles, int64_t triangle_count, int32_t width,
                              int32_t height, void* keys_scratch, int32_t* triangle_ids,
                              float* barycentrics, float* z_buffer, void* stream) {
  const cudaError_t status = LaunchRasterize(
      vertices, batch, vertex_count, triangles, triangle_count, width, height,
      static_cast<unsigned long long*>(keys_scratch), triangle_ids, barycentrics, z_buffer,
      static_cast<cudaStream_t>(stream));
  return status == cudaSuccess ? std::string() : std::string(cudaGetErrorString(status));
}

}  // namespace gpu
}  // namespace raster
}  // namespace face_gcn

#endif  // GOOGLE_CUDA
