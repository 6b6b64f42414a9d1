"""The face-recognition network a command was asked for (nets.recognition), or a one-line error."""

from __future__ import annotations

from face_gcn.cli._errors import fail


def load_or_fail(prog: str, choice: str, facenet_weights: str | None, face_descriptor_weights: str | None):
    """nets.recognition.load for command-line flags; exits with "PROG: error: ..." when the weights do not load."""
    from face_gcn.nets import recognition  # pylint: disable=import-outside-toplevel  (TensorFlow: after flag parsing)
    try:
        return recognition.load(choice, facenet_weights or "", face_descriptor_weights or "")
    except (OSError, ValueError) as error:  # h5py: OSError for a damaged file; Keras: ValueError for another net
        fail(prog, f"cannot load the {choice} recognizer: {str(error).splitlines()[0][:300]}")

