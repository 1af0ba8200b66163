//! CONTRACT §6 as SQL: what must always hold, checked after any test, load or fault.
