// TensorFlow ops FaceGcnRasterizeTriangles and FaceGcnRasterizeTrianglesGrad
// (CPU kernels; the math lives in rasterize_core.{h,cc}).
//
// Forward: clip_vertices [B, V, 4] float32, triangles [T, 3] int32, attrs
// image_width, image_height -> barycentrics [B, H, W, 3] float32 (perspective
// correct), triangle_ids [B, H, W] int32 (-1 where empty), z_buffer [B, H, W]
// float32 (NDC depth, 1 where empty).
// Gradient: d clip_vertices [B, V, 4] from d barycentrics only (x, y, w; z 0).
//
// Input policy (InvalidArgument, never a crash): wrong ranks, last dims other
// than 4 / 3, triangle indices outside [0, V), non-finite vertex coordinates,
// image sides outside [1, 8192], more than 2^28 output pixels in total.
// T = 0 or B = 0 is valid (empty images / empty batch).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>

#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include "face_gcn/render/kernels/rasterize_core.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/threadpool.h"

#if GOOGLE_CUDA
#include "face_gcn/render/kernels/rasterize_gpu_launch.h"
#include "unsupported/Eigen/CXX11/Tensor"
#endif

namespace face_gcn {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

absl::Status ForwardShape(InferenceContext* c) {
  ShapeHandle vertices, triangles, unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &vertices));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &triangles));
  DimensionHandle dim;
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(vertices, 2), 4, &dim));
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(triangles, 1), 3, &dim));
  int64_t width, height;
  TF_RETURN_IF_ERROR(c->GetAttr("image_width", &width));
  TF_RETURN_IF_ERROR(c->GetAttr("image_height", &height));
  const DimensionHandle batch = c->Dim(vertices, 0);
  c->set_output(0, c->MakeShape({batch, height, width, 3}));
  c->set_output(1, c->MakeShape({batch, height, width}));
  c->set_output(2, c->MakeShape({batch, height, width}));
  return absl::OkStatus();
}

absl::Status GradShape(InferenceContext* c) {
  ShapeHandle vertices, triangles, bary, ids, d_bary;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &vertices));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &triangles));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 4, &bary));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 3, &ids));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(4), 4, &d_bary));
  c->set_output(0, vertices);
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("FaceGcnRasterizeTriangles")
    .Input("clip_vertices: float32")
    .Input("triangles: int32")
    .Attr("image_width: int >= 1")
    .Attr("image_height: int >= 1")
    .Output("barycentrics: float32")
    .Output("triangle_ids: int32")
    .Output("z_buffer: float32")
    .SetShapeFn(ForwardShape)
    .Doc(R"doc(
Rasterizes a batch of clip-space triangle meshes (Olano-Greer, no culling).
clip_vertices: [B, V, 4] homogeneous clip coordinates.
triangles: [T, 3] vertex indices in [0, V).
barycentrics: [B, H, W, 3] perspective-correct barycentrics, 0 where empty.
triangle_ids: [B, H, W] index of the visible triangle, -1 where empty.
z_buffer: [B, H, W] NDC depth in [-1, 1], 1 where empty.
)doc");

REGISTER_OP("FaceGcnRasterizeTrianglesGrad")
    .Input("clip_vertices: float32")
    .Input("triangles: int32")
    .Input("barycentrics: float32")
    .Input("triangle_ids: int32")
    .Input("d_barycentrics: float32")
    .Attr("image_width: int >= 1")
    .Attr("image_height: int >= 1")
    .Output("d_clip_vertices: float32")
    .SetShapeFn(GradShape);

namespace {

// Branch-free scans the compiler vectorizes; the slow loops in ValidateMesh
// only run to name the first bad value.
bool IndicesInRange(const int32_t* indices, int64_t count, int64_t vertex_count) {
  const uint32_t limit = static_cast<uint32_t>(vertex_count);  // validated < 2^31
  uint32_t outside = 0;
  for (int64_t i = 0; i < count; ++i) {
    outside |= static_cast<uint32_t>(indices[i]) >= limit ? 1u : 0u;  // negatives wrap up
  }
  return outside == 0;
}

bool AllFinite(const float* values, int64_t count) {
  uint32_t non_finite = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    non_finite |= (bits & 0x7f800000u) == 0x7f800000u ? 1u : 0u;  // exponent all ones
  }
  return non_finite == 0;
}

