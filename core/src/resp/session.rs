//! What one RESP connection remembers between commands.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::resp::write::Protocol;

/// The state of one client connection.
#[derive(Debug, Clone)]
pub struct Session {
    /// `CLIENT ID`.
    pub id: u64,
    /// The peer's address.
    pub peer: SocketAddr,
    /// RESP2 until `HELLO 3`.
    pub proto: Protocol,
    /// Whether `AUTH` succeeded (always true when no password is set).
    pub authed: bool,
    /// The selected database (`SELECT`).
    pub db: u32,
    /// `CLIENT SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`.
    pub lib: (Option<Bytes>, Option<Bytes>),
}

impl Session {
    /// A new session for a client at `peer`.
    pub fn new(id: u64, peer: SocketAddr, needs_auth: bool) -> Self {
        Self {
            id,
            peer,
            proto: Protocol::Resp2,
            authed: !needs_auth,
            db: 0,
            name: None,
            lib: (None, None),
        }
    }
}
