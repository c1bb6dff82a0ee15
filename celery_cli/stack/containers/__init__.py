"""The stack as plain containers: stack.py fills in base.Stack, docker_api.py holds the Docker calls."""
