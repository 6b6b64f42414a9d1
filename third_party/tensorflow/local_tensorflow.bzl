"""A repository rule exposing the pip-installed TensorFlow's headers and framework library.

The interpreter is taken from $FACE_GCN_PYTHON, then $PYTHON_BIN_PATH, then `python3` on PATH;
it is asked for tf.sysconfig.get_include() and tf.sysconfig.get_lib(), and the repository
links to those directories. Changing either variable refetches the repository.
"""

_PYTHON_VARIABLES = ["FACE_GCN_PYTHON", "PYTHON_BIN_PATH"]

_QUERY = "import tensorflow as tf; print(tf.sysconfig.get_include()); print(tf.sysconfig.get_lib())"

_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "headers",
    hdrs = glob(["include/**"]),
    includes = ["include"],
)

cc_library(
    name = "framework",
    srcs = ["lib/libtensorflow_framework.so.2"],
)
"""

def _python(repository_ctx):
    for variable in _PYTHON_VARIABLES:
        value = repository_ctx.os.environ.get(variable, "")
        if value:
            return value
    found = repository_ctx.which("python3")
    if not found:
        fail("local_tensorflow: no Python found; set FACE_GCN_PYTHON to an interpreter with TensorFlow")
    return str(found)

def _local_tensorflow_impl(repository_ctx):
    python = _python(repository_ctx)
    result = repository_ctx.execute([python, "-c", _QUERY], quiet = True)
    if result.return_code != 0:
        fail("local_tensorflow: `%s` could not import tensorflow:\n%s" % (python, result.stderr))
    include_dir, lib_dir = result.stdout.strip().splitlines()[-2:]
    repository_ctx.symlink(include_dir, "include")
    repository_ctx.symlink(lib_dir + "/libtensorflow_framework.so.2", "lib/libtensorflow_framework.so.2")
    repository_ctx.file("BUILD", _BUILD)

local_tensorflow = repository_rule(
    implementation = _local_tensorflow_impl,
    environ = _PYTHON_VARIABLES + ["PATH"],
    local = True,
)