// Runs work(i) for every i in [0, count) on the calling thread and up to
// `helpers` pool threads, each taking the next i when it is free. The caller
// never waits for a helper that has not started (on a busy machine one may
// start late): a helper that starts after the work is handed out returns at
// once.
void RunClaimed(tensorflow::thread::ThreadPool* pool, int helpers, int64_t count,
                const std::function<void(int64_t)>& work) {
  struct State {
    std::mutex mutex;
    std::condition_variable idle;
    std::atomic<int64_t> next{0};
    int active = 0;
    bool closed = false;
    int64_t count = 0;
    const std::function<void(int64_t)>* work = nullptr;
  };
  const auto state = std::make_shared<State>();
  state->count = count;
  state->work = &work;
  const auto drain = [](State& s) {
    for (int64_t i = s.next.fetch_add(1); i < s.count; i = s.next.fetch_add(1)) (*s.work)(i);
  };
  for (int h = 0; h < std::min<int64_t>(helpers, count - 1); ++h) {
    pool->Schedule([state, drain] {
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        if (state->closed) return;
        ++state->active;
      }
      drain(*state);
      std::lock_guard<std::mutex> lock(state->mutex);
      if (--state->active == 0) state->idle.notify_all();
    });
  }
  drain(*state);
  std::unique_lock<std::mutex> lock(state->mutex);
  state->closed = true;
  state->idle.wait(lock, [&state] { return state->active == 0; });
}

// Validates the attributes and the inputs both ops share.
class RasterizeBase : public OpKernel {
 public:
  explicit RasterizeBase(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("image_width", &width_));
    OP_REQUIRES_OK(context, context->GetAttr("image_height", &height_));
    OP_REQUIRES(context, width_ >= 1 && width_ <= raster::kMaxImageSide,
                InvalidArgument("image_width must be in [1, ", raster::kMaxImageSide,
                                "], got ", width_));
    OP_REQUIRES(context, height_ >= 1 && height_ <= raster::kMaxImageSide,
                InvalidArgument("image_height must be in [1, ", raster::kMaxImageSide,
                                "], got ", height_));
  }

 protected:
  absl::Status ValidateMesh(const Tensor& vertices, const Tensor& triangles) const {
    if (vertices.dims() != 3 || vertices.dim_size(2) != 4) {
      return InvalidArgument("clip_vertices must have shape [B, V, 4], got ",
                             vertices.shape().DebugString());
    }
    if (triangles.dims() != 2 || triangles.dim_size(1) != 3) {
      return InvalidArgument("triangles must have shape [T, 3], got ",
                             triangles.shape().DebugString());
    }
    const int64_t batch = vertices.dim_size(0);
    const int64_t pixels = static_cast<int64_t>(width_) * height_;
    if (batch > raster::kMaxTotalPixels / pixels) {
      return InvalidArgument("batch x image_height x image_width = ", batch, " x ", height_,
                             " x ", width_, " exceeds the limit of ", raster::kMaxTotalPixels,
                             " pixels");
    }
    if (triangles.dim_size(0) >= std::numeric_limits<int32_t>::max() ||
        vertices.dim_size(1) >= std::numeric_limits<int32_t>::max()) {
      return InvalidArgument("too many triangles or vertices");
    }
    const int64_t vertex_count = vertices.dim_size(1);
    const auto tri = triangles.flat<int32_t>();
    if (!IndicesInRange(tri.data(), tri.size(), vertex_count)) {
      for (int64_t i = 0; i < tri.size(); ++i) {
        if (tri(i) < 0 || tri(i) >= vertex_count) {
          return InvalidArgument("triangles[", i / 3, "] holds vertex index ", tri(i),
                                 ", outside [0, ", vertex_count, ")");
        }
      }
    }
    const auto v = vertices.flat<float>();
    if (!AllFinite(v.data(), v.size())) {
      for (int64_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v(i))) {
          return InvalidArgument("clip_vertices holds a non-finite value (NaN or Inf) at image ",
                                 i / (4 * vertex_count), ", vertex ", (i / 4) % vertex_count);
        }
      }
    }
    return absl::OkStatus();
  }

  // Splits work over the intra-op pool in at most one shard per thread (the
  // forward pass gives each shard its own buffers). A shard has to carry about
  // a millisecond of work: the split waits for every shard, and on a busy
  // machine a pool thread may start late.
  raster::ParallelRunner Runner(OpKernelContext* context) {
    const auto* workers = context->device()->tensorflow_cpu_worker_threads();
    auto* pool = workers->workers;
    const int64_t threads = workers->num_threads;
    return [pool, threads](int64_t total, int64_t cost,
                           const std::function<void(int64_t, int64_t)>& fn) {
      constexpr int64_t kMinShardCost = 2000000;  // cycles
      const int64_t shards = std::min({threads, total, total * cost / kMinShardCost});
      if (shards <= 1) {
        raster::RunSerially(total, cost, fn);
        return;
      }
      pool->ParallelFor(
          total,
          tensorflow::thread::ThreadPool::SchedulingParams::Fixed((total + shards - 1) / shards),
          [&fn](int64_t begin, int64_t end) { fn(begin, end); });
    };
  }

  // Runs fn(image, runner) for every image. With at least as many images as
  // threads, images run in parallel, each on one thread (RunClaimed);
  // otherwise one after another, each split across the pool. Results are the
  // same either way (the per-image code is deterministic for any runner).
  // Returns false if any call does.
  template <typename Fn>
  bool ForEachImage(OpKernelContext* context, int64_t batch, Fn fn) {
    const auto* workers = context->device()->tensorflow_cpu_worker_threads();
    std::atomic<bool> ok(true);
    if (batch >= workers->num_threads && batch > 1) {
      const raster::ParallelRunner serial = raster::RunSerially;
      RunClaimed(workers->workers, workers->num_threads - 1, batch, [&](int64_t b) {
        if (!fn(b, serial)) ok.store(false);
      });
    } else {
      const raster::ParallelRunner runner = Runner(context);
      for (int64_t b = 0; b < batch; ++b) {
        if (!fn(b, runner)) ok.store(false);
      }
    }
    return ok.load();
  }

  int width_ = 0;
  int height_ = 0;
};

