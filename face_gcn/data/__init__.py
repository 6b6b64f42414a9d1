"""Photos to training data: robust loading, MTCNN detection, Deng alignment, face masks,
sharded TFRecords and the tf.data training input."""
