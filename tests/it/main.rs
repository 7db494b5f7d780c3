//! The one integration-test binary (one link on two cores).

mod api;
mod server;
mod skopeo;
mod support;
