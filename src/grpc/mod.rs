//! The gRPC frontend (grpcio): RegistryService, PolicyService, AuditService
//! and AdminService over the same service layer as `/v1`.
//!
//! Every RPC goes through one interceptor chain (`Chain::unary`): logging
//! (method, peer, duration, status; never metadata values) → authentication
//! (bearer or basic credentials in the `authorization` metadata; Health
//! bypasses) → the admin role for GC, policy, delete and audit RPCs.  The
//! chain runs the service call on a worker pool, never on a completion-queue
//! thread, and replies from there.
//!
//! Invariant: handlers only convert messages and call `service`.

mod convert;
mod services;

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    unused,
    renamed_and_removed_lints,
    deprecated,
    mismatched_lifetime_syntaxes,
    clippy::all
)]
pub mod mcr {
    include!(concat!(env!("OUT_DIR"), "/mcr.rs"));
}

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    unused,
    renamed_and_removed_lints,
    deprecated,
    mismatched_lifetime_syntaxes,
    clippy::all
)]
pub mod mcr_grpc {
    include!(concat!(env!("OUT_DIR"), "/mcr_grpc.rs"));
}

use crate::app::{App, Ctx};
use crate::error::{Error, What};
use crate::model::Actor;
use crossbeam::channel::{self, Sender};
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, UnarySink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send>;

/// Who may call an RPC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// No credentials (Health).
    Nobody,
    /// Any authenticated caller.
    User,
    /// The admin role.
    Admin,
}

/// The interceptor chain and the worker pool it runs calls on.
#[derive(Clone)]
pub struct Chain {
    app: Arc<App>,
    jobs: Sender<Job>,
    /// Behind the TLS relay, grpcio sees the relay's loopback socket; the
    /// relay records which client each of those sockets carries.
    peers: crate::http::PeerMap,
}

static SEQ: AtomicU64 = AtomicU64::new(1);

pub fn status_of(e: &Error) -> RpcStatus {
    let code = match e {
        Error::NotFound(
            What::Repository | What::Blob | What::Manifest | What::Upload | What::Rule | What::User,
        ) => RpcStatusCode::NOT_FOUND,
        Error::NotFound(What::Route) | Error::Unsupported(_) | Error::MethodNotAllowed => {
            RpcStatusCode::UNIMPLEMENTED
        }
        Error::InvalidName(_)
        | Error::InvalidDigest(_)
        | Error::InvalidManifest(_)
        | Error::ManifestTooLarge { .. }
        | Error::BodyTooLarge { .. }
        | Error::ManifestBlobUnknown(_)
        | Error::InvalidUpload(_)
        | Error::InvalidPagination(_)
        | Error::InvalidSize(_)
        | Error::BadRequest(_)
        | Error::DigestMismatch { .. }
        | Error::BodyIncomplete(_) => RpcStatusCode::INVALID_ARGUMENT,
        Error::UploadOutOfOrder { .. } | Error::RangeNotSatisfiable { .. } => RpcStatusCode::OUT_OF_RANGE,
        Error::Unauthenticated => RpcStatusCode::UNAUTHENTICATED,
        Error::InsufficientScope { .. } => RpcStatusCode::PERMISSION_DENIED,
        Error::Denied(_) => RpcStatusCode::PERMISSION_DENIED,
        Error::Busy(_) => RpcStatusCode::ABORTED,
        Error::RateLimited { .. } => RpcStatusCode::RESOURCE_EXHAUSTED,
        Error::Unavailable(_) => RpcStatusCode::UNAVAILABLE,
        Error::Internal(_) => RpcStatusCode::INTERNAL,
    };
    RpcStatus::with_message(code, e.to_string())
}

/// The authorization metadata value, if any (never logged).
pub(crate) fn credentials(ctx: &RpcContext) -> Option<String> {
    ctx.request_headers()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok().map(str::to_string))
}

/// grpcio's peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`) as an address.
pub(crate) fn peer_addr(peer: &str) -> Option<std::net::SocketAddr> {
    peer.split_once(':').and_then(|(_, a)| a.parse().ok())
}

/// Authenticates and authorizes `need`, returning the actor.
pub(crate) fn admit(ctx: &Ctx, creds: Option<&str>, need: Need) -> Result<Actor, Error> {
    if need == Need::Nobody {
        return Ok(Actor::Anonymous);
    }
    let actor = match creds {
        Some(h) => {
            let creds = crate::http::credentials(h).ok_or(Error::Unauthenticated)?;
            crate::service::session::authenticate(ctx, &creds)?
        }
        None => return Err(Error::Unauthenticated),
    };
    if need == Need::Admin {
        let c = Ctx { app: ctx.app, actor: actor.clone(), req_id: ctx.req_id, peer: ctx.peer };
        crate::service::access::require_admin(&c)?;
    }
    Ok(actor)
}

impl Chain {
    pub(crate) fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The client's address for grpcio's peer string, through the relay's
    /// map when the call came through the TLS relay.
    pub(crate) fn peer(&self, rpc_peer: &str) -> Option<std::net::SocketAddr> {
        let seen = peer_addr(rpc_peer)?;
        if seen.ip().is_loopback() {
            if let Some(real) = self.peers.lookup(seen) {
                return Some(real);
            }
        }
        Some(seen)
    }

