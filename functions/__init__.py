"""Thin Azure Functions blueprints: parse the trigger input, call a service in shared/, return."""
