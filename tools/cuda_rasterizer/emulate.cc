// Runs the CUDA rasterizer kernels (face_gcn/render/kernels/rasterize_gpu.cu.h)
// as host C++ under cuda_host_shim.h and compares them with the CPU kernel
// (rasterize_core.cc) on random and hand-made meshes. No GPU, no TensorFlow.
//
// Build (from the repository root):
//   g++ -std=c++20 -O1 -pthread -I. -o emulate tools/cuda_rasterizer/emulate.cc
//       face_gcn/render/kernels/rasterize_core.cc        (one command line)
// or `make emulate` in tools/cuda_rasterizer.
//
// For every case the GPU path runs in four launch orders (ascending, descending,
// shuffled, shuffled on two host threads); all four must give the same bits, and
// the first must equal the CPU: triangle ids exactly, barycentrics and depth
// within 1e-6 (bit equality is reported separately). The last line is a
// machine-readable summary; the exit status is 0 only when everything agrees.
#include "tools/cuda_rasterizer/cuda_host_shim.h"
// The shim must come first.
#include "face_gcn/render/kernels/rasterize_gpu.cu.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "face_gcn/render/kernels/rasterize_core.h"

namespace raster = face_gcn::raster;
namespace emu = face_gcn_cuda_emulation;

namespace {

constexpr double kTolerance = 1e-6;

struct Mesh {
  std::string name;
  int batch = 1;
  int64_t vertex_count = 0;
  std::vector<float> vertices;     // [batch, vertex_count, 4] clip coordinates
  std::vector<int32_t> triangles;  // [T, 3]
  int64_t triangle_count() const { return static_cast<int64_t>(triangles.size() / 3); }
};

struct Outputs {
  std::vector<int32_t> ids;
  std::vector<float> bary;
  std::vector<float> z;
};

struct Totals {
  int64_t cases = 0, images = 0, pixels = 0, covered = 0, triangles = 0;
  int64_t id_mismatches = 0, value_bit_mismatches = 0, order_mismatches = 0;
  int64_t launch_errors = 0, check_failures = 0;
  double max_dbary = 0.0, max_dz = 0.0;
};

void AddVertex(Mesh* mesh, float x, float y, float z, float w) {
  mesh->vertices.insert(mesh->vertices.end(), {x, y, z, w});
}

// Random triangle soup in clip space with the awkward cases mixed in: corners
// behind the eye (w < 0, so triangles crossing w = 0), triangles entirely behind,
// far outside the image, beyond the near/far planes, degenerate ones (repeated
// or collinear corners), and exact depth ties (the same triangle again later,
// the same corners in another order).
Mesh RandomSoup(const std::string& name, unsigned seed, int batch, int triangle_count) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f), xy(-1.3f, 1.3f), zr(-1.2f, 1.2f),
      wr(0.3f, 2.0f);
  Mesh mesh;
  mesh.name = name;
  mesh.batch = batch;
  mesh.vertex_count = 3 * static_cast<int64_t>(triangle_count);
  for (int b = 0; b < batch; ++b) {
    for (int t = 0; t < triangle_count; ++t) {
      const float kind = unit(rng);
      for (int corner = 0; corner < 3; ++corner) {
        float w = wr(rng);
        float scale = 1.0f;
        if (kind < 0.08f && corner == 0) w = -wr(rng);        // crosses w = 0
        if (kind >= 0.08f && kind < 0.12f) w = -wr(rng);      // entirely behind the eye
        if (kind >= 0.12f && kind < 0.16f) scale = 6.0f;      // mostly outside the image
        if (kind >= 0.16f && kind < 0.18f && corner == 1) w = 0.0f;  // a corner on w = 0
        AddVertex(&mesh, xy(rng) * scale * w, xy(rng) * scale * w, zr(rng) * w, w);
      }
      if (kind >= 0.18f && kind < 0.21f) {  // collinear corners: zero area
        float* v = &mesh.vertices[mesh.vertices.size() - 12];
        for (int k = 0; k < 4; ++k) v[8 + k] = 0.5f * (v[k] + v[4 + k]);
      }
    }
  }
  for (int t = 0; t < triangle_count; ++t) {
    const int32_t a = 3 * t, b = a + 1, c = a + 2;
    const float kind = unit(rng);
    if (kind < 0.03f) {
      mesh.triangles.insert(mesh.triangles.end(), {a, a, b});  // repeated corner
    } else if (kind < 0.12f && t > 0) {
      // An earlier triangle again: same corners, same or other order -> depth ties.
      const int32_t e = 3 * static_cast<int32_t>(rng() % t);
      const int order = static_cast<int>(rng() % 3);
      if (order == 0) mesh.triangles.insert(mesh.triangles.end(), {e, e + 1, e + 2});
      if (order == 1) mesh.triangles.insert(mesh.triangles.end(), {e + 2, e + 1, e});
      if (order == 2) mesh.triangles.insert(mesh.triangles.end(), {e + 1, e + 2, e});
    } else {
      mesh.triangles.insert(mesh.triangles.end(), {a, b, c});
    }
  }
  return mesh;
}

