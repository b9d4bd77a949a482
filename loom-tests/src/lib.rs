//! Loom model checks of hotlimit's lock-free core: the models are in `tests/`. Run them with
//! `scripts/loom.sh`, which builds with `RUSTFLAGS="--cfg hotlimit_loom"`; without the cfg the
//! tests compile to nothing.
