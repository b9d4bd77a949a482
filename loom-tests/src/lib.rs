//! Loom model checks live in `tests/`; run them with `RUSTFLAGS="--cfg hotlimit_loom"`.