    /// Runs one unary call through the chain on the worker pool.
    pub fn unary<Resp, F>(
        &self,
        rpc: &RpcContext,
        method: &'static str,
        need: Need,
        sink: UnarySink<Resp>,
        f: F,
    ) where
        Resp: Send + 'static,
        F: FnOnce(&Ctx) -> Result<Resp, Error> + Send + 'static,
    {
        let creds = credentials(rpc);
        let client = self.peer(&rpc.peer());
        let peer = client.map_or_else(|| rpc.peer(), |a| a.to_string());
        let app = self.app.clone();
        let job: Job = Box::new(move || {
            let started = Instant::now();
            let req_id = format!("g{:07x}", SEQ.fetch_add(1, Ordering::Relaxed));
            let mut ctx = Ctx { app: &app, actor: Actor::Anonymous, req_id: &req_id, peer: client };
            let result = admit(&ctx, creds.as_deref(), need).and_then(|actor| {
                ctx.actor = actor;
                f(&ctx)
            });
            let (code, sent) = match result {
                Ok(resp) => (RpcStatusCode::OK, futures_executor::block_on(sink.success(resp))),
                Err(e) => {
                    if let Error::Internal(err) = &e {
                        log::error!("internal error req={req_id} method={method} err={err:#}");
                    }
                    let st = status_of(&e);
                    let code = st.code();
                    (code, futures_executor::block_on(sink.fail(st)))
                }
            };
            log::info!(
                "grpc req={req_id} method={method} status={code:?} ms={} user={} peer={peer} sent={}",
                started.elapsed().as_millis(),
                ctx.actor.name(),
                if sent.is_ok() { "ok" } else { "aborted" }
            );
        });
        if let Err(e) = self.jobs.send(job) {
            log::error!("grpc worker pool gone method={method} err={e}");
        }
    }
}

/// Calls each completion queue is ready to take at once.
const GRPC_CALL_SLOTS: usize = 64;

/// The gRPC server: grpcio on its own completion queues, a worker pool for
/// the calls, and (with TLS) the relay terminating TLS 1.3 in front.
pub struct GrpcServer {
    server: grpcio::Server,
    pool: Vec<JoinHandle<()>>,
    /// The services hold senders too, so the pool stops on this flag.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    relay: Option<crate::http::Relay>,
    addr: std::net::SocketAddr,
    pub(crate) tails: services::Tails,
}

impl GrpcServer {
    pub fn start(
        app: Arc<App>,
        listen: std::net::SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<GrpcServer> {
        use anyhow::Context as _;
        let (jobs, rx) = channel::unbounded::<Job>();
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pool = (0..4)
            .map(|i| {
                let (rx, stopping) = (rx.clone(), stopping.clone());
                std::thread::Builder::new()
                    .name(format!("grpc-worker-{i}"))
                    .spawn(move || loop {
                        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                            Ok(job) => job(),
                            Err(channel::RecvTimeoutError::Timeout) if !stopping.load(Ordering::SeqCst) => {}
                            Err(_) => break,
                        }
                    })
                    .context("spawn grpc worker")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let peers = crate::http::PeerMap::default();
        let chain = Chain { app: app.clone(), jobs: jobs.clone(), peers: peers.clone() };
        let tails = services::Tails::default();
        let env = Arc::new(grpcio::Environment::new(2));
        // grpcio posts 1,024 call slots per completion queue by default,
        // ~0.9 MiB held for an admin API; a slot is posted again as soon as
        // a call takes it, and calls beyond the slots wait in gRPC's core.
        let mut server = grpcio::ServerBuilder::new(env)
            .requests_slot_per_cq(GRPC_CALL_SLOTS)
            .register_service(mcr_grpc::create_admin_service(services::Admin(chain.clone())))
            .register_service(mcr_grpc::create_registry_service(services::Registry(chain.clone())))
            .register_service(mcr_grpc::create_policy_service(services::Policy(chain.clone())))
            .register_service(mcr_grpc::create_audit_service(services::Audit(chain, tails.clone())))
            .build()
            .context("build gRPC server")?;
        // Plain gRPC listens where configured (loopback only, checked by the
        // config); with TLS, grpcio listens on loopback behind the relay.
        let bind = match tls {
            Some(_) => "127.0.0.1:0".to_string(),
            None => listen.to_string(),
        };
        let port = server
            .add_listening_port(bind.clone(), grpcio::ServerCredentials::insecure())
            .with_context(|| format!("cannot listen for gRPC on {bind}"))?;
        server.start();
        let backend = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let (relay, addr) = if let Some(tls) = tls {
            let e = crate::http::Relay::start(listen, backend, tls, peers)
                .with_context(|| format!("cannot listen for gRPC on {listen}"))?;
            let a = e.addr();
            (Some(e), a)
        } else {
            (None, std::net::SocketAddr::new(listen.ip(), port))
        };
        Ok(GrpcServer { server, pool, stopping, relay, addr, tails })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// New TLS connections use `config` from now on.
    pub fn reload_tls(&self, config: Arc<rustls::ServerConfig>) {
        if let Some(e) = &self.relay {
            e.reload_tls(config);
        }
    }

    pub fn shutdown(mut self) {
        if let Some(mut e) = self.relay.take() {
            e.stop();
        }
        self.tails.stop_all();
        let _ = futures_executor::block_on(self.server.shutdown());
        // Calls in flight have finished; the queue drains before the workers stop.
        self.stopping.store(true, Ordering::SeqCst);
        for h in self.pool.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_strings() {
        assert_eq!(super::peer_addr("ipv4:127.0.0.1:5000"), Some("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(super::peer_addr("ipv6:[::1]:5000"), Some("[::1]:5000".parse().unwrap()));
        assert_eq!(super::peer_addr("unix:/tmp/x"), None);
    }
}
