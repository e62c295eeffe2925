"""The `rapport` command: run the stack, issue tokens, audit the logs."""
