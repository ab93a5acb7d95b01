//! Proving the cluster secret on a connection: SPAKE2 over Ed25519 bound to the TLS
//! exporter value of that connection, then key confirmation.

use ring::hmac;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::{AuthError, ClusterKey, Role};
use crate::error::Result;

/// The exporter label of the authentication exchange.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-memmesh-cluster-auth";

impl ClusterKey {
    /// Starts the PAKE for `role` on a connection whose exporter value is `exporter`.
    pub fn start(&self, role: Role, exporter: &[u8; 32]) -> Pake {
        let password = Password::new(self.derived.as_slice());
        let (id_a, id_b) = (
            identity(Role::Client, exporter),
            identity(Role::Server, exporter),
        );
        let (state, msg) = match role {
            Role::Client => Spake2::<Ed25519Group>::start_a(&password, &id_a, &id_b),
            Role::Server => Spake2::<Ed25519Group>::start_b(&password, &id_a, &id_b),
        };
        let mut message = [0u8; 32];
        // spake2 prefixes the 32-byte point with a side byte, implied here by the role.
        if let Some(point) = msg.get(1..33) {
            message.copy_from_slice(point);
        }
        Pake {
            role,
            exporter: *exporter,
            state,
            message,
        }
    }
}

fn identity(role: Role, exporter: &[u8; 32]) -> Identity {
    let mut id = match role {
        Role::Client => b"memmesh/2 client".to_vec(),
        Role::Server => b"memmesh/2 server".to_vec(),
    };
    id.extend_from_slice(exporter);
    Identity::new(&id)
}

/// One side's PAKE in progress.
pub struct Pake {
    role: Role,
    exporter: [u8; 32],
    state: Spake2<Ed25519Group>,
    message: [u8; 32],
}

impl std::fmt::Debug for Pake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pake({:?})", self.role)
    }
}

impl Pake {
    /// The message to send to the peer (a curve point blinded by the secret: it reveals
    /// nothing that can be tested against a guess of the secret).
    pub fn message(&self) -> [u8; 32] {
        self.message
    }

    /// Completes the exchange with the peer's message. Fails (`Unauthorized`) only when
    /// that message is not a curve point; a wrong secret shows at the confirmation.
    pub fn finish(self, peer: &[u8; 32]) -> Result<Session> {
        let side = match self.role {
            Role::Client => 0x42, // the peer is side B
            Role::Server => 0x41, // the peer is side A
        };
        let mut msg = Vec::with_capacity(33);
        msg.push(side);
        msg.extend_from_slice(peer);
        let key = self.state.finish(&msg).map_err(AuthError::BadPakeMessage)?;
        Ok(Session {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            exporter: self.exporter,
        })
    }
}

/// The shared key of a completed PAKE; both sides confirm they derived the same one.
pub struct Session {
    key: hmac::Key,
    exporter: [u8; 32],
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

impl Session {
    /// The confirmation `role` sends: an HMAC under the PAKE key, bound to the connection.
    pub fn confirmation(&self, role: Role) -> [u8; 32] {
        let tag = hmac::sign(&self.key, &confirm_message(role, &self.exporter));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Checks the peer's confirmation (constant time); `role` is the peer's role.
    pub fn verify(&self, role: Role, confirmation: &[u8; 32]) -> bool {
        hmac::verify(
            &self.key,
            &confirm_message(role, &self.exporter),
            confirmation,
        )
        .is_ok()
    }
}

fn confirm_message(role: Role, exporter: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(match role {
        Role::Client => b"memmesh/2 confirm client::",
        Role::Server => b"memmesh/2 confirm server::",
    });
    m.extend_from_slice(exporter);
    m
}

/// The exporter value of a QUIC connection (RFC 5705 via TLS 1.3).
pub fn exporter(conn: &quinn::Connection) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| AuthError::NoExporter)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// Runs a full exchange between `a` (client) and `b` (server) and returns whether
    /// each side accepted the other's confirmation.
    fn exchange(a: &ClusterKey, b: &ClusterKey, exp_a: [u8; 32], exp_b: [u8; 32]) -> (bool, bool) {
        let pa = a.start(Role::Client, &exp_a);
        let pb = b.start(Role::Server, &exp_b);
        let (ma, mb) = (pa.message(), pb.message());
        let sa = pa.finish(&mb).unwrap();
        let sb = pb.finish(&ma).unwrap();
        (
            sa.verify(Role::Server, &sb.confirmation(Role::Server)),
            sb.verify(Role::Client, &sa.confirmation(Role::Client)),
        )
    }

    #[test]
    fn the_pake_succeeds_only_with_the_same_secret_and_connection() {
        let a = ClusterKey::new(Some(b"a long enough test secret"));
        let a2 = ClusterKey::new(Some(b"a long enough test secret"));
        let b = ClusterKey::new(Some(b"another test secret, also long"));
        let open = ClusterKey::new(None);
        let exp = [7u8; 32];
        assert_eq!(exchange(&a, &a2, exp, exp), (true, true));
        assert_eq!(exchange(&open, &open, exp, exp), (true, true));
        assert_eq!(exchange(&a, &b, exp, exp), (false, false));
        assert_eq!(exchange(&a, &open, exp, exp), (false, false));
        // Another connection (a relay between two TLS sessions) fails.
        assert_eq!(exchange(&a, &a2, exp, [8u8; 32]), (false, false));
    }

    #[test]
    fn confirmations_cannot_be_reflected_and_messages_are_fresh() {
        let k = ClusterKey::new(Some(b"a long enough test secret"));
        let exp = [1u8; 32];
        let pa = k.start(Role::Client, &exp);
        let pb = k.start(Role::Server, &exp);
        let again = k.start(Role::Client, &exp);
        // Randomised: the same secret on the same connection never gives the same message.
        assert_ne!(pa.message(), again.message());
        let (ma, mb) = (pa.message(), pb.message());
        let sa = pa.finish(&mb).unwrap();
        let sb = pb.finish(&ma).unwrap();
        assert!(!sa.verify(Role::Server, &sa.confirmation(Role::Client)));
        assert!(!sb.verify(Role::Client, &sb.confirmation(Role::Server)));
        // A message that is no curve point is refused.
        assert!((0u8..=255).any(|i| k.start(Role::Server, &exp).finish(&[i; 32]).is_err()));
    }

    #[test]
    fn a_bad_pake_message_is_a_typed_unauthorized_error() {
        let k = ClusterKey::new(Some(b"a long enough test secret"));
        let exp = [1u8; 32];
        let e = (0u8..=255)
            .find_map(|i| k.start(Role::Server, &exp).finish(&[i; 32]).err())
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert!(e.message().starts_with("bad PAKE message: "), "{e}");
        assert!(matches!(
            e.downcast_ref::<AuthError>(),
            Some(AuthError::BadPakeMessage(_))
        ));
    }

    #[test]
    fn a_bad_pake_message_keeps_spake2s_error_as_the_source() {
        let k = ClusterKey::new(Some(b"a long enough test secret"));
        let exp = [1u8; 32];
        let e = (0u8..=255)
            .find_map(|i| k.start(Role::Server, &exp).finish(&[i; 32]).err())
            .unwrap();
        let cause = std::error::Error::source(&e).expect("spake2's error is kept");
        assert!(cause.downcast_ref::<spake2::Error>().is_some());
        assert_eq!(e.message(), format!("bad PAKE message: {cause}"));
    }
}
