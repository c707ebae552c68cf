//! Where the status server may listen (`status.listen`): a config rule, checked when the
//! config is read and again when the server binds.

use std::net::SocketAddr;

use crate::secret::Secret;

/// Whether the status server may listen on `addr`: loopback always, anything else only
/// with a token.
pub fn check_bind(addr: SocketAddr, token: Option<&Secret>) -> Result<(), String> {
    if addr.ip().to_canonical().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "status.listen: refusing to serve the status page on {addr}, which is not a \
             loopback address, without status.token; set status.token (clients then send \
             `Authorization: Bearer <token>`) or listen on 127.0.0.1"
        ))
    }
}
