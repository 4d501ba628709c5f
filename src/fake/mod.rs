//! An in-memory cloud implementing the domain traits, with virtual time and fault injection.
//! Always compiled (not only for `cfg(test)`) so integration tests and benchmarks can use it.
