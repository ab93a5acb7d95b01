//! foca's wire codec, implemented with the same bincode configuration as the rest of the
//! wire format. Decoding is bounded (see `wire::codec`) and never panics, and every
//! identity decoded from a peer is checked against the metadata limits
//! ([`check_member_id`]): a name of at most [`MAX_NAME_LEN`] bytes, at most
//! [`MAX_MEMBER_ADDRS`] addresses. Full-state syncs are decoded by [`decode_sync`], which
//! refuses more than [`MAX_SYNC_MEMBERS`] members before decoding any.

use bytes::{Buf, BufMut};
use foca::{Header, Member, Message};

use crate::error::{Classify, Error, ErrorKind};
use crate::membership::limits::{MAX_MEMBER_ADDRS, MAX_NAME_LEN, MAX_SYNC_MEMBERS};
use crate::membership::member::MemberId;
use crate::wire::codec::{decode_bulk, decode_prefix_of, encode_header, WireError};

/// Why a member's metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The name is too long.
    #[error("member {id} has a name of {len} bytes, more than the limit of {max}")]
    NameTooLong {
        /// The member.
        id: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The address list is too long.
    #[error("member {id} lists {count} addresses, more than the limit of {max}")]
    TooManyAddrs {
        /// The member.
        id: String,
        /// How many it lists.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A sync carries too many members.
    #[error("a full-state sync of {count} members exceeds the limit of {max}")]
    TooManyMembers {
        /// How many it announces.
        count: u64,
        /// The limit.
        max: usize,
    },
}

impl From<MetadataError> for WireError {
    fn from(e: MetadataError) -> Self {
        WireError::Malformed(e.to_string())
    }
}

impl Classify for MetadataError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

/// Checks one identity from a peer against the metadata limits.
pub fn check_member_id(m: &MemberId) -> Result<(), MetadataError> {
    if m.name.len() > MAX_NAME_LEN {
        return Err(MetadataError::NameTooLong {
            id: m.id.short(),
            len: m.name.len(),
            max: MAX_NAME_LEN,
        });
    }
    if m.addrs.len() > MAX_MEMBER_ADDRS {
        return Err(MetadataError::TooManyAddrs {
            id: m.id.short(),
            count: m.addrs.len(),
            max: MAX_MEMBER_ADDRS,
        });
    }
    Ok(())
}

/// Checks every identity a SWIM header carries.
pub fn check_header(h: &Header<MemberId>) -> Result<(), MetadataError> {
    check_member_id(&h.src)?;
    check_member_id(&h.dst)?;
    match &h.message {
        Message::PingReq { target: m, .. }
        | Message::IndirectPing { origin: m, .. }
        | Message::IndirectAck { target: m, .. }
        | Message::ForwardedAck { origin: m, .. } => check_member_id(m),
        Message::Ping(_)
        | Message::Ack(_)
        | Message::Announce
        | Message::Feed
        | Message::Gossip
        | Message::Broadcast
        | Message::TurnUndead => Ok(()),
    }
}

/// The element count at the front of a bulk-encoded sequence (bincode's varint, big
/// endian), read without decoding the elements.
fn sequence_len(bytes: &[u8]) -> Option<u64> {
    let (&first, rest) = bytes.split_first()?;
    match first {
        0..=250 => Some(u64::from(first)),
        251 => Some(u64::from(u16::from_be_bytes(
            rest.get(..2)?.try_into().ok()?,
        ))),
        252 => Some(u64::from(u32::from_be_bytes(
            rest.get(..4)?.try_into().ok()?,
        ))),
        253 => Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)),
        _ => None,
    }
}

/// Decodes a full-state sync body from a peer: refuses more than [`MAX_SYNC_MEMBERS`]
/// members (before decoding any) and any member over the metadata limits, with
/// `InvalidInput`; malformed bytes are `Corrupted`.
pub fn decode_sync(body: &[u8]) -> Result<Vec<Member<MemberId>>, Error> {
    let count = sequence_len(body)
        .ok_or_else(|| Error::from(WireError::Malformed("no member count".into())))?;
    if count > MAX_SYNC_MEMBERS as u64 {
        return Err(MetadataError::TooManyMembers {
            count,
            max: MAX_SYNC_MEMBERS,
        }
        .into());
    }
    let members: Vec<Member<MemberId>> = decode_bulk(body)?;
    for m in &members {
        check_member_id(m.id())?;
    }
    Ok(members)
}

/// The codec handed to foca.
#[derive(Debug, Default, Clone, Copy)]
pub struct SwimCodec;

impl foca::Codec<MemberId> for SwimCodec {
    type Error = WireError;