class RasterizeTrianglesCpuOp : public RasterizeBase {
 public:
  explicit RasterizeTrianglesCpuOp(OpKernelConstruction* context) : RasterizeBase(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    OP_REQUIRES_OK(context, ValidateMesh(vertices, triangles));
    const int64_t batch = vertices.dim_size(0);
    const int64_t vertex_count = vertices.dim_size(1);
    const int64_t triangle_count = triangles.dim_size(0);

    Tensor* bary = nullptr;
    Tensor* ids = nullptr;
    Tensor* depth = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({batch, height_, width_, 3}), &bary));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, TensorShape({batch, height_, width_}), &ids));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, TensorShape({batch, height_, width_}), &depth));
    const int64_t pixels = static_cast<int64_t>(width_) * height_;
    const float* v = vertices.flat<float>().data();
    const int32_t* tri = triangles.flat<int32_t>().data();
    int32_t* ids_data = ids->flat<int32_t>().data();
    float* bary_data = bary->flat<float>().data();
    float* depth_data = depth->flat<float>().data();
    ForEachImage(context, batch, [&](int64_t b, const raster::ParallelRunner& runner) {
      raster::RasterizeImage(v + b * vertex_count * 4, tri, triangle_count, width_, height_,
                             runner, ids_data + b * pixels, bary_data + b * pixels * 3,
                             depth_data + b * pixels);
      return true;
    });
  }
};

class RasterizeTrianglesGradCpuOp : public RasterizeBase {
 public:
  explicit RasterizeTrianglesGradCpuOp(OpKernelConstruction* context)
      : RasterizeBase(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    const Tensor& bary = context->input(2);
    const Tensor& ids = context->input(3);
    const Tensor& d_bary = context->input(4);
    OP_REQUIRES_OK(context, ValidateMesh(vertices, triangles));
    const int64_t batch = vertices.dim_size(0);
    const TensorShape bary_shape({batch, height_, width_, 3});
    const TensorShape ids_shape({batch, height_, width_});
    OP_REQUIRES(context, bary.shape() == bary_shape,
                InvalidArgument("barycentrics must have shape ", bary_shape.DebugString(),
                                ", got ", bary.shape().DebugString()));
    OP_REQUIRES(context, d_bary.shape() == bary_shape,
                InvalidArgument("d_barycentrics must have shape ", bary_shape.DebugString(),
                                ", got ", d_bary.shape().DebugString()));
    OP_REQUIRES(context, ids.shape() == ids_shape,
                InvalidArgument("triangle_ids must have shape ", ids_shape.DebugString(),
                                ", got ", ids.shape().DebugString()));
    Tensor* d_vertices = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(0, vertices.shape(), &d_vertices));
    const int64_t vertex_count = vertices.dim_size(1);
    const int64_t triangle_count = triangles.dim_size(0);
    const int64_t pixels = static_cast<int64_t>(width_) * height_;
    const float* v = vertices.flat<float>().data();
    const int32_t* tri = triangles.flat<int32_t>().data();
    const float* bary_data = bary.flat<float>().data();
    const int32_t* ids_data = ids.flat<int32_t>().data();
    const float* d_bary_data = d_bary.flat<float>().data();
    float* d_vertices_data = d_vertices->flat<float>().data();
    const bool ok = ForEachImage(
        context, batch, [&](int64_t b, const raster::ParallelRunner& runner) {
          return raster::RasterizeImageGrad(
              v + b * vertex_count * 4, vertex_count, tri, triangle_count, width_, height_,
              bary_data + b * pixels * 3, ids_data + b * pixels, d_bary_data + b * pixels * 3,
              runner, d_vertices_data + b * vertex_count * 4);
        });
    OP_REQUIRES(context, ok,
                InvalidArgument("triangle_ids hold an id outside [0, ", triangle_count,
                                ") at a covered pixel"));
  }
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("FaceGcnRasterizeTriangles").Device(DEVICE_CPU),
                        RasterizeTrianglesCpuOp);
