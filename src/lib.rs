//! mcr: a self-hosted OCI container registry.
//!
//! Modules in reading order: the data model and errors, configuration and
//! the application root, the service layer and what it stands on (database,
//! storage), then the frontends (HTTP plumbing, the OCI `/v2` API, the admin API, gRPC, the
//! web UI with its `templates/`).

pub mod admin_api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod gc;
pub mod grpc;
pub mod http;
pub mod model;
pub mod oci;
pub mod outbound;
pub mod policy;
pub mod router;
pub mod service;
pub mod storage;
#[path = "../templates/mod.rs"]
pub mod templates;
pub mod ui;
