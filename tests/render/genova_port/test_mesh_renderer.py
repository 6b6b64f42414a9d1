"""google/tf_mesh_renderer's mesh_renderer/mesh_renderer_test.py, ported to TF2 eager.

His scenes, calls, assertions and tolerances (Apache-2.0 original); only the imports name
face_gcn's drop-in modules, graph-mode sessions became eager calls (the optimisation loop a
tf.function step with his Momentum update), TF1's tf.test.compute_gradient became
genova_utils.compute_gradient, and tensors his graphs derived from the cube's vertices (the
normals) are derived from the perturbed vertices here too. Each test runs once per rasterizer
backend (see conftest.py).
"""

import os
import sys

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genova_utils as test_utils  # noqa: E402

from face_gcn.render import camera_utils  # noqa: E402
from face_gcn.render import mesh_renderer  # noqa: E402


class TestMeshRenderer:

    def setup_method(self):
        self.test_data_directory = test_utils.TEST_DATA_DIRECTORY

        # Set up a basic cube centered at the origin, with vertex normals pointing
        # outwards along the line from the origin to the cube vertices:
        self.cube_vertices = tf.constant(
            [[-1, -1, 1], [-1, -1, -1], [-1, 1, -1], [-1, 1, 1], [1, -1, 1],
             [1, -1, -1], [1, 1, -1], [1, 1, 1]],
            dtype=tf.float32)
        self.cube_normals = tf.nn.l2_normalize(self.cube_vertices, axis=1)
        self.cube_triangles = tf.constant(
            [[0, 1, 2], [2, 3, 0], [3, 2, 6], [6, 7, 3], [7, 6, 5], [5, 4, 7],
             [4, 5, 1], [1, 0, 4], [5, 6, 2], [2, 1, 5], [7, 4, 0], [0, 3, 7]],
            dtype=tf.int32)

    def testRendersSimpleCube(self):
        """Renders a simple cube to test the full forward pass (kernel and python wrapper)."""
        model_transforms = camera_utils.euler_matrices(
            [[-20.0, 0.0, 60.0], [45.0, 60.0, 0.0]])[:, :3, :3]

        vertices_world_space = tf.matmul(
            tf.stack([self.cube_vertices, self.cube_vertices]),
            model_transforms,
            transpose_b=True)

        normals_world_space = tf.matmul(
            tf.stack([self.cube_normals, self.cube_normals]),
            model_transforms,
            transpose_b=True)

        # camera position:
        eye = tf.constant(2 * [[0.0, 0.0, 6.0]], dtype=tf.float32)
        center = tf.constant(2 * [[0.0, 0.0, 0.0]], dtype=tf.float32)
        world_up = tf.constant(2 * [[0.0, 1.0, 0.0]], dtype=tf.float32)
        image_width = 640
        image_height = 480
        light_positions = tf.constant([[[0.0, 0.0, 6.0]], [[0.0, 0.0, 6.0]]])
        light_intensities = tf.ones([2, 1, 3], dtype=tf.float32)
        vertex_diffuse_colors = tf.ones_like(vertices_world_space, dtype=tf.float32)

        rendered = mesh_renderer.mesh_renderer(
            vertices_world_space, self.cube_triangles, normals_world_space,
            vertex_diffuse_colors, eye, center, world_up, light_positions,
            light_intensities, image_width, image_height)

        images = rendered.numpy()
        for image_id in range(images.shape[0]):
            target_image_name = "Gray_Cube_%i.png" % image_id
            baseline_image_path = os.path.join(self.test_data_directory, target_image_name)
            test_utils.expect_image_file_and_render_are_near(
                baseline_image_path, images[image_id, :, :, :])

    def testComplexShading(self):
        """Tests specular highlights, colors, and multiple lights per image."""
        # rotate the cube for the test:
        model_transforms = camera_utils.euler_matrices(
            [[-20.0, 0.0, 60.0], [45.0, 60.0, 0.0]])[:, :3, :3]

        vertices_world_space = tf.matmul(
            tf.stack([self.cube_vertices, self.cube_vertices]),
            model_transforms,
            transpose_b=True)

        normals_world_space = tf.matmul(
            tf.stack([self.cube_normals, self.cube_normals]),
            model_transforms,
            transpose_b=True)

        # camera position:
        eye = tf.constant([[0.0, 0.0, 6.0], [0., 0.2, 18.0]], dtype=tf.float32)
        center = tf.constant([[0.0, 0.0, 0.0], [0.1, -0.1, 0.1]], dtype=tf.float32)
        world_up = tf.constant([[0.0, 1.0, 0.0], [0.1, 1.0, 0.15]], dtype=tf.float32)
        fov_y = tf.constant([40., 13.3], dtype=tf.float32)
        near_clip = tf.constant(0.1, dtype=tf.float32)
        far_clip = tf.constant(25.0, dtype=tf.float32)
        image_width = 640
        image_height = 480
        light_positions = tf.constant([[[0.0, 0.0, 6.0], [1.0, 2.0, 6.0]],
                                       [[0.0, -2.0, 4.0], [1.0, 3.0, 4.0]]])
        light_intensities = tf.constant(
            [[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]],
            dtype=tf.float32)
        vertex_diffuse_colors = tf.constant(2 * [[[1.0, 0.0, 0.0],
                                                  [0.0, 1.0, 0.0],
                                                  [0.0, 0.0, 1.0],
                                                  [1.0, 1.0, 1.0],
                                                  [1.0, 1.0, 0.0],
                                                  [1.0, 0.0, 1.0],
                                                  [0.0, 1.0, 1.0],
                                                  [0.5, 0.5, 0.5]]],
                                            dtype=tf.float32)
        vertex_specular_colors = tf.constant(2 * [[[0.0, 1.0, 0.0],
                                                   [0.0, 0.0, 1.0],
                                                   [1.0, 1.0, 1.0],
                                                   [1.0, 1.0, 0.0],
                                                   [1.0, 0.0, 1.0],
                                                   [0.0, 1.0, 1.0],
                                                   [0.5, 0.5, 0.5],
                                                   [1.0, 0.0, 0.0]]],
                                             dtype=tf.float32)
        shininess_coefficients = 6.0 * tf.ones([2, 8], dtype=tf.float32)
        ambient_color = tf.constant([[0., 0., 0.], [0.1, 0.1, 0.2]], dtype=tf.float32)
        renders = mesh_renderer.mesh_renderer(
            vertices_world_space, self.cube_triangles, normals_world_space,
            vertex_diffuse_colors, eye, center, world_up, light_positions,
            light_intensities, image_width, image_height, vertex_specular_colors,
            shininess_coefficients, ambient_color, fov_y, near_clip, far_clip)
        tonemapped_renders = tf.concat(
            [
                mesh_renderer.tone_mapper(renders[:, :, :, 0:3], 0.7),
                renders[:, :, :, 3:4]
            ],
            axis=3)

        # Check that shininess coefficient broadcasting works by also rendering
        # with a scalar shininess coefficient, and ensuring the result is identical:
        broadcasted_renders = mesh_renderer.mesh_renderer(
            vertices_world_space, self.cube_triangles, normals_world_space,
            vertex_diffuse_colors, eye, center, world_up, light_positions,
            light_intensities, image_width, image_height, vertex_specular_colors,
            6.0, ambient_color, fov_y, near_clip, far_clip)
        tonemapped_broadcasted_renders = tf.concat(
            [
                mesh_renderer.tone_mapper(broadcasted_renders[:, :, :, 0:3], 0.7),
                broadcasted_renders[:, :, :, 3:4]
            ],
            axis=3)

        images = tonemapped_renders.numpy()
        broadcasted_images = tonemapped_broadcasted_renders.numpy()
        for image_id in range(images.shape[0]):
            target_image_name = "Colored_Cube_%i.png" % image_id
            baseline_image_path = os.path.join(self.test_data_directory, target_image_name)
            test_utils.expect_image_file_and_render_are_near(
                baseline_image_path, images[image_id, :, :, :])
            test_utils.expect_image_file_and_render_are_near(
                baseline_image_path, broadcasted_images[image_id, :, :, :])

    def testFullRenderGradientComputation(self):
        """Verifies the Jacobian matrix for the entire renderer.

        This ensures correct gradients are propagated backwards through the entire process, not
        just through the rasterization kernel. Uses the simple cube forward pass.
        """
        image_height = 21
        image_width = 28

        # rotate the cube for the test:
        model_transforms = camera_utils.euler_matrices(
            [[-20.0, 0.0, 60.0], [45.0, 60.0, 0.0]])[:, :3, :3]

        # camera position:
        eye = tf.constant([0.0, 0.0, 6.0], dtype=tf.float32)
        center = tf.constant([0.0, 0.0, 0.0], dtype=tf.float32)
        world_up = tf.constant([0.0, 1.0, 0.0], dtype=tf.float32)

        # Scene has a single light from the viewer's eye.
        light_positions = tf.expand_dims(tf.stack([eye, eye], axis=0), axis=1)
        light_intensities = tf.ones([2, 1, 3], dtype=tf.float32)

        def rendered(cube_vertices):
            cube_normals = tf.nn.l2_normalize(cube_vertices, axis=1)
            vertices_world_space = tf.matmul(
                tf.stack([cube_vertices, cube_vertices]),
                model_transforms,
                transpose_b=True)

            normals_world_space = tf.matmul(
                tf.stack([cube_normals, cube_normals]),
                model_transforms,
                transpose_b=True)

            vertex_diffuse_colors = tf.ones_like(vertices_world_space, dtype=tf.float32)

            return mesh_renderer.mesh_renderer(
                vertices_world_space, self.cube_triangles, normals_world_space,
                vertex_diffuse_colors, eye, center, world_up, light_positions,
                light_intensities, image_width, image_height)

        theoretical, numerical = test_utils.compute_gradient(
            rendered, x_init_value=self.cube_vertices.numpy(), delta=1e-3)
        jacobians_match, message = test_utils.check_jacobians_are_nearly_equal(
            theoretical, numerical, 0.01, 0.01)
        assert jacobians_match, message

    def testThatCubeRotates(self):
        """Optimize a simple cube's rotation using pixel loss.

        The rotation is represented as static-basis euler angles. This test checks that the
        computed gradients are useful.
        """
        image_height = 480
        image_width = 640
        initial_euler_angles = [[0.0, 0.0, 0.0]]

        euler_angles = tf.Variable(initial_euler_angles)

        # camera position:
        eye = tf.constant([[0.0, 0.0, 6.0]], dtype=tf.float32)
        center = tf.constant([[0.0, 0.0, 0.0]], dtype=tf.float32)
        world_up = tf.constant([[0.0, 1.0, 0.0]], dtype=tf.float32)

        vertex_diffuse_colors = tf.ones([1, 8, 3], dtype=tf.float32)
        light_positions = tf.reshape(eye, [1, 1, 3])
        light_intensities = tf.ones([1, 1, 3], dtype=tf.float32)

        def render_cube():
            model_rotation = camera_utils.euler_matrices(euler_angles)[0, :3, :3]

            vertices_world_space = tf.reshape(
                tf.matmul(self.cube_vertices, model_rotation, transpose_b=True),
                [1, 8, 3])

            normals_world_space = tf.reshape(
                tf.matmul(self.cube_normals, model_rotation, transpose_b=True),
                [1, 8, 3])

            render = mesh_renderer.mesh_renderer(
                vertices_world_space, self.cube_triangles, normals_world_space,
                vertex_diffuse_colors, eye, center, world_up, light_positions,
                light_intensities, image_width, image_height)
            return tf.reshape(render, [image_height, image_width, 4])

        # Pick the desired cube rotation for the test:
        test_model_rotation = camera_utils.euler_matrices([[-20.0, 0.0, 60.0]])[0, :3, :3]

        desired_vertex_positions = tf.reshape(
            tf.matmul(self.cube_vertices, test_model_rotation, transpose_b=True),
            [1, 8, 3])
        desired_normals = tf.reshape(
            tf.matmul(self.cube_normals, test_model_rotation, transpose_b=True),
            [1, 8, 3])
        desired_render = mesh_renderer.mesh_renderer(
            desired_vertex_positions, self.cube_triangles, desired_normals,
            vertex_diffuse_colors, eye, center, world_up, light_positions,
            light_intensities, image_width, image_height)
        desired_render = tf.reshape(desired_render, [image_height, image_width, 4])

        # tf.train.MomentumOptimizer(0.7, 0.1): accumulation = 0.1 * accumulation + grad,
        # variable -= 0.7 * accumulation.
        learning_rate, momentum = 0.7, 0.1
        accumulation = tf.Variable(tf.zeros_like(euler_angles))

        @tf.function
        def optimization_step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.abs(render_cube() - desired_render))
            grad = tape.gradient(loss, [euler_angles])
            grad, _ = tf.clip_by_global_norm(grad, 1.0)
            accumulation.assign(momentum * accumulation + grad[0])
            euler_angles.assign_sub(learning_rate * accumulation)
            return loss

        for _ in range(35):
            optimization_step()
        final_image = render_cube().numpy()
        desired_image = desired_render.numpy()

        target_image_name = "Gray_Cube_0.png"
        baseline_image_path = os.path.join(self.test_data_directory, target_image_name)
        test_utils.expect_image_file_and_render_are_near(baseline_image_path, desired_image)
        test_utils.expect_image_file_and_render_are_near(
            baseline_image_path,
            final_image,
            max_outlier_fraction=0.01,
            pixel_error_threshold=0.04)
