// `worker-crashpoints`: the worker, built with its `crashpoints` feature for the crash-point
// matrix (see Cargo.toml and the `crashpoints` crate). The same program as `worker`.
include!("main.rs");
