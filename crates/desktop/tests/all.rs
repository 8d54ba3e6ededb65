// The one integration-test binary of this crate (a link per binary is what costs); the tests are
// modules under `suite/`.
mod suite;
