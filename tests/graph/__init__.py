"""Graph tests (a package, so test module names cannot collide with other test folders)."""
