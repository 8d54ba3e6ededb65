//! Which model a worker runs on.
//!
//! [`Catalog`] is read from a running OpenCode server (its providers and configured defaults);
//! [`resolve`] turns a profile's or task's model reference (`auto`, `auto:fast`, `node:vision`,
//! `provider/model`, a fuzzy id) into a concrete `provider/model` plus the reason it was chosen.
//! The hub sends the result with every prompt (`PromptRequest.model`), so a per-task model or
//! a `worker.model.set` takes effect without restarting a server.

mod catalog;
pub mod fuzzy;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod odd_inputs;
mod resolve;

pub use catalog::{Catalog, CatalogFilter, CatalogModel, is_usable, provider_rank};
pub use resolve::{
    MAX_REFERENCE_CHARS, ModelNeeds, ModelRequest, ModelTag, Resolution, ResolveError,
    check_image_input, docs_score, fast_score, resolve, resolve_explicit, vision_named,
    vision_score,
};
