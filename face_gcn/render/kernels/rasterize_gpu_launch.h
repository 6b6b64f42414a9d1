// Host entry points of the CUDA rasterizer, callable from code compiled without
// nvcc (the TensorFlow GPU kernel in rasterize_triangles_op.cc under
// GOOGLE_CUDA). Implemented in rasterize_triangles_gpu.cu.cc.
#ifndef FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_LAUNCH_H_
#define FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_LAUNCH_H_

#include <cstdint>
#include <string>

namespace face_gcn {
namespace raster {
namespace gpu {

// Checks indices and finiteness on the device (synchronises `stream`). Returns
// an empty string when valid, otherwise the problem. flags_scratch: 1 device int.
std::string ValidateOnDevice(const float* vertices, int64_t batch, int64_t vertex_count,
                             const int32_t* triangles, int64_t triangle_count,
                             int* flags_scratch, void* stream);

// Rasterizes on `stream` (asynchronous); keys_scratch holds batch*H*W uint64.
// Returns an empty string on success, otherwise the CUDA error.
std::string RasterizeOnDevice(const float* vertices, int64_t batch, int64_t vertex_count,
                              const int32_t* triangles, int64_t triangle_count, int32_t width,
                              int32_t height, void* keys_scratch, int32_t* triangle_ids,
                              float* barycentrics, float* z_buffer, void* stream);

}  // namespace gpu
}  // namespace raster
}  // namespace face_gcn

#endif  // FACE_GCN_RENDER_KERNELS_RASTERIZE_GPU_LAUNCH_H_
