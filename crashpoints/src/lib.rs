//! Fault injection for the crash-point matrix (`chaos`, scenario 8; docs/RELIABILITY.md).
//!
//! The activities and the workflow's step runner call [`hit`] at named points: `<step>.before`
//! (nothing of this run of the step has committed), `<step>.after` (it committed, its result is
//! not yet reported) and, for a local activity, `<step>.before_completion` (the workflow has the
//! step's result, but the workflow task that carries it has not reached the server). In a build
//! with the `enabled` feature, a point that matches the control file named by `CRASH_FILE`
//! aborts the process, as `kill -9` would: no destructor runs, no connection is closed
//! politely, nothing more reaches the server or the database.
//!
//! The control file holds the point on its first line and, optionally, the order id on its
//! second (no second line: any order). It fires once: the file is renamed to `<file>.fired`
//! before the abort, so a worker started again with the same settings runs on.
//!
//! Without the feature [`hit`] is empty and [`ENABLED`] is false, so callers can skip building
//! the point's name.

/// Whether this build can crash on purpose.
pub const ENABLED: bool = cfg!(feature = "enabled");

/// Aborts the process if the control file names `point` (and `order_id`, if it names one).
#[inline]
pub fn hit(point: &str, order_id: &str) {
    #[cfg(feature = "enabled")]
    armed::hit(point, order_id);
    #[cfg(not(feature = "enabled"))]
    let _ = (point, order_id);
}

#[cfg(feature = "enabled")]
mod armed {
    use std::path::PathBuf;

    pub fn hit(point: &str, order_id: &str) {
        let Some(file) = std::env::var_os("CRASH_FILE").map(PathBuf::from) else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            return;
        };
        let mut lines = text.lines().map(str::trim);
        if lines.next() != Some(point) {
            return;
        }
        if let Some(order) = lines.next().filter(|o| !o.is_empty())
            && order != order_id
        {
            return;
        }
        let fired = file.with_extension("fired");
        // Renamed first: if another thread got here too, only one of them wins the rename.
        if std::fs::rename(&file, &fired).is_err() {
            return;
        }
        eprintln!("crashpoints: aborting at {point} (order {order_id})");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    /// `cargo test --workspace` builds what `make up` and the image run: no crate of it may turn
    /// the crash points on.
    #[test]
    fn the_default_build_cannot_crash_on_purpose() {
        // Read at run time: a constant in an assertion is a lint of its own.
        let enabled = std::hint::black_box(super::ENABLED);
        assert!(
            !enabled,
            "a crate of the workspace turned the crash points on"
        );
        super::hit("any.point", "any order");
    }
}
