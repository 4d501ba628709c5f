//! The fake's own tests: it must follow the AWS rules the engine relies on, in virtual time.