// n x n grid of shared vertices on a dome under a perspective camera, like a face.
Mesh DomeGrid(const std::string& name, int batch, int n, float offset) {
  Mesh mesh;
  mesh.name = name;
  mesh.batch = batch;
  mesh.vertex_count = static_cast<int64_t>(n) * n;
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        const float x = -1.0f + 2.0f * j / (n - 1) + offset * b, y = -1.0f + 2.0f * i / (n - 1);
        const float h = 0.6f * std::sqrt(std::max(0.0f, 1.2f - x * x - y * y));
        const float w = 10.0f - h;
        AddVertex(&mesh, 7.0f * x, 7.0f * y, (w - 10.0f) * 0.5f + 0.1f * w, w);
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

// Two coplanar quads over the same pixels, corners on pixel centres of a
// width x height image, split along opposite diagonals: pixel centres lie
// exactly on edges and every covered pixel is a depth tie between the quads.
// depth_sign picks the z of each quad (+0 / -0 exercise the signed-zero rule).
Mesh AlignedTies(const std::string& name, int width, int height, float z_first,
                 float z_second) {
  Mesh mesh;
  mesh.name = name;
  auto ndc_x = [&](int i) { return static_cast<float>((i + 0.5) / (0.5 * width) - 1.0); };
  auto ndc_y = [&](int i) { return static_cast<float>((i + 0.5) / (0.5 * height) - 1.0); };
  const int x0 = 1, x1 = width - 2, y0 = 1, y1 = height - 2;
  const float w = 2.0f;
  for (const float z : {z_first, z_second}) {
    AddVertex(&mesh, ndc_x(x0) * w, ndc_y(y0) * w, z * w, w);
    AddVertex(&mesh, ndc_x(x1) * w, ndc_y(y0) * w, z * w, w);
    AddVertex(&mesh, ndc_x(x1) * w, ndc_y(y1) * w, z * w, w);
    AddVertex(&mesh, ndc_x(x0) * w, ndc_y(y1) * w, z * w, w);
  }
  mesh.vertex_count = 8;
  mesh.triangles = {0, 1, 2, 0, 2, 3,   // first quad, diagonal 0-2
                    5, 6, 7, 5, 7, 4};  // second quad, diagonal 5-7
  return mesh;
}

// A few big triangles that cross the eye plane and the near/far planes.
Mesh EyePlane(const std::string& name) {
  Mesh mesh;
  mesh.name = name;
  AddVertex(&mesh, -1.0f, -1.0f, 0.2f, 1.0f);
  AddVertex(&mesh, 1.5f, -0.5f, 0.9f, -0.5f);
  AddVertex(&mesh, 0.0f, 2.0f, -0.3f, 2.0f);
  AddVertex(&mesh, 0.5f, 0.5f, -3.0f, 1.0f);   // in front of the near plane
  AddVertex(&mesh, -2.0f, 0.2f, 3.0f, 1.0f);   // behind the far plane
  AddVertex(&mesh, 0.3f, -0.9f, 0.0f, 1.0f);
  AddVertex(&mesh, -0.4f, 0.4f, -0.0f, -1.0f);
  mesh.vertex_count = 7;
  mesh.triangles = {0, 1, 2, 3, 4, 5, 0, 5, 6, 2, 6, 1, 3, 0, 2, 6, 5, 4};
  return mesh;
}

// Stacked identical triangles at one depth: the highest index must win everywhere.
Mesh Stack(const std::string& name, int copies) {
  Mesh mesh;
  mesh.name = name;
  AddVertex(&mesh, -0.9f, -0.8f, 0.25f, 1.0f);
  AddVertex(&mesh, 0.8f, -0.7f, 0.25f, 1.0f);
  AddVertex(&mesh, 0.1f, 0.9f, 0.25f, 1.0f);
  mesh.vertex_count = 3;
  for (int i = 0; i < copies; ++i) mesh.triangles.insert(mesh.triangles.end(), {0, 1, 2});
  return mesh;
}

void RunCpu(const Mesh& mesh, int width, int height, Outputs* out) {
  const int64_t pixels = static_cast<int64_t>(width) * height;
  out->ids.assign(mesh.batch * pixels, 7);
  out->bary.assign(3 * mesh.batch * pixels, 7.0f);
  out->z.assign(mesh.batch * pixels, 7.0f);
  for (int b = 0; b < mesh.batch; ++b) {
    raster::RasterizeImage(mesh.vertices.data() + b * mesh.vertex_count * 4,
                           mesh.triangles.data(), mesh.triangle_count(), width, height,
                           raster::RunSerially, out->ids.data() + b * pixels,
                           out->bary.data() + 3 * b * pixels, out->z.data() + b * pixels);
  }
}

// Outputs start as garbage so that any pixel the kernels skip shows up.
cudaError_t RunGpu(const Mesh& mesh, int width, int height, Outputs* out) {
  const int64_t pixels = static_cast<int64_t>(width) * height;
  out->ids.assign(mesh.batch * pixels, 12345);
  out->bary.assign(3 * mesh.batch * pixels, std::numeric_limits<float>::quiet_NaN());
  out->z.assign(mesh.batch * pixels, std::numeric_limits<float>::quiet_NaN());
  std::vector<unsigned long long> keys(mesh.batch * pixels, 0x5A5A5A5Aull);
  const cudaError_t status = raster::gpu::LaunchRasterize(
      mesh.vertices.data(), mesh.batch, mesh.vertex_count, mesh.triangles.data(),
      mesh.triangle_count(), width, height, keys.data(), out->ids.data(), out->bary.data(),
      out->z.data(), nullptr);
  return status != cudaSuccess ? status : cudaGetLastError();
}

bool SameBits(const Outputs& a, const Outputs& b) {
  return a.ids == b.ids &&
         std::memcmp(a.bary.data(), b.bary.data(), a.bary.size() * sizeof(float)) == 0 &&
         std::memcmp(a.z.data(), b.z.data(), a.z.size() * sizeof(float)) == 0;
}

bool BitEqual(float a, float b) { return __float_as_uint(a) == __float_as_uint(b); }

void CompareCase(const Mesh& mesh, int width, int height, Totals* totals) {
  const int64_t pixels = static_cast<int64_t>(width) * height * mesh.batch;
  Outputs cpu;
  RunCpu(mesh, width, height, &cpu);

  const emu::LaunchOrder orders[] = {emu::LaunchOrder::kAscending, emu::LaunchOrder::kDescending,
                                     emu::LaunchOrder::kShuffled, emu::LaunchOrder::kThreaded};
  Outputs gpu[4];
  int64_t order_mismatches = 0, launch_errors = 0;
  for (int k = 0; k < 4; ++k) {
    emu::SetLaunchOrder(orders[k], /*seed=*/static_cast<unsigned>(totals->cases * 4 + k + 1));
    if (RunGpu(mesh, width, height, &gpu[k]) != cudaSuccess) ++launch_errors;
    if (k > 0 && !SameBits(gpu[0], gpu[k])) ++order_mismatches;
  }

  int64_t id_mismatches = 0, bit_mismatches = 0, covered = 0;
  double max_dbary = 0.0, max_dz = 0.0;
  for (int64_t i = 0; i < pixels; ++i) {
    covered += cpu.ids[i] >= 0;
    if (cpu.ids[i] != gpu[0].ids[i]) {
      ++id_mismatches;
      continue;
    }
    bool exact = BitEqual(cpu.z[i], gpu[0].z[i]);
    double dz = std::fabs(static_cast<double>(cpu.z[i]) - gpu[0].z[i]);
    if (!(dz <= max_dz)) max_dz = std::isnan(dz) ? INFINITY : dz;
    for (int c = 0; c < 3; ++c) {
      const float a = cpu.bary[3 * i + c], b = gpu[0].bary[3 * i + c];
      exact = exact && BitEqual(a, b);
      const double d = std::fabs(static_cast<double>(a) - b);
      if (!(d <= max_dbary)) max_dbary = std::isnan(d) ? INFINITY : d;
    }
    bit_mismatches += !exact;
  }
  const bool ok = id_mismatches == 0 && order_mismatches == 0 && launch_errors == 0 &&
                  max_dbary <= kTolerance && max_dz <= kTolerance;
  std::printf("%-16s %4dx%-4d B=%d T=%-5" PRId64 " covered %6" PRId64 "/%-6" PRId64
              " id mismatches %" PRId64 "  max|dbary| %.3g  max|dz| %.3g  bit-different "
              "pixels %" PRId64 "  order mismatches %" PRId64 "%s\n",
              mesh.name.c_str(), width, height, mesh.batch, mesh.triangle_count(), covered,
              pixels, id_mismatches, max_dbary, max_dz, bit_mismatches, order_mismatches,
              ok ? "" : "  <-- FAIL");
  totals->cases += 1;
  totals->images += mesh.batch;
  totals->pixels += pixels;
  totals->covered += covered;
  totals->triangles += mesh.triangle_count() * mesh.batch;
  totals->id_mismatches += id_mismatches;
  totals->value_bit_mismatches += bit_mismatches;
  totals->order_mismatches += order_mismatches;
  totals->launch_errors += launch_errors;
  totals->max_dbary = std::max(totals->max_dbary, max_dbary);
  totals->max_dz = std::max(totals->max_dz, max_dz);
}

// ValidateMesh with the launch configuration of ValidateOnDevice
// (rasterize_triangles_gpu.cu.cc, which needs the CUDA runtime and is not
// compiled here): at most 4096 blocks of 256 threads, grid-stride loops.
int ValidateFlags(const Mesh& mesh) {
  const int64_t values = mesh.batch * mesh.vertex_count * 4;
  const int64_t indices = mesh.triangle_count() * 3;
  const int64_t work = values > indices ? values : indices;
  int flags = 0;
  if (work > 0) {
    const int64_t blocks = (work + 255) / 256;
    FACE_GCN_CUDA_LAUNCH(raster::gpu::ValidateMesh,
                         static_cast<unsigned>(blocks < 4096 ? blocks : 4096), 256, nullptr)(
        mesh.vertices.data(), values, mesh.triangles.data(), indices, mesh.vertex_count, &flags);
  }
  return flags;
}

bool Check(bool condition, const char* what, Totals* totals) {
  std::printf("check %-58s %s\n", what, condition ? "ok" : "FAILED");
  if (!condition) ++totals->check_failures;
  return condition;
}

void KernelChecks(Totals* totals) {
  emu::SetLaunchOrder(emu::LaunchOrder::kShuffled, 99);
  // ClearKeys' grid-stride loop with fewer threads than keys.
  std::vector<unsigned long long> keys(1000, 3);
  FACE_GCN_CUDA_LAUNCH(raster::gpu::ClearKeys, 3, 32, nullptr)(keys.data(), int64_t{997});
  bool cleared = true;
  for (int i = 0; i < 997; ++i) cleared = cleared && keys[i] == raster::gpu::kEmptyKey;
  Check(cleared && keys[997] == 3 && keys[999] == 3, "ClearKeys grid-stride covers [0, n) only",
        totals);

  // Depth-key order: nearer wins; at equal depth (and -0 == +0) the higher id.
  using raster::gpu::OrderedDepthBits;
  const float depths[] = {-1.0f, -0.5f, -1e-30f, -0.0f, 0.0f, 1e-30f, 0.25f, 1.0f};
  bool ordered = true;
  for (int i = 0; i + 1 < 8; ++i) {
    const bool tie = i == 3;  // -0 and +0
    ordered = ordered && (tie ? OrderedDepthBits(depths[i]) == OrderedDepthBits(depths[i + 1])
                              : OrderedDepthBits(depths[i]) < OrderedDepthBits(depths[i + 1]));
  }
  Check(ordered, "OrderedDepthBits is monotonic, -0 == +0", totals);

  // ValidateMesh flags.
  Mesh mesh = RandomSoup("validate", 5, 2, 700);  // 2*2100*4 values: several blocks
  Check(ValidateFlags(mesh) == 0, "ValidateMesh: valid mesh gives no flag", totals);
  Mesh bad_index = mesh;
  bad_index.triangles[bad_index.triangles.size() - 1] = static_cast<int32_t>(mesh.vertex_count);
  Check(ValidateFlags(bad_index) == 1, "ValidateMesh: index == V gives flag 1", totals);
  bad_index.triangles[0] = -1;
  Check(ValidateFlags(bad_index) == 1, "ValidateMesh: negative index gives flag 1", totals);
  Mesh bad_value = mesh;
  bad_value.vertices[bad_value.vertices.size() - 2] = std::numeric_limits<float>::infinity();
  Check(ValidateFlags(bad_value) == 2, "ValidateMesh: Inf in the last image gives flag 2", totals);
  bad_value.triangles[5] = 1 << 30;
  bad_value.vertices[1] = std::numeric_limits<float>::quiet_NaN();
  Check(ValidateFlags(bad_value) == 3, "ValidateMesh: both problems give flags 1|2", totals);

  // A launch outside CUDA's limits is reported, not run.
  FACE_GCN_CUDA_LAUNCH(raster::gpu::ClearKeys, 1, 2048, nullptr)(keys.data(), int64_t{10});
  Check(cudaGetLastError() == cudaErrorInvalidConfiguration && keys[0] == raster::gpu::kEmptyKey &&
            cudaGetLastError() == cudaSuccess,
        "emulated launch rejects 2048 threads per block", totals);
}

}  // namespace

