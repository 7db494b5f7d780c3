//! The one integration-test binary (one link on two cores).

mod admin_api;
mod api;
mod audit;
mod auth;
mod browser;
mod conformance;
mod credentials;
mod docker;
mod front_door;
mod gc;
mod grpc;
mod mcias;
mod mcrctl;
mod replicas;
mod s3;
mod server;
mod skopeo;
mod support;
mod tidy;
mod tls;
mod ui;
