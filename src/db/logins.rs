//! Login outcomes shared by replicas (`login_events`), so that a client
//! throttled on one replica is throttled on all: each replica appends its
//! own and replays the others' (see `auth::Throttle`).

use super::{args, Conn, Row, Tx};
use crate::error::Result;

/// One login outcome: `user_key` is the hex SHA-256 of the username
/// (`None` for a token), `peer` the client's address bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginEvent {
    pub user_key: Option<String>,
    pub peer: Option<String>,
    pub ok: bool,
    pub time: i64,
}

pub fn insert(c: &Tx, replica: &str, e: &LoginEvent) -> Result<()> {
    c.exec(
        "record login event",
        "INSERT INTO login_events(replica, user_key, peer, ok, time) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![replica, e.user_key.as_deref(), e.peer.as_deref(), i64::from(e.ok), e.time],
    )?;
    Ok(())
}

fn event(r: &Row) -> Result<(i64, LoginEvent)> {
    Ok((
        r.get(0)?,
        LoginEvent { user_key: r.get(1)?, peer: r.get(2)?, ok: r.get::<i64>(3)? != 0, time: r.get(4)? },
    ))
}

/// Other replicas' events after id `after`, oldest first, at most `limit`.
pub fn others_since(c: &Conn, replica: &str, after: i64, limit: usize) -> Result<Vec<(i64, LoginEvent)>> {
    c.all(
        "read login events",
        "SELECT id, user_key, peer, ok, time FROM login_events WHERE id > ?1 AND replica <> ?2 \
         ORDER BY id LIMIT ?3",
        args![after, replica, limit as i64],
        event,
    )
}

/// Forgets events older than `before` (no throttle looks back that far).
pub fn prune(c: &Tx, before: i64) -> Result<usize> {
    c.exec("prune login events", "DELETE FROM login_events WHERE time < ?1", args![before])
}
