"""The one line of a TensorFlow error message that says what failed, for one-line CLI errors.

TensorFlow wraps its message in a 'Graph execution error:' header, a node stack ('Detected at node
...', indented frames), a '{{function_node ...}}' prefix and an '[Op:...]' suffix.
"""

from __future__ import annotations

import re

_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")


def message_line(error) -> str:
    """str(error) reduced to its last meaningful line, without TensorFlow's node names (300 characters at most)."""
    text = str(error).strip()
    lines = [line for line in text.splitlines()
             if line.strip() and not line.startswith((" ", "\t", "Graph execution error", "Detected at node", "[["))]
    line = _FUNCTION_NODE.sub("", lines[-1] if lines else text)
    return (line.split(" [Op:")[0].strip() or type(error).__name__)[:300]
