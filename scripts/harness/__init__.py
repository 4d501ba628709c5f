"""What the project's Python tools share to run things against a local AWS (scripts/local-aws): starting one
in a state dir of its own and reading its environment (local_aws.py, which also scrubs the caller's
environment), and reading back what it holds (read_state.py). Used by the local AWS's own tests
(scripts/emulator/tests/conftest.py), the benchmarks (scripts/bench) and the reliability matrix
(scripts/reliability). The Rust end-to-end tests have their own (tests/support/mod.rs) and use read_state.py.

Standard library only, except read_state.py (boto3: the local AWS's virtualenv).
"""
