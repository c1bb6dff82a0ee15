"""The stack as Docker Swarm services: stack.py fills in base.Stack, docker_api.py holds the Docker calls."""
