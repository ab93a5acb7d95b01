//! A SWIM packet from a peer, read and checked before foca sees it. Pure logic.
//!
//! foca lays a packet out as: a header; then, unless the message is a `Broadcast`, a
//! `u16` count and that many member updates (when at least two bytes remain); then
//! length-prefixed custom broadcasts. [`Packet::parse`] reads it the way foca will, checks
//! every identity against the metadata limits, and requires that the header's sender is
//! the authenticated peer the packet came from: no member speaks in another's name.
//! [`Packet::rebuild`] gives foca the same bytes without the updates admission dropped.

use std::ops::Range;

use bytes::{BufMut, Bytes};
use foca::{Header, Member, Message};

use crate::error::Error;
use crate::identity::NodeId;
use crate::membership::codec::{check_header, check_member_id};
use crate::membership::error::MembershipError;
use crate::membership::limits::MAX_PACKET_LEN;
use crate::membership::member::MemberId;
use crate::wire::codec::{decode_prefix_of, WireError};

/// A checked SWIM packet.
#[derive(Debug, Clone)]
pub struct Packet {
    raw: Bytes,
    header: Header<MemberId>,
    header_len: usize,
    /// The updates with where each lies in `raw` (`None`: the packet has no update
    /// section).
    updates: Option<Vec<(Member<MemberId>, Range<usize>)>>,
    /// Where the custom broadcasts start.
    tail: usize,
}

fn corrupted(what: impl Into<String>) -> Error {
    Error::from(WireError::Malformed(what.into()))
}

impl Packet {
    /// Reads `raw`, received from the authenticated peer `from`.
    pub fn parse(raw: Bytes, from: NodeId) -> Result<Packet, Error> {
        if raw.len() > MAX_PACKET_LEN {
            return Err(MembershipError::PacketTooLarge(raw.len()).into());
        }
        let (header, header_len) = decode_prefix_of::<Header<MemberId>>(&raw)?;
        check_header(&header)?;
        if header.src.id != from {
            return Err(MembershipError::Impersonation {
                from: from.short(),
                claimed: header.src.id.short(),
            }
            .into());
        }
        let rest = raw.len() - header_len;
        if rest == 1 || (header.message == Message::Announce && rest > 0) {
            return Err(corrupted("a SWIM packet with a stray tail"));
        }
        let mut at = header_len;
        let updates = if rest >= 2 && header.message != Message::Broadcast {
            let count = u16::from_be_bytes([raw[at], raw[at + 1]]);
            at += 2;
            let mut updates = Vec::with_capacity(usize::from(count).min(rest / 8));
            for _ in 0..count {
                let (member, used) = decode_prefix_of::<Member<MemberId>>(&raw[at..])?;
                check_member_id(member.id())?;
                updates.push((member, at..at + used));
                at += used;
            }
            Some(updates)
        } else {
            None
        };
        Ok(Packet {
            raw,
            header,
            header_len,
            updates,
            tail: at,
        })
    }

    /// The sender's identity (the authenticated peer's own word).
    pub fn sender(&self) -> &MemberId {
        &self.header.src
    }

    /// The identity the sender addressed it to (for this node, possibly an older
    /// generation of it).
    pub fn recipient(&self) -> &MemberId {
        &self.header.dst
    }

    /// Whether it is an `Announce` (which foca accepts for any generation of this node).
    pub fn is_announce(&self) -> bool {
        self.header.message == Message::Announce
    }

    /// The member updates it carries.
    pub fn updates(&self) -> Vec<&Member<MemberId>> {
        self.updates.iter().flatten().map(|(m, _)| m).collect()
    }

