//! placeholder, filled by the bindings work
