"""Tests of the local-aws emulator: each drives a behaviour through boto3 against a real server."""