    fn encode_header(
        &mut self,
        header: &Header<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), WireError> {
        let bytes = encode_header(header)?;
        if buf.remaining_mut() < bytes.len() {
            return Err(WireError::Malformed("no room for the SWIM header".into()));
        }
        buf.put_slice(&bytes);
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<MemberId>, WireError> {
        let (header, used) = decode_prefix_of(buf.chunk())?;
        check_header(&header)?;
        buf.advance(used);
        Ok(header)
    }

    fn encode_member(
        &mut self,
        member: &Member<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), WireError> {
        let bytes = encode_header(member)?;
        // foca requires that nothing is written when the item does not fit.
        if buf.remaining_mut() < bytes.len() {
            return Err(WireError::Malformed("no room for the SWIM member".into()));
        }
        buf.put_slice(&bytes);
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<MemberId>, WireError> {
        let (member, used) = decode_prefix_of::<Member<MemberId>>(buf.chunk())?;
        check_member_id(member.id())?;
        buf.advance(used);
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use foca::Codec;
    use proptest::prelude::*;

    #[test]
    fn members_round_trip() {
        let m = Member::alive(MemberId {
            id: Keypair::generate().unwrap().node_id(),
            generation: 5,
            name: "x".into(),
            addrs: vec!["127.0.0.1:1".parse().unwrap()],
            role: crate::peer::Role::Member,
        });
        let mut buf = Vec::new();
        SwimCodec.encode_member(&m, &mut buf).unwrap();
        buf.extend_from_slice(b"rest");
        let mut slice = &buf[..];
        let back = SwimCodec.decode_member(&mut slice).unwrap();
        assert_eq!(back, m);
        assert_eq!(slice, b"rest");
    }

    fn member(name: &str, addrs: usize) -> Member<MemberId> {
        Member::alive(MemberId {
            id: Keypair::generate().unwrap().node_id(),
            generation: 1,
            name: name.into(),
            addrs: (0..addrs)
                .map(|i| std::net::SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16)))
                .collect(),
            role: crate::peer::Role::Member,
        })
    }

    #[test]
    fn oversized_names_and_address_lists_are_refused_when_decoding() {
        let ok = member(&"n".repeat(MAX_NAME_LEN), MAX_MEMBER_ADDRS);
        let mut buf = Vec::new();
        SwimCodec.encode_member(&ok, &mut buf).unwrap();
        assert_eq!(SwimCodec.decode_member(&buf[..]).unwrap(), ok);
        for bad in [
            member(&"n".repeat(MAX_NAME_LEN + 1), 1),
            member("n", MAX_MEMBER_ADDRS + 1),
        ] {
            let mut buf = Vec::new();
            SwimCodec.encode_member(&bad, &mut buf).unwrap();
            let e = SwimCodec.decode_member(&buf[..]).unwrap_err();
            assert!(e.to_string().contains("limit"), "{e}");
            let e = decode_sync(&crate::wire::codec::encode_bulk(&vec![bad.clone()]).unwrap())
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            // In a header, as the sender or inside a message.
            let header = Header {
                src: ok.id().clone(),
                src_incarnation: 0,
                dst: ok.id().clone(),
                message: Message::PingReq {
                    target: bad.id().clone(),
                    probe_number: 1,
                },
            };
            let mut buf = Vec::new();
            SwimCodec.encode_header(&header, &mut buf).unwrap();
            assert!(SwimCodec.decode_header(&buf[..]).is_err());
        }
    }

    #[test]
    fn a_sync_is_refused_by_its_count_before_its_members_are_decoded() {
        // The count read without decoding agrees with the encoder at every width.
        for n in [0usize, 1, 250, 251, 300, 65_535, 65_536, 70_000] {
            let bytes = crate::wire::codec::encode_bulk(&vec![(); n]).unwrap();
            assert_eq!(sequence_len(&bytes), Some(n as u64), "{n}");
        }
        let fine: Vec<_> = (0..3).map(|_| member("m", 1)).collect();
        let bytes = crate::wire::codec::encode_bulk(&fine).unwrap();
        assert_eq!(decode_sync(&bytes).unwrap(), fine);
        // A count beyond the bound with no members behind it: refused as too many.
        let mut bytes = vec![252u8];
        bytes.extend_from_slice(&(MAX_SYNC_MEMBERS as u32 + 1).to_be_bytes());
        let e = decode_sync(&bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("limit"), "{e}");
        assert_eq!(decode_sync(&[]).unwrap_err().kind(), ErrorKind::Corrupted);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SwimCodec.decode_header(&bytes[..]);
            let _ = SwimCodec.decode_member(&bytes[..]);
            let _ = decode_sync(&bytes);
        }
    }
}