int main() {
  Totals totals;
  KernelChecks(&totals);

  struct Size {
    int width, height;
  };
  const Size sizes[] = {{1, 1}, {7, 5}, {33, 17}, {64, 48}};
  for (unsigned seed = 1; seed <= 4; ++seed) {
    for (const Size& size : sizes) {
      CompareCase(RandomSoup("soup-" + std::to_string(seed), seed * 131 + size.width, 2, 120),
                  size.width, size.height, &totals);
    }
  }
  CompareCase(RandomSoup("soup-big", 77, 1, 1500), 96, 80, &totals);
  CompareCase(RandomSoup("soup-empty", 3, 2, 0), 16, 12, &totals);
  CompareCase(DomeGrid("dome-grid", 3, 41, 0.02f), 96, 96, &totals);
  CompareCase(DomeGrid("dome-grid", 1, 23, 0.0f), 45, 61, &totals);
  CompareCase(AlignedTies("aligned-ties", 16, 12, 0.3f, 0.3f), 16, 12, &totals);
  CompareCase(AlignedTies("aligned-ties", 9, 9, 0.3f, 0.3f), 9, 9, &totals);
  CompareCase(AlignedTies("ties(-0,+0)", 12, 10, -0.0f, 0.0f), 12, 10, &totals);
  CompareCase(AlignedTies("ties(+0,-0)", 12, 10, 0.0f, -0.0f), 12, 10, &totals);
  CompareCase(EyePlane("eye-plane"), 40, 30, &totals);
  CompareCase(Stack("stack-50", 50), 32, 32, &totals);

  const bool ok = totals.id_mismatches == 0 && totals.order_mismatches == 0 &&
                  totals.launch_errors == 0 && totals.check_failures == 0 &&
                  totals.max_dbary <= kTolerance && totals.max_dz <= kTolerance;
  std::printf("SUMMARY cases=%" PRId64 " images=%" PRId64 " pixels=%" PRId64 " covered=%" PRId64
              " triangles=%" PRId64 " id_mismatches=%" PRId64 " max_dbary=%.3g max_dz=%.3g"
              " bit_different_pixels=%" PRId64 " order_mismatches=%" PRId64
              " launch_errors=%" PRId64 " check_failures=%" PRId64 " emulated_threads=%" PRId64
              " result=%s\n",
              totals.cases, totals.images, totals.pixels, totals.covered, totals.triangles,
              totals.id_mismatches, totals.max_dbary, totals.max_dz, totals.value_bit_mismatches,
              totals.order_mismatches, totals.launch_errors, totals.check_failures,
              static_cast<int64_t>(emu::Stats().threads.load()), ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