    /// The packet's bytes with only the updates flagged in `keep` (one flag per update,
    /// in order; missing flags keep).
    pub fn rebuild(&self, keep: &[bool]) -> Bytes {
        let Some(updates) = &self.updates else {
            return self.raw.clone();
        };
        if keep.iter().all(|k| *k) {
            return self.raw.clone();
        }
        let kept: Vec<&Range<usize>> = updates
            .iter()
            .enumerate()
            .filter(|(i, _)| keep.get(*i).copied().unwrap_or(true))
            .map(|(_, (_, r))| r)
            .collect();
        let mut out = Vec::with_capacity(self.raw.len());
        out.extend_from_slice(&self.raw[..self.header_len]);
        // At most the original count, which fitted a u16.
        out.put_u16(u16::try_from(kept.len()).unwrap_or(u16::MAX));
        for r in kept {
            out.extend_from_slice(&self.raw[r.clone()]);
        }
        out.extend_from_slice(&self.raw[self.tail..]);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::identity::Keypair;
    use crate::membership::codec::SwimCodec;
    use foca::Codec;

    fn ident(name: &str) -> MemberId {
        MemberId {
            id: Keypair::generate().unwrap().node_id(),
            generation: 1,
            name: name.into(),
            addrs: vec!["127.0.0.1:7400".parse().unwrap()],
            role: crate::peer::Role::Member,
        }
    }

    fn encode(
        src: &MemberId,
        dst: &MemberId,
        message: Message<MemberId>,
        updates: Option<&[Member<MemberId>]>,
        tail: &[u8],
    ) -> Bytes {
        let mut buf = Vec::new();
        let header = Header {
            src: src.clone(),
            src_incarnation: 0,
            dst: dst.clone(),
            message,
        };
        SwimCodec.encode_header(&header, &mut buf).unwrap();
        if let Some(updates) = updates {
            buf.put_u16(updates.len() as u16);
            for m in updates {
                SwimCodec.encode_member(m, &mut buf).unwrap();
            }
        }
        buf.extend_from_slice(tail);
        Bytes::from(buf)
    }

    #[test]
    fn updates_are_read_as_foca_reads_them_and_dropped_ones_leave_the_rest_intact() {
        let (src, dst) = (ident("src"), ident("dst"));
        let updates: Vec<Member<MemberId>> = (0..4)
            .map(|i| Member::alive(ident(&format!("u{i}"))))
            .collect();
        let tail = [0u8, 3, 1, 2, 3];
        let raw = encode(&src, &dst, Message::Gossip, Some(&updates), &tail);
        let p = Packet::parse(raw.clone(), src.id).unwrap();
        assert_eq!(p.sender(), &src);
        let got: Vec<Member<MemberId>> = p.updates().into_iter().cloned().collect();
        assert_eq!(got, updates);
        assert_eq!(p.rebuild(&[true; 4]), raw);
        // Dropping two: foca reads the other two and the same tail.
        let rebuilt = p.rebuild(&[false, true, false, true]);
        let expected = encode(
            &src,
            &dst,
            Message::Gossip,
            Some(&[updates[1].clone(), updates[3].clone()]),
            &tail,
        );
        assert_eq!(rebuilt, expected);
        let again = Packet::parse(rebuilt, src.id).unwrap();
        assert_eq!(again.updates().len(), 2);
        // Dropping all leaves an empty update section.
        let none = Packet::parse(p.rebuild(&[false; 4]), src.id).unwrap();
        assert!(none.updates().is_empty());
    }

    #[test]
    fn packets_foca_would_reject_or_that_speak_for_another_are_refused() {
        let (src, dst) = (ident("src"), ident("dst"));
        // Someone else's name in the header.
        let raw = encode(&src, &dst, Message::Ping(1), Some(&[]), &[]);
        let e = Packet::parse(raw, dst.id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        // An announce with a payload; a single stray byte.
        let raw = encode(&src, &dst, Message::Announce, None, &[0, 0]);
        assert_eq!(
            Packet::parse(raw, src.id).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        let raw = encode(&src, &dst, Message::Gossip, None, &[7]);
        assert!(Packet::parse(raw, src.id).is_err());
        // More updates announced than present.
        let raw = encode(&src, &dst, Message::Gossip, None, &[0, 9]);
        assert!(Packet::parse(raw, src.id).is_err());
        // A broadcast's tail is not an update section.
        let raw = encode(&src, &dst, Message::Broadcast, None, &[0, 2, 1, 1]);
        let p = Packet::parse(raw.clone(), src.id).unwrap();
        assert!(p.updates().is_empty());
        assert_eq!(p.rebuild(&[]), raw);
        // Oversized metadata, in an update or in the header.
        let mut big = ident("x");
        big.name = "x".repeat(4096);
        let raw = encode(
            &src,
            &dst,
            Message::Gossip,
            Some(&[Member::alive(big.clone())]),
            &[],
        );
        let e = Packet::parse(raw, src.id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let raw = encode(&big, &dst, Message::Gossip, Some(&[]), &[]);
        assert_eq!(
            Packet::parse(raw, big.id).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        // Too large as a whole.
        let raw = Bytes::from(vec![0u8; MAX_PACKET_LEN + 1]);
        assert_eq!(
            Packet::parse(raw, src.id).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
