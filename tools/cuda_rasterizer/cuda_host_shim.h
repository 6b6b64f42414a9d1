// Host emulation of the small part of CUDA that face_gcn's rasterizer kernels
// (face_gcn/render/kernels/rasterize_gpu.cu.h) use, so that the same kernel
// source compiles with g++ as plain C++ and can be checked against the CPU
// kernel on a machine without a GPU (see emulate.cc).
//
// Include this header BEFORE rasterize_gpu.cu.h. It provides:
//  * __global__ / __device__ / __host__ / __forceinline__ as ordinary C++;
//  * dim3 / uint3 and thread_local blockIdx, blockDim, threadIdx, gridDim;
//  * the atomics the kernels call (atomicMin on unsigned long long, atomicOr /
//    atomicAdd / atomicExch / atomicMax on int and friends) on std::atomic_ref,
//    so they stay correct when blocks run on several host threads;
//  * bit casts (__float_as_uint, ...) via memcpy, __ldg, min / max;
//  * cudaError_t, cudaStream_t, cudaGetLastError, cudaGetErrorString;
//  * FACE_GCN_CUDA_LAUNCH, the kernel header's launch hook: it checks the
//    launch configuration against CUDA's limits (a bad one becomes the sticky
//    error cudaGetLastError returns, as on a device) and runs every
//    (block, thread) of the grid in the order chosen by SetLaunchOrder.
//
// What it cannot show: the device memory model, warp scheduling, contention of
// real device atomics, the device's float unit (the emulation runs the host's
// IEEE float code; nvcc with --fmad=false should match it, which only a GPU run
// of harness.cu proves), and timing. Kernels that use __syncthreads or shared
// memory could not run thread by thread like this; the rasterizer has none.
#ifndef FACE_GCN_TOOLS_CUDA_RASTERIZER_CUDA_HOST_SHIM_H_
#define FACE_GCN_TOOLS_CUDA_RASTERIZER_CUDA_HOST_SHIM_H_

#if defined(__CUDACC__)
#error "cuda_host_shim.h is for host compilers only; nvcc has the real CUDA"
#endif

#define FACE_GCN_CUDA_HOST_EMULATION 1

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

using std::isfinite;

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};

inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
};
using cudaStream_t = struct CUstream_st*;

// ---- bit casts --------------------------------------------------------------

template <typename To, typename From>
inline To FaceGcnEmulationBitCast(From value) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between different sizes");
  To out;
  std::memcpy(&out, &value, sizeof(To));
  return out;
}

inline unsigned int __float_as_uint(float v) { return FaceGcnEmulationBitCast<unsigned int>(v); }
inline int __float_as_int(float v) { return FaceGcnEmulationBitCast<int>(v); }
inline float __uint_as_float(unsigned int v) { return FaceGcnEmulationBitCast<float>(v); }
inline float __int_as_float(int v) { return FaceGcnEmulationBitCast<float>(v); }
inline long long __double_as_longlong(double v) { return FaceGcnEmulationBitCast<long long>(v); }
inline double __longlong_as_double(long long v) { return FaceGcnEmulationBitCast<double>(v); }

// ---- plain intrinsics -------------------------------------------------------

template <typename T>
inline T __ldg(const T* address) { return *address; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
using std::max;
using std::min;

// ---- atomics (return the old value, like CUDA's) ------------------------------

template <typename T>
inline T FaceGcnEmulationAtomicMin(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (value < old && !ref.compare_exchange_weak(old, value)) {
  }
  return old;
}

template <typename T>
inline T FaceGcnEmulationAtomicMax(T* address, T value) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load();
  while (value > old && !ref.compare_exchange_weak(old, value)) {
  }
  return old;
}

#define FACE_GCN_EMULATED_INTEGER_ATOMICS(T)                                              \
  inline T atomicMin(T* a, T v) { return FaceGcnEmulationAtomicMin<T>(a, v); }          \
  inline T atomicMax(T* a, T v) { return FaceGcnEmulationAtomicMax<T>(a, v); }          \
  inline T atomicAdd(T* a, T v) { return std::atomic_ref<T>(*a).fetch_add(v); }         \
  inline T atomicSub(T* a, T v) { return std::atomic_ref<T>(*a).fetch_sub(v); }         \
  inline T atomicOr(T* a, T v) { return std::atomic_ref<T>(*a).fetch_or(v); }           \
  inline T atomicAnd(T* a, T v) { return std::atomic_ref<T>(*a).fetch_and(v); }         \
  inline T atomicXor(T* a, T v) { return std::atomic_ref<T>(*a).fetch_xor(v); }         \
  inline T atomicExch(T* a, T v) { return std::atomic_ref<T>(*a).exchange(v); }         \
  inline T atomicCAS(T* a, T compare, T v) {                                            \
    std::atomic_ref<T>(*a).compare_exchange_strong(compare, v);                         \
    return compare;                                                                     \
  }

FACE_GCN_EMULATED_INTEGER_ATOMICS(int)
FACE_GCN_EMULATED_INTEGER_ATOMICS(unsigned int)
FACE_GCN_EMULATED_INTEGER_ATOMICS(long long)
FACE_GCN_EMULATED_INTEGER_ATOMICS(unsigned long long)
#undef FACE_GCN_EMULATED_INTEGER_ATOMICS

inline float atomicAdd(float* a, float v) { return std::atomic_ref<float>(*a).fetch_add(v); }
inline double atomicAdd(double* a, double v) { return std::atomic_ref<double>(*a).fetch_add(v); }
inline float atomicExch(float* a, float v) { return std::atomic_ref<float>(*a).exchange(v); }

// ---- launches -----------------------------------------------------------------