REGISTER_KERNEL_BUILDER(Name("FaceGcnRasterizeTrianglesGrad").Device(DEVICE_CPU),
                        RasterizeTrianglesGradCpuOp);

#if GOOGLE_CUDA
namespace {

// GPU forward kernel (see rasterize_gpu.cu.h). The gradient op has a CPU kernel
// only; TensorFlow places it on the CPU and copies the tensors.
class RasterizeTrianglesGpuOp : public RasterizeBase {
 public:
  explicit RasterizeTrianglesGpuOp(OpKernelConstruction* context) : RasterizeBase(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& vertices = context->input(0);
    const Tensor& triangles = context->input(1);
    OP_REQUIRES(context, vertices.dims() == 3 && vertices.dim_size(2) == 4,
                InvalidArgument("clip_vertices must have shape [B, V, 4], got ",
                                vertices.shape().DebugString()));
    OP_REQUIRES(context, triangles.dims() == 2 && triangles.dim_size(1) == 3,
                InvalidArgument("triangles must have shape [T, 3], got ",
                                triangles.shape().DebugString()));
    const int64_t batch = vertices.dim_size(0);
    const int64_t vertex_count = vertices.dim_size(1);
    const int64_t triangle_count = triangles.dim_size(0);
    const int64_t pixels = static_cast<int64_t>(width_) * height_;
    OP_REQUIRES(context, batch <= raster::kMaxTotalPixels / pixels,
                InvalidArgument("batch x image_height x image_width exceeds the limit of ",
                                raster::kMaxTotalPixels, " pixels"));
    OP_REQUIRES(context, triangle_count < std::numeric_limits<int32_t>::max(),
                InvalidArgument("too many triangles: ", triangle_count));
    void* stream = const_cast<void*>(static_cast<const void*>(
        context->eigen_device<Eigen::GpuDevice>().stream()));
    Tensor flags;
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_INT32, TensorShape({1}), &flags));
    const std::string problem = raster::gpu::ValidateOnDevice(
        vertices.flat<float>().data(), batch, vertex_count, triangles.flat<int32_t>().data(),
        triangle_count, flags.flat<int32_t>().data(), stream);
    OP_REQUIRES(context, problem.empty(), InvalidArgument(problem));

    Tensor* bary = nullptr;
    Tensor* ids = nullptr;
    Tensor* depth = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({batch, height_, width_, 3}), &bary));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, TensorShape({batch, height_, width_}), &ids));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, TensorShape({batch, height_, width_}), &depth));
    Tensor keys;
    OP_REQUIRES_OK(context, context->allocate_temp(tensorflow::DT_INT64,
                                                   TensorShape({batch * pixels}), &keys));
    const std::string error = raster::gpu::RasterizeOnDevice(
        vertices.flat<float>().data(), batch, vertex_count, triangles.flat<int32_t>().data(),
        triangle_count, width_, height_, keys.flat<int64_t>().data(),
        ids->flat<int32_t>().data(), bary->flat<float>().data(), depth->flat<float>().data(),
        stream);
    OP_REQUIRES(context, error.empty(),
                tensorflow::errors::Internal("CUDA rasterizer failed: ", error));
  }
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("FaceGcnRasterizeTriangles").Device(tensorflow::DEVICE_GPU),
                        RasterizeTrianglesGpuOp);
#endif  // GOOGLE_CUDA

}  // namespace face_gcn
