"""The `face-gcn` command: one subcommand per job, each with its own absl flags."""