namespace face_gcn_cuda_emulation {

// Order in which the emulated grid's (block, thread) pairs run.
enum class LaunchOrder {
  kAscending,   // block 0 thread 0, block 0 thread 1, ..., like a one-core device
  kDescending,  // last block first, threads in reverse inside each block
  kShuffled,    // blocks in a seeded random permutation, threads shuffled inside
  kThreaded,    // blocks shuffled and shared out to several host threads at once
};

struct LaunchSettings {
  LaunchOrder order = LaunchOrder::kAscending;
  unsigned seed = 0;
  unsigned host_threads = 2;
};

inline LaunchSettings& Settings() {
  static LaunchSettings settings;
  return settings;
}

inline void SetLaunchOrder(LaunchOrder order, unsigned seed = 0, unsigned host_threads = 2) {
  Settings() = LaunchSettings{order, seed, host_threads < 1 ? 1u : host_threads};
}

// First launch error since the last cudaGetLastError (sticky like the device's).
inline cudaError_t& PendingError() {
  static cudaError_t error = cudaSuccess;
  return error;
}

// Statistics of everything launched since the last reset (for the summary).
struct LaunchStats {
  std::atomic<int64_t> launches{0};
  std::atomic<int64_t> threads{0};
};

inline LaunchStats& Stats() {
  static LaunchStats stats;
  return stats;
}

// CUDA's limits on one launch (compute capability >= 3.0).
inline bool ValidConfiguration(const dim3& grid, const dim3& block) {
  const uint64_t block_threads = uint64_t{block.x} * block.y * block.z;
  return grid.x >= 1 && grid.x <= 2147483647u && grid.y >= 1 && grid.y <= 65535u &&
         grid.z >= 1 && grid.z <= 65535u && block.x >= 1 && block.x <= 1024u &&
         block.y >= 1 && block.y <= 1024u && block.z >= 1 && block.z <= 64u &&
         block_threads <= 1024u;
}

inline uint3 Unflatten(uint64_t index, const dim3& extent) {
  uint3 out;
  out.x = static_cast<unsigned>(index % extent.x);
  index /= extent.x;
  out.y = static_cast<unsigned>(index % extent.y);
  out.z = static_cast<unsigned>(index / extent.y);
  return out;
}

template <typename Kernel>
class Launcher {
 public:
  Launcher(Kernel kernel, dim3 grid, dim3 block) : kernel_(kernel), grid_(grid), block_(block) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    if (!ValidConfiguration(grid_, block_)) {
      if (PendingError() == cudaSuccess) PendingError() = cudaErrorInvalidConfiguration;
      return;
    }
    const uint64_t blocks = uint64_t{grid_.x} * grid_.y * grid_.z;
    const uint64_t threads = uint64_t{block_.x} * block_.y * block_.z;
    const LaunchSettings settings = Settings();
    std::vector<uint64_t> block_order(blocks);
    std::iota(block_order.begin(), block_order.end(), uint64_t{0});
    std::vector<uint64_t> thread_order(threads);
    std::iota(thread_order.begin(), thread_order.end(), uint64_t{0});
    std::mt19937_64 rng(settings.seed * 0x9E3779B97F4A7C15ull + Stats().launches.load());
    switch (settings.order) {
      case LaunchOrder::kAscending:
        break;
      case LaunchOrder::kDescending:
        std::reverse(block_order.begin(), block_order.end());
        std::reverse(thread_order.begin(), thread_order.end());
        break;
      case LaunchOrder::kShuffled:
      case LaunchOrder::kThreaded:
        std::shuffle(block_order.begin(), block_order.end(), rng);
        std::shuffle(thread_order.begin(), thread_order.end(), rng);
        break;
    }
    Stats().launches.fetch_add(1);
    Stats().threads.fetch_add(static_cast<int64_t>(blocks * threads));

    std::atomic<uint64_t> next_block{0};
    auto worker = [&]() {
      gridDim = grid_;
      blockDim = block_;
      for (uint64_t k = next_block.fetch_add(1); k < blocks; k = next_block.fetch_add(1)) {
        blockIdx = Unflatten(block_order[k], grid_);
        for (const uint64_t t : thread_order) {
          threadIdx = Unflatten(t, block_);
          kernel_(args...);
        }
      }
    };
    const unsigned host_threads =
        settings.order == LaunchOrder::kThreaded ? settings.host_threads : 1u;
    if (host_threads == 1) {
      worker();
    } else {
      std::vector<std::thread> pool;
      for (unsigned i = 0; i < host_threads; ++i) pool.emplace_back(worker);
      for (auto& thread : pool) thread.join();
    }
  }

 private:
  Kernel kernel_;
  dim3 grid_, block_;
};

// `stream` is ignored: emulated launches run to completion one after another.
template <typename Kernel, typename Stream>
Launcher<Kernel> MakeLauncher(Kernel kernel, dim3 grid, dim3 block, Stream /*stream*/) {
  return Launcher<Kernel>(kernel, grid, block);
}

}  // namespace face_gcn_cuda_emulation

inline cudaError_t cudaGetLastError() {
  const cudaError_t error = face_gcn_cuda_emulation::PendingError();
  face_gcn_cuda_emulation::PendingError() = cudaSuccess;
  return error;
}

inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
  }
  return "unknown error";
}

// The kernel header's launch hook (see rasterize_gpu.cu.h).
#define FACE_GCN_CUDA_LAUNCH(kernel, grid, block, stream) \
  ::face_gcn_cuda_emulation::MakeLauncher(&kernel, dim3(grid), dim3(block), stream)

#endif  // FACE_GCN_TOOLS_CUDA_RASTERIZER_CUDA_HOST_SHIM_H_
